package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

const (
	acctPassword = "a long enough passphrase 7"
	acctWrongPW  = "not the right passphrase 0"
	acctMailWait = 15 * time.Second
)

// acctStart runs a gateway with env overrides and fails the test if the
// gateway answered any request with a 500 or recovered from a panic.
func acctStart(tb testing.TB, env map[string]string) *testkit.Gateway {
	tb.Helper()
	return acctStartWith(tb, testkit.Options{Env: env})
}

func acctStartWith(tb testing.TB, opts testkit.Options) *testkit.Gateway {
	tb.Helper()
	g := testkit.Start(tb, run, testkit.StartSMTP(tb), opts)
	testkit.NoServerErrors(tb, g)
	return g
}

// acctStartClocked is acctStart with a stopped clock, which the test moves
// past the mail quota's interval or a lockout instead of sleeping.
func acctStartClocked(tb testing.TB, env map[string]string) (*testkit.Gateway, *testkit.Clock) {
	tb.Helper()
	clock := testkit.NewClock()
	g := testkit.Start(tb, runAt(clock), testkit.StartSMTP(tb), testkit.Options{Env: env})
	testkit.NoServerErrors(tb, g)
	return g, clock
}

// acctEmail returns a fresh address; addresses with tags of one length have
// one length, so pages that echo them can be compared byte for byte.
func acctEmail(tag string) string {
	return tag + "-" + acctHex(5) + "@example.com"
}

func acctHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// acctForm submits a same-origin HTML form of key, value pairs.
func acctForm(tb testing.TB, c *testkit.Client, path string, kv ...string) *testkit.Response {
	tb.Helper()
	vals := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		vals.Set(kv[i], kv[i+1])
	}
	return c.PostForm(path, vals)
}

func acctWant(tb testing.TB, what string, r *testkit.Response, status int) {
	tb.Helper()
	if r.Status != status {
		tb.Fatalf("%s: got status %d; want %d\n%s", what, r.Status, status, testkit.Short(r.Body))
	}
}

// acctWantText checks that a page contains every one of texts.
func acctWantText(tb testing.TB, what string, r *testkit.Response, texts ...string) {
	tb.Helper()
	for _, s := range texts {
		if !strings.Contains(r.Text(), s) {
			tb.Errorf("%s: page does not contain %q\n%s", what, s, testkit.Short(r.Body))
		}
	}
}

// acctRetryAfter returns the Retry-After header in seconds, failing the test
// if it is missing or not a positive number.
func acctRetryAfter(tb testing.TB, what string, r *testkit.Response) int {
	tb.Helper()
	n, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || n < 1 {
		tb.Fatalf("%s: got Retry-After %q; want a positive number of seconds", what, r.Header.Get("Retry-After"))
	}
	return n
}

// acctNoMailTo checks, once the test and its subtests are done, that none
// of the addresses added to it received mail.
type acctNoMailTo struct {
	mu    sync.Mutex
	addrs []string
}

func acctNoMail(tb testing.TB, g *testkit.Gateway) *acctNoMailTo {
	n := &acctNoMailTo{}
	tb.Cleanup(func() {
		g.MailBarrier(tb) // a wrongly queued mail has arrived by now
		n.mu.Lock()
		defer n.mu.Unlock()
		for _, a := range n.addrs {
			if got := len(g.SMTP.Mails(a)); got != 0 {
				tb.Errorf("%s received %d mails; want none", a, got)
			}
		}
	})
	return n
}

func (n *acctNoMailTo) add(email string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.addrs = append(n.addrs, email)
}

// acctNewUser signs up and verifies email through the API and returns the
// signed-in client.
func acctNewUser(tb testing.TB, g *testkit.Gateway, email, password string) *testkit.Client {
	tb.Helper()
	c := g.Client(tb)
	m := c.SignUp(g, email, password)
	if r := c.Verify(m.Token(tb), password); r.Status != http.StatusOK {
		tb.Fatalf("verify %s: got status %d; want 200\n%s", email, r.Status, r.Body)
	}
	return c
}

// acctUser returns the "user" object of an API answer.
func acctUser(tb testing.TB, what string, r *testkit.Response) map[string]any {
	tb.Helper()
	u, ok := r.JSON(tb)["user"].(map[string]any)
	if !ok {
		tb.Fatalf("%s: no user object in %s", what, r.Body)
	}
	return u
}

// acctSendJSON sends a same-origin JSON POST with extra headers.
func acctSendJSON(tb testing.TB, c *testkit.Client, path string, v any, header http.Header) *testkit.Response {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	req := c.NewRequest(http.MethodPost, path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for k, vs := range header {
		req.Header[k] = vs
	}
	return c.Do(req)
}
