package mongostore

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/mail"
)

// recordingTransport counts deliveries per recipient.
type recordingTransport struct {
	mu   sync.Mutex
	sent map[string]int
}

func (r *recordingTransport) Deliver(_ context.Context, to string, _ mail.Rendered) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent[to]++
	return nil
}

func (r *recordingTransport) count(to string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sent[to]
}

// TestOutboxCrashedWorkerLeaseExpiry: on the real store, a mail whose
// delivery attempt was claimed by a worker that then crashed is left alone
// while the claim's lease runs, and delivered once by another worker after
// it. The worker delivers in queue order, so a mail queued after it and
// delivered is the barrier that proves the crashed one was not sent.
func TestOutboxCrashedWorkerLeaseExpiry(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	var mu sync.Mutex
	clock := now()
	nowFn := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	key := make([]byte, mail.KeySize)
	outbox, err := mail.NewOutbox(s, key, nowFn)
	noErr(t, "new outbox", err)
	templates, err := mail.NewTemplates("")
	noErr(t, "templates", err)
	tr := &recordingTransport{sent: map[string]int{}}
	ctx := t.Context()
	send := func(to string) {
		t.Helper()
		noErr(t, "queue mail", outbox.Send(ctx, accounts.Mail{To: to, Kind: accounts.MailVerify, Link: "http://gate.example/verify?token=t"}))
	}
	waitSent := func(to string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for tr.count(to) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("mail to %s not delivered within 15s", to)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	send("crashed@example.com")
	pending, err := s.PendingMessages(ctx, 10)
	if err != nil || len(pending) != 1 {
		t.Fatalf("pending = %d, %v; want 1", len(pending), err)
	}
	lease := clock.Add(mail.DefaultLease)
	noErr(t, "crashed claim", s.ClaimAttempt(ctx, mail.Attempt{MessageID: pending[0].ID, N: 0, Owner: "crashed", LeaseUntil: lease}))

	w, err := mail.NewWorker(mail.WorkerConfig{
		Outbox: outbox, Transport: tr, Templates: templates, Logger: discard(),
		PollInterval: 10 * time.Millisecond, Now: nowFn, Owner: "survivor",
	})
	noErr(t, "new worker", err)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })

	send("barrier-1@example.com")
	waitSent("barrier-1@example.com")
	if n := tr.count("crashed@example.com"); n != 0 {
		t.Fatalf("during the crashed worker's lease: %d deliveries; want 0", n)
	}

	mu.Lock()
	clock = lease
	mu.Unlock()
	waitSent("crashed@example.com")
	send("barrier-2@example.com")
	waitSent("barrier-2@example.com")
	if n := tr.count("crashed@example.com"); n != 1 {
		t.Errorf("after the lease: %d deliveries; want exactly 1", n)
	}
	left, err := s.PendingMessages(ctx, 10)
	noErr(t, "pending", err)
	for _, m := range left {
		if m.To == "crashed@example.com" {
			t.Errorf("the crashed worker's mail is still queued after its delivery")
		}
	}
}
