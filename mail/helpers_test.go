package mail

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// testLink carries a token that must never reach the store or a log.
const (
	testToken = "tok_Q2hhbmdlTWVQbGVhc2VJdHNTZWNyZXQ"
	testLink  = "https://gate.example/verify?token=" + testToken
)

func testKey(b byte) []byte {
	k := make([]byte, KeySize)
	for i := range k {
		k[i] = b
	}
	return k
}

// fakeClock is a settable clock for the worker's lease and backoff decisions.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// logBuffer collects a logger's output for assertions; safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newTestLogger(tb testing.TB) (*slog.Logger, *logBuffer) {
	tb.Helper()
	var b logBuffer
	return slog.New(slog.NewJSONHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug})), &b
}

// recordingTransport records deliveries; fail, if set, decides per call
// (numbered from 0) whether to fail.
type recordingTransport struct {
	mu        sync.Mutex
	calls     int
	delivered []delivery
	fail      func(call int) error
}

type delivery struct {
	To  string
	Msg Rendered
}

func (t *recordingTransport) Deliver(ctx context.Context, to string, msg Rendered) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	call := t.calls
	t.calls++
	if t.fail != nil {
		if err := t.fail(call); err != nil {
			return err
		}
	}
	t.delivered = append(t.delivered, delivery{To: to, Msg: msg})
	return nil
}

func (t *recordingTransport) deliveries() []delivery {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]delivery(nil), t.delivered...)
}

func (t *recordingTransport) callCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.calls
}

func mustTemplates(tb testing.TB) *Templates {
	tb.Helper()
	tpl, err := NewTemplates("")
	if err != nil {
		tb.Fatalf("NewTemplates: %v", err)
	}
	return tpl
}

func mustOutbox(tb testing.TB, store OutboxStore, key []byte, now func() time.Time) *Outbox {
	tb.Helper()
	o, err := NewOutbox(store, key, now)
	if err != nil {
		tb.Fatalf("NewOutbox: %v", err)
	}
	return o
}

// newTestWorker returns a worker on its own Outbox (as in a separate process)
// over store; edit adjusts the config before construction.
func newTestWorker(tb testing.TB, store OutboxStore, tr Transport, clock func() time.Time, logger *slog.Logger, edit func(*WorkerConfig)) (*Worker, *Outbox) {
	tb.Helper()
	o := mustOutbox(tb, store, testKey(1), clock)
	cfg := WorkerConfig{
		Outbox:       o,
		Transport:    tr,
		Templates:    mustTemplates(tb),
		Logger:       logger,
		PublicURL:    "https://gate.example",
		PollInterval: time.Millisecond,
		Now:          clock,
	}
	if edit != nil {
		edit(&cfg)
	}
	w, err := NewWorker(cfg)
	if err != nil {
		tb.Fatalf("NewWorker: %v", err)
	}
	return w, o
}

// waitFor polls cond until it holds, failing after a generous bound that only
// guards against hangs.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
