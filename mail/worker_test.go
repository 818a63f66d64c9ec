package mail

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse/gatehouse/accounts"
)

func queue(tb testing.TB, o *Outbox, m accounts.Mail) {
	tb.Helper()
	if err := o.Send(context.Background(), m); err != nil {
		tb.Fatalf("Send: %v", err)
	}
}

func assertNoSecret(tb testing.TB, where, text string) {
	tb.Helper()
	if strings.Contains(text, testToken) {
		tb.Errorf("%s contains the token:\n%s", where, text)
	}
}

func TestWorkerDeliversOnce(t *testing.T) {
	store := newMemStore()
	tr := &recordingTransport{}
	clock := newFakeClock()
	logger, logs := newTestLogger(t)
	w, o := newTestWorker(t, store, tr, clock.Now, logger, nil)
	queue(t, o, accounts.Mail{To: "ann@example.com", Kind: accounts.MailVerify, Link: testLink})

	w.poll(t.Context())
	w.poll(t.Context())

	got := tr.deliveries()
	if len(got) != 1 {
		t.Fatalf("got %d deliveries; want 1", len(got))
	}
	if got[0].To != "ann@example.com" {
		t.Errorf("got recipient %q; want ann@example.com", got[0].To)
	}
	if got[0].Msg.Subject != "Confirm your email address" {
		t.Errorf("got subject %q; want %q", got[0].Msg.Subject, "Confirm your email address")
	}
	if !strings.Contains(got[0].Msg.Text, testLink) || got[0].Msg.Link != testLink {
		t.Errorf("got text %q, link %q; want both to carry %s", got[0].Msg.Text, got[0].Msg.Link, testLink)
	}
	if msgs, attempts := store.counts(); msgs != 0 || attempts != 0 {
		t.Errorf("got %d messages, %d attempts left; want 0, 0", msgs, attempts)
	}
	if !strings.Contains(logs.String(), `"event":"mail_sent"`) {
		t.Errorf("got logs without event=mail_sent:\n%s", logs)
	}
	assertNoSecret(t, "log", logs.String())
}

func TestWorkerRetriesWithBackoff(t *testing.T) {
	store := newMemStore()
	tr := &recordingTransport{fail: func(call int) error {
		if call < 2 {
			return fmt.Errorf("451 temporary failure for %s", testLink)
		}
		return nil
	}}
	clock := newFakeClock()
	logger, logs := newTestLogger(t)
	w, o := newTestWorker(t, store, tr, clock.Now, logger, nil)
	queue(t, o, accounts.Mail{To: "ann@example.com", Kind: accounts.MailReset, Link: testLink})
	m, _ := store.only()

	for n, want := range []struct{ min, max time.Duration }{
		{500 * time.Millisecond, time.Second},
		{time.Second, 2 * time.Second},
	} {
		w.poll(t.Context())
		a, err := store.Attempt(t.Context(), m.ID, n)
		if err != nil {
			t.Fatalf("attempt %d: %v", n, err)
		}
		if a.Outcome != OutcomeFailed {
			t.Fatalf("attempt %d: got outcome %q; want %q", n, a.Outcome, OutcomeFailed)
		}
		if d := a.NextAt.Sub(a.FinishedAt); d < want.min || d > want.max {
			t.Errorf("attempt %d: got backoff %s; want %s..%s", n, d, want.min, want.max)
		}
		assertNoSecret(t, "stored error", a.Error)

		// Not due yet: polling again must not retry, however often.
		clock.Set(a.NextAt.Add(-time.Nanosecond))
		w.poll(t.Context())
		w.poll(t.Context())
		if got := tr.callCount(); got != n+1 {
			t.Fatalf("after attempt %d, before its NextAt: got %d transport calls; want %d", n, got, n+1)
		}
		clock.Set(a.NextAt)
	}
	w.poll(t.Context())

	if got := len(tr.deliveries()); got != 1 {
		t.Errorf("got %d deliveries; want 1", got)
	}
	if got := tr.callCount(); got != 3 {
		t.Errorf("got %d transport calls; want 3", got)
	}
	if msgs, attempts := store.counts(); msgs != 0 || attempts != 0 {
		t.Errorf("got %d messages, %d attempts left; want 0, 0", msgs, attempts)
	}
	if got := strings.Count(logs.String(), `"event":"mail_failed"`); got != 2 {
		t.Errorf("got %d mail_failed logs; want 2", got)
	}
	assertNoSecret(t, "log", logs.String())
}

