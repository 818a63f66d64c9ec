package testkit

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// barrierDomain is the domain of the addresses MailBarrier mails.
const barrierDomain = "barrier.test"

var barrierSeq atomic.Int64

// MailBarrier queues a mail through the gateway and waits until it is
// delivered. The outbox's worker delivers queued mail, and resolves queued
// requests (a forgot-password becomes a reset mail or nothing), one at a
// time in the order they were queued, so once the barrier's mail has
// arrived, every mail that anything before it queued has arrived too. A
// test proves that no mail was sent with a barrier, not by waiting a while.
// It needs one gateway on its database, with SMTP, whose per-IP signup
// limit allows one more request.
func (g *Gateway) MailBarrier(tb testing.TB) {
	tb.Helper()
	addr := fmt.Sprintf("barrier-%d@%s", barrierSeq.Add(1), barrierDomain)
	r := g.Client(tb).PostJSON("/api/v1/signup", map[string]string{"email": addr, "password": "a barrier passphrase"})
	if r.Status != http.StatusAccepted {
		tb.Fatalf("mail barrier: signup answered %d; want 202\n%s", r.Status, r.Body)
	}
	g.SMTP.WaitMail(tb, addr, 1, 30*time.Second)
}

// NoMoreMail checks, after a MailBarrier, that `to` has received exactly n
// mails ("" counts the mails to every address but the barriers').
func (g *Gateway) NoMoreMail(tb testing.TB, to string, n int) {
	tb.Helper()
	g.MailBarrier(tb)
	got := 0
	for _, m := range g.SMTP.Mails(to) {
		if !strings.Contains(strings.Join(m.To, ","), "@"+barrierDomain) {
			got++
		}
	}
	if got != n {
		tb.Fatalf("%q received %d mails; want %d", to, got, n)
	}
}