func TestWorkerAbandonsAfterMaxAttempts(t *testing.T) {
	store := newMemStore()
	tr := &recordingTransport{fail: func(int) error { return errors.New("550 mailbox unavailable " + testLink) }}
	clock := newFakeClock()
	logger, logs := newTestLogger(t)
	reg := prometheus.NewRegistry()
	w, o := newTestWorker(t, store, tr, clock.Now, logger, func(c *WorkerConfig) {
		c.MaxAttempts = 3
		c.Registerer = reg
	})
	queue(t, o, accounts.Mail{To: "ann@example.com", Kind: accounts.MailVerify, Link: testLink})

	for range 3 {
		w.poll(t.Context())
		clock.Advance(DefaultMaxBackoff)
	}
	w.poll(t.Context())

	if got := tr.callCount(); got != 3 {
		t.Errorf("got %d transport calls; want 3", got)
	}
	if msgs, attempts := store.counts(); msgs != 0 || attempts != 0 {
		t.Errorf("got %d messages, %d attempts left; want 0, 0", msgs, attempts)
	}
	out := logs.String()
	if !strings.Contains(out, `"msg":"mail abandoned"`) || !strings.Contains(out, `"level":"ERROR"`) {
		t.Errorf("got logs without an error \"mail abandoned\":\n%s", out)
	}
	if !strings.Contains(out, `"to":"ann@example.com"`) {
		t.Errorf("got abandon log without the recipient:\n%s", out)
	}
	assertNoSecret(t, "log", out)
	assertMetric(t, reg, "gatehouse_mail_failed_attempts_total", 3)
	assertMetric(t, reg, "gatehouse_mail_abandoned_total", 1)
	assertMetric(t, reg, "gatehouse_mail_sent_total", 0)
}

func assertMetric(tb testing.TB, reg *prometheus.Registry, name string, want float64) {
	tb.Helper()
	families, err := reg.Gather()
	if err != nil {
		tb.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		m := f.GetMetric()[0]
		got := m.GetCounter().GetValue() + m.GetGauge().GetValue()
		if got != want {
			tb.Errorf("%s: got %v; want %v", name, got, want)
		}
		return
	}
	tb.Errorf("%s: not registered", name)
}

func TestWorkerTwoWorkersDeliverEachOnce(t *testing.T) {
	store := newMemStore()
	tr := &recordingTransport{}
	logger, _ := newTestLogger(t)
	w1, o1 := newTestWorker(t, store, tr, time.Now, logger, func(c *WorkerConfig) { c.Owner = "one" })
	w2, o2 := newTestWorker(t, store, tr, time.Now, logger, func(c *WorkerConfig) { c.Owner = "two" })

	const total = 50
	for i := range total {
		o := o1
		if i%2 == 1 {
			o = o2
		}
		queue(t, o, accounts.Mail{To: fmt.Sprintf("user%02d@example.com", i), Kind: accounts.MailVerify, Link: testLink})
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for _, w := range []*Worker{w1, w2} {
		wg.Go(func() {
			if err := w.Run(ctx); err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	waitFor(t, "an empty outbox", func() bool {
		msgs, attempts := store.counts()
		return msgs == 0 && attempts == 0
	})
	cancel()
	wg.Wait()

	seen := make(map[string]int)
	for _, d := range tr.deliveries() {
		seen[d.To]++
	}
	for i := range total {
		to := fmt.Sprintf("user%02d@example.com", i)
		if seen[to] != 1 {
			t.Errorf("%s: got %d deliveries; want 1", to, seen[to])
		}
	}
	if got := tr.callCount(); got != total {
		t.Errorf("got %d transport calls; want %d", got, total)
	}
}

// TestWorkerStaleListing replays the race that a listed-then-delivered mail
// would cause: the message and its attempts are gone when the worker claims.
func TestWorkerStaleListing(t *testing.T) {
	store := newMemStore()
	tr := &recordingTransport{}
	clock := newFakeClock()
	logger, _ := newTestLogger(t)
	w, o := newTestWorker(t, store, tr, clock.Now, logger, nil)
	queue(t, o, accounts.Mail{To: "ann@example.com", Kind: accounts.MailVerify, Link: testLink})
	m, _ := store.only()
	if err := store.DeleteMessage(t.Context(), m.ID, 1); err != nil {
		t.Fatal(err)
	}

	w.process(t.Context(), m) // m as listed before another worker delivered it

	if got := tr.callCount(); got != 0 {
		t.Errorf("got %d transport calls; want 0", got)
	}
	if msgs, attempts := store.counts(); msgs != 0 || attempts != 0 {
		t.Errorf("got %d messages, %d attempts left; want 0, 0 (orphan claim removed)", msgs, attempts)
	}
}

func TestWorkerTakesOverExpiredClaim(t *testing.T) {
	store := newMemStore()
	tr := &recordingTransport{}
	clock := newFakeClock()
	logger, _ := newTestLogger(t)
	w, o := newTestWorker(t, store, tr, clock.Now, logger, func(c *WorkerConfig) { c.Owner = "survivor" })
	queue(t, o, accounts.Mail{To: "ann@example.com", Kind: accounts.MailVerify, Link: testLink})
	m, _ := store.only()
	crashed := Attempt{MessageID: m.ID, N: 0, Owner: "crashed", LeaseUntil: clock.Now().Add(DefaultLease)}
	if err := store.ClaimAttempt(t.Context(), crashed); err != nil {
		t.Fatal(err)
	}

	w.poll(t.Context())
	if got := tr.callCount(); got != 0 {
		t.Fatalf("during the lease: got %d transport calls; want 0", got)
	}
	clock.Set(crashed.LeaseUntil.Add(-time.Second))
	w.poll(t.Context())
	if got := tr.callCount(); got != 0 {
		t.Fatalf("just before the lease ends: got %d transport calls; want 0", got)
	}
	clock.Set(crashed.LeaseUntil)
	w.poll(t.Context())
	w.poll(t.Context())

	if got := len(tr.deliveries()); got != 1 {
		t.Errorf("got %d deliveries; want 1", got)
	}
	if msgs, attempts := store.counts(); msgs != 0 || attempts != 0 {
		t.Errorf("got %d messages, %d attempts left; want 0, 0", msgs, attempts)
	}
}

func TestWorkerDecisions(t *testing.T) {
	tests := []struct {
		name        string
		maxAttempts int
		attempts    func(now time.Time) []Attempt
		wantCalls   int
		wantStored  bool
	}{
		{
			name: "sent but not deleted is deleted, not resent",
			attempts: func(now time.Time) []Attempt {
				return []Attempt{{N: 0, Outcome: OutcomeSent, LeaseUntil: now, FinishedAt: now}}
			},
			wantCalls: 0,
		},
		{
			name: "in flight within its lease is left alone",
			attempts: func(now time.Time) []Attempt {
				return []Attempt{{N: 0, LeaseUntil: now.Add(time.Minute)}}
			},
			wantCalls: 0, wantStored: true,
		},
		{
			name: "failed and not due is left alone",
			attempts: func(now time.Time) []Attempt {
				return []Attempt{{N: 0, Outcome: OutcomeFailed, NextAt: now.Add(time.Second)}}
			},
			wantCalls: 0, wantStored: true,
		},
		{
			name: "failed and due is retried",
			attempts: func(now time.Time) []Attempt {
				return []Attempt{
					{N: 0, Outcome: OutcomeFailed, NextAt: now.Add(-time.Hour)},
					{N: 1, Outcome: OutcomeFailed, NextAt: now},
				}
			},
			wantCalls: 1,
		},
		{
			name:        "crashed last attempt is abandoned",
			maxAttempts: 2,
			attempts: func(now time.Time) []Attempt {
				return []Attempt{
					{N: 0, Outcome: OutcomeFailed, NextAt: now},
					{N: 1, LeaseUntil: now.Add(-time.Second)},
				}
			},
			wantCalls: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := newMemStore()
			tr := &recordingTransport{}
			clock := newFakeClock()
			logger, _ := newTestLogger(t)
			w, o := newTestWorker(t, store, tr, clock.Now, logger, func(c *WorkerConfig) { c.MaxAttempts = tt.maxAttempts })
			queue(t, o, accounts.Mail{To: "ann@example.com", Kind: accounts.MailVerify, Link: testLink})
			m, _ := store.only()
			for _, a := range tt.attempts(clock.Now()) {
				a.MessageID, a.Owner = m.ID, "other"
				if err := store.ClaimAttempt(t.Context(), a); err != nil {
					t.Fatal(err)
				}
			}

			w.poll(t.Context())

			if got := tr.callCount(); got != tt.wantCalls {
				t.Errorf("got %d transport calls; want %d", got, tt.wantCalls)
			}
			if msgs, _ := store.counts(); (msgs == 1) != tt.wantStored {
				t.Errorf("got %d messages stored; want stored=%v", msgs, tt.wantStored)
			}
		})
	}
}

// TestWorkerLeavesUnsealable: a mail sealed under another key is not sent
// and not deleted at once, so that an instance holding that key can still
// deliver it; another worker with the right key does.
func TestWorkerLeavesUnsealable(t *testing.T) {
	store := newMemStore()
	tr := &recordingTransport{}
	clock := newFakeClock()
	logger, logs := newTestLogger(t)
	w, _ := newTestWorker(t, store, tr, clock.Now, logger, nil)
	// Queued by an instance with another key.
	other := mustOutbox(t, store, testKey(2), clock.Now)
	queue(t, other, accounts.Mail{To: "ann@example.com", Kind: accounts.MailVerify, Link: testLink})

	w.poll(t.Context())

	if got := tr.callCount(); got != 0 {
		t.Errorf("got %d transport calls; want 0", got)
	}
	if msgs, _ := store.counts(); msgs != 1 {
		t.Errorf("got %d messages left; want 1 (kept for an instance with the key)", msgs)
	}
	if !strings.Contains(logs.String(), `"event":"mail_failed"`) {
		t.Errorf("got logs without event=mail_failed:\n%s", logs)
	}
	assertNoSecret(t, "log", logs.String())

	tr2 := &recordingTransport{}
	w2, err := NewWorker(WorkerConfig{Outbox: other, Transport: tr2, Templates: mustTemplates(t), Logger: logger, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	w2.poll(t.Context())
	if got := tr2.callCount(); got != 1 {
		t.Errorf("got %d deliveries by the worker with the key; want 1", got)
	}
}

func TestWorkerStoreOutage(t *testing.T) {
	store := newMemStore()
	tr := &recordingTransport{}
	clock := newFakeClock()
	logger, logs := newTestLogger(t)
	w, o := newTestWorker(t, store, tr, clock.Now, logger, nil)
	queue(t, o, accounts.Mail{To: "ann@example.com", Kind: accounts.MailVerify, Link: testLink})

	store.setDown(true)
	err := o.Send(t.Context(), accounts.Mail{To: "bob@example.com", Kind: accounts.MailVerify, Link: testLink})
	if !errors.Is(err, accounts.ErrUnavailable) {
		t.Errorf("Send while the store is down: got %v; want accounts.ErrUnavailable", err)
	}
	w.poll(t.Context())
	if !strings.Contains(logs.String(), `"event":"mail_store_failed"`) {
		t.Errorf("got logs without event=mail_store_failed:\n%s", logs)
	}
	store.setDown(false)
	w.poll(t.Context())

	if got := len(tr.deliveries()); got != 1 {
		t.Errorf("got %d deliveries; want 1", got)
	}
}

func TestWorkerSendDeadlineEndsBeforeLease(t *testing.T) {
	store := newMemStore()
	var left time.Duration
	tr := transportFunc(func(ctx context.Context, to string, msg Rendered) error {
		deadline, ok := ctx.Deadline()
		if !ok {
			return errors.New("no deadline")
		}
		left = time.Until(deadline)
		return nil
	})
	clock := newFakeClock()
	logger, _ := newTestLogger(t)
	w, o := newTestWorker(t, store, tr, clock.Now, logger, func(c *WorkerConfig) {
		c.Lease = 10 * time.Minute
		c.LeaseMargin = time.Minute
	})
	queue(t, o, accounts.Mail{To: "ann@example.com", Kind: accounts.MailVerify, Link: testLink})

	w.poll(t.Context())

	// The fake clock stands still, so the whole lease minus the margin is left.
	if want := 9 * time.Minute; left > want || left < want-time.Minute {
		t.Errorf("got send deadline in %s; want just under %s", left, want)
	}
}

type transportFunc func(ctx context.Context, to string, msg Rendered) error

func (f transportFunc) Deliver(ctx context.Context, to string, msg Rendered) error {
	return f(ctx, to, msg)
}

func TestWorkerRunWakesOnSend(t *testing.T) {
	store := newMemStore()
	tr := &recordingTransport{}
	logger, _ := newTestLogger(t)
	w, o := newTestWorker(t, store, tr, time.Now, logger, func(c *WorkerConfig) { c.PollInterval = time.Hour })
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()

	// Queued after the first poll, so only the wake-up can deliver it in time.
	waitFor(t, "the first poll", func() bool { return store.pendingCalls() > 0 })
	queue(t, o, accounts.Mail{To: "ann@example.com", Kind: accounts.MailVerify, Link: testLink})
	waitFor(t, "the delivery", func() bool { return len(tr.deliveries()) == 1 })

	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: got %v; want nil", err)
	}
}

func TestWorkerRunStopsCleanlyDuringSend(t *testing.T) {
	store := newMemStore()
	started := make(chan struct{})
	tr := transportFunc(func(ctx context.Context, to string, msg Rendered) error {
		close(started)
		<-ctx.Done()
		return fmt.Errorf("smtp delivery: %w", ctx.Err())
	})
	clock := newFakeClock()
	logger, _ := newTestLogger(t)
	w, o := newTestWorker(t, store, tr, clock.Now, logger, nil)
	queue(t, o, accounts.Mail{To: "ann@example.com", Kind: accounts.MailVerify, Link: testLink})
	m, _ := store.only()

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	<-started
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: got %v; want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}

	a, err := store.Attempt(t.Context(), m.ID, 0)
	if err != nil {
		t.Fatalf("attempt 0: %v", err)
	}
	if a.Outcome != OutcomeFailed || !a.NextAt.Equal(a.FinishedAt) {
		t.Errorf("got attempt %+v; want failed and due at once", a)
	}
}

func TestWorkerRunTwiceFails(t *testing.T) {
	logger, _ := newTestLogger(t)
	w, _ := newTestWorker(t, newMemStore(), &recordingTransport{}, time.Now, logger, nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	waitFor(t, "Run to start", func() bool { return w.running.Load() })
	if err := w.Run(ctx); err == nil {
		t.Error("second Run: got nil; want an error")
	}
	cancel()
	<-done
}

func TestNewWorkerConfig(t *testing.T) {
	logger, _ := newTestLogger(t)
	o := mustOutbox(t, newMemStore(), testKey(1), nil)
	valid := func() WorkerConfig {
		return WorkerConfig{Outbox: o, Transport: &recordingTransport{}, Templates: mustTemplates(t), Logger: logger}
	}
	tests := []struct {
		name string
		edit func(*WorkerConfig)
	}{
		{"nil outbox", func(c *WorkerConfig) { c.Outbox = nil }},
		{"nil transport", func(c *WorkerConfig) { c.Transport = nil }},
		{"nil templates", func(c *WorkerConfig) { c.Templates = nil }},
		{"nil logger", func(c *WorkerConfig) { c.Logger = nil }},
		{"margin not below lease", func(c *WorkerConfig) { c.Lease, c.LeaseMargin = time.Minute, time.Minute }},
		{"max backoff below base", func(c *WorkerConfig) { c.BaseBackoff, c.MaxBackoff = time.Minute, time.Second }},
		{"negative poll interval", func(c *WorkerConfig) { c.PollInterval = -time.Second }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid()
			tt.edit(&cfg)
			if _, err := NewWorker(cfg); err == nil {
				t.Error("got nil error; want one")
			}
		})
	}
	t.Run("shared registry", func(t *testing.T) {
		reg := prometheus.NewRegistry()
		for range 2 {
			cfg := valid()
			cfg.Registerer = reg
			if _, err := NewWorker(cfg); err != nil {
				t.Fatalf("got %v; want two workers on one registry", err)
			}
		}
	})
}

func TestBackoff(t *testing.T) {
	w := &Worker{baseBackoff: time.Second, maxBackoff: 10 * time.Minute}
	tests := []struct {
		n    int
		want time.Duration // the un-jittered delay; jitter keeps [want/2, want]
	}{
		{0, time.Second},
		{1, 2 * time.Second},
		{5, 32 * time.Second},
		{9, 512 * time.Second},
		{10, 10 * time.Minute},
		{24, 10 * time.Minute},
		{1000, 10 * time.Minute},
	}
	for _, tt := range tests {
		for range 20 {
			if got := w.backoff(tt.n); got < tt.want/2 || got > tt.want {
				t.Errorf("backoff(%d): got %s; want %s..%s", tt.n, got, tt.want/2, tt.want)
			}
		}
	}
}

func TestScrub(t *testing.T) {
	tests := []struct {
		name, err, link string
		want            string
	}{
		{"whole link", "rejected " + testLink, testLink, "rejected [redacted]"},
		{"token alone", "bad token " + testToken + ".", testLink, "bad token [redacted]."},
		{"token in path", "x /reset/" + testToken, "https://gate.example/reset/" + testToken, "x /reset/[redacted]"},
		{"no link", "dial tcp: refused", "", "dial tcp: refused"},
		{"long", strings.Repeat("é", 400), "", strings.Repeat("é", maxErrorLen/2) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := scrub(errors.New(tt.err), tt.link); got != tt.want {
				t.Errorf("got %q; want %q", got, tt.want)
			}
		})
	}
}

func TestOutboxSend(t *testing.T) {
	store := newMemStore()
	o := mustOutbox(t, store, testKey(1), nil)
	tests := []struct {
		name    string
		mail    accounts.Mail
		wantErr bool
	}{
		{"ok", accounts.Mail{To: "ann@example.com", Kind: accounts.MailPasswordChanged, Link: testLink}, false},
		{"no recipient", accounts.Mail{Kind: accounts.MailVerify, Link: testLink}, true},
		{"header injection", accounts.Mail{To: "ann@example.com\r\nBcc: x@example.com", Kind: accounts.MailVerify, Link: testLink}, true},
		{"unknown kind", accounts.Mail{To: "ann@example.com", Kind: "welcome", Link: testLink}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := o.Send(t.Context(), tt.mail); (err != nil) != tt.wantErr {
				t.Errorf("got %v; want error %v", err, tt.wantErr)
			}
		})
	}
	m, ok := store.only()
	if !ok {
		t.Fatal("got no single stored message")
	}
	if len(m.ID) != 32 || m.To != "ann@example.com" || m.Kind != accounts.MailPasswordChanged || m.CreatedAt.IsZero() {
		t.Errorf("got stored %+v; want a 32-hex id, recipient, kind and time", m)
	}
	if strings.Contains(string(m.Sealed), testToken) {
		t.Error("got the token in the stored message")
	}
	select {
	case <-o.poke:
	default:
		t.Error("got no wake-up for the worker")
	}
	if _, err := NewOutbox(store, testKey(1)[:16], nil); err == nil {
		t.Error("NewOutbox with a 16-byte key: got nil error; want one")
	}
}
