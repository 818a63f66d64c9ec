package mail

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/internal/humantime"
)

// Worker defaults.
const (
	DefaultPollInterval = time.Second
	DefaultLease        = 2 * time.Minute
	DefaultBaseBackoff  = time.Second
	DefaultMaxBackoff   = 10 * time.Minute
	DefaultMaxAttempts  = 25
	DefaultBatchSize    = 100
)

// recordTimeout bounds the store writes that record an outcome. They run even
// after shutdown began: an unrecorded delivery would be repeated by another
// worker once the lease expires.
const recordTimeout = 10 * time.Second

// maxErrorLen keeps stored and logged delivery errors short.
const maxErrorLen = 300

// WorkerConfig configures a Worker. Outbox, Transport, Templates and Logger
// are required; zero durations and counts take the defaults.
type WorkerConfig struct {
	// Outbox is the queue to work on; the worker shares its store and key and
	// is woken by its Send.
	Outbox    *Outbox
	Transport Transport
	Templates *Templates
	Logger    *slog.Logger

	// ProductName and PublicURL are passed to every template.
	ProductName string // default "Gatehouse"
	PublicURL   string

	// PollInterval is how often the store is checked for mail queued by
	// other instances or due for a retry (default 1s).
	PollInterval time.Duration
	// Lease is how long a claimed attempt belongs to this worker (default 2m).
	Lease time.Duration
	// LeaseMargin is how long before the end of its lease a delivery is
	// abandoned, so that it never overlaps another worker's takeover,
	// even with some clock skew between instances (default Lease/4).
	LeaseMargin time.Duration
	// BaseBackoff is the delay after the first failure; it doubles with each
	// failure up to MaxBackoff, with jitter (defaults 1s and 10m).
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
	// MaxAttempts is how many attempts a mail gets before it is abandoned (default 25).
	MaxAttempts int
	// BatchSize is how many queued mails one poll looks at (default 100).
	BatchSize int
	// Owner identifies this worker in its claims (default: random).
	Owner string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Registerer, if not nil, receives the worker's metrics.
	Registerer prometheus.Registerer
	// Resolver turns queued requests (accounts.MailKind.IsRequest) into
	// the mail to send; without one they are dropped.
	Resolver Resolver
}

// Resolver decides, when a queued request's turn comes, what mail it
// becomes: ok false means none. It is called at every delivery attempt,
// with the queued message's id as ref. accounts.Service implements it.
type Resolver interface {
	ResolveMail(ctx context.Context, ref string, m accounts.Mail) (mail accounts.Mail, ok bool, err error)
}

// Worker delivers the outbox. Several workers, in one process or many, may
// share a store: each attempt is claimed by inserting it, which only one
// worker can do, and each claim is a lease that others take over once it
// expires, so a crashed worker delays a mail but does not lose it.
type Worker struct {
	store     OutboxStore
	sealer    *sealer
	poke      <-chan struct{}
	transport Transport
	templates *Templates
	resolver  Resolver
	logger    *slog.Logger
	now       func() time.Time
	metrics   workerMetrics

	productName  string
	publicURL    string
	pollInterval time.Duration
	lease        time.Duration
	leaseMargin  time.Duration
	baseBackoff  time.Duration
	maxBackoff   time.Duration
	maxAttempts  int
	batchSize    int
	owner        string

	running atomic.Bool
	// hints remembers, per message, the last attempt known to exist and when
	// it is worth looking again, so that a mail waiting for a retry costs no
	// store reads at every poll. Only Run's goroutine uses it.
	hints map[string]hint
}

type hint struct {
	known     int // index of the last attempt known to exist
	notBefore time.Time
}

type workerMetrics struct {
	sent, failed, abandoned prometheus.Counter
	depth                   prometheus.Gauge
}

// NewWorker checks cfg, applies the defaults and registers the metrics.
func NewWorker(cfg WorkerConfig) (*Worker, error) {
	switch {
	case cfg.Outbox == nil:
		return nil, errors.New("new mail worker: nil outbox")
	case cfg.Transport == nil:
		return nil, errors.New("new mail worker: nil transport")
	case cfg.Templates == nil:
		return nil, errors.New("new mail worker: nil templates")
	case cfg.Logger == nil:
		return nil, errors.New("new mail worker: nil logger")
	}
	w := &Worker{
		store:        cfg.Outbox.store,
		sealer:       cfg.Outbox.sealer,
		poke:         cfg.Outbox.poke,
		transport:    cfg.Transport,
		templates:    cfg.Templates,
		resolver:     cfg.Resolver,
		logger:       cfg.Logger,
		now:          cfg.Now,
		productName:  cmp.Or(cfg.ProductName, "Gatehouse"),
		publicURL:    cfg.PublicURL,
		pollInterval: cmp.Or(cfg.PollInterval, DefaultPollInterval),
		lease:        cmp.Or(cfg.Lease, DefaultLease),
		baseBackoff:  cmp.Or(cfg.BaseBackoff, DefaultBaseBackoff),
		maxBackoff:   cmp.Or(cfg.MaxBackoff, DefaultMaxBackoff),
		maxAttempts:  cmp.Or(cfg.MaxAttempts, DefaultMaxAttempts),
		batchSize:    cmp.Or(cfg.BatchSize, DefaultBatchSize),
		owner:        cmp.Or(cfg.Owner, newID()),
		hints:        make(map[string]hint),
	}
	if w.now == nil {
		w.now = time.Now
	}
	w.leaseMargin = cmp.Or(cfg.LeaseMargin, w.lease/4)
	switch {
	case w.pollInterval < 0, w.lease < 0, w.leaseMargin < 0, w.baseBackoff < 0, w.maxBackoff < 0,
		w.maxAttempts < 0, w.batchSize < 0:
		return nil, errors.New("new mail worker: negative setting")
	case w.leaseMargin >= w.lease:
		return nil, fmt.Errorf("new mail worker: lease margin %s must be shorter than the lease %s", w.leaseMargin, w.lease)
	case w.maxBackoff < w.baseBackoff:
		return nil, fmt.Errorf("new mail worker: max backoff %s is below base backoff %s", w.maxBackoff, w.baseBackoff)
	}
	var err error
	if w.metrics, err = newWorkerMetrics(cfg.Registerer); err != nil {
		return nil, fmt.Errorf("new mail worker: %w", err)
	}
	return w, nil
}

func newWorkerMetrics(r prometheus.Registerer) (workerMetrics, error) {
	m := workerMetrics{
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_mail_sent_total", Help: "Mails handed to the transport.",
		}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_mail_failed_attempts_total", Help: "Delivery attempts that failed (each is retried until abandoned).",
		}),
		abandoned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_mail_abandoned_total", Help: "Mails dropped after the last attempt or because they could not be decrypted or rendered.",
		}),
		depth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gatehouse_mail_queue_depth", Help: "Queued mails seen by the last poll (at most the batch size).",
		}),
	}
	if r == nil {
		return m, nil
	}
	var err error
	if m.sent, err = register(r, m.sent); err != nil {
		return m, err
	}
	if m.failed, err = register(r, m.failed); err != nil {
		return m, err
	}
	if m.abandoned, err = register(r, m.abandoned); err != nil {
		return m, err
	}
	if m.depth, err = register(r, m.depth); err != nil {
		return m, err
	}
	return m, nil
}

// register registers c, or returns the collector already registered under its
// name, so that two workers in one process can share a registry.
func register[T prometheus.Collector](r prometheus.Registerer, c T) (T, error) {
	err := r.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(T); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("register mail metrics: %w", err)
}

// Run delivers mail until ctx is cancelled, then returns nil. A delivery in
// progress when ctx ends is given up where the transport allows it, and its
// outcome is still recorded, so another worker can retry it at once.
func (w *Worker) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("mail worker: already running")
	}
	defer w.running.Store(false)
	w.logger.InfoContext(ctx, "mail worker started", "event", "mail_worker_started", "owner", w.owner)
	ticker := time.NewTicker(w.pollInterval)
	defer ticker.Stop()
	for {
		w.poll(ctx)
		select {
		case <-ctx.Done():
			w.logger.InfoContext(ctx, "mail worker stopped", "event", "mail_worker_stopped", "owner", w.owner)
			return nil
		case <-ticker.C:
		case <-w.poke:
		}
	}
}

// poll works through one batch of queued mail.
func (w *Worker) poll(ctx context.Context) {
	msgs, err := w.store.PendingMessages(ctx, w.batchSize)
	if err != nil {
		w.storeFailed(ctx, "list queued mail", err)
		return
	}
	w.metrics.depth.Set(float64(len(msgs)))
	seen := make(map[string]bool, len(msgs))
	for _, m := range msgs {
		if ctx.Err() != nil {
			return
		}
		seen[m.ID] = true
		w.process(ctx, m)
	}
	for id := range w.hints {
		if !seen[id] {
			delete(w.hints, id)
		}
	}
}

// process decides what to do with one queued mail, from its last attempt.
func (w *Worker) process(ctx context.Context, m StoredMessage) {
	now := w.now()
	h, hinted := w.hints[m.ID]
	if hinted && now.Before(h.notBefore) {
		return
	}
	last, count, err := w.lastAttempt(ctx, m.ID, h.known)
	if errors.Is(err, errGone) {
		delete(w.hints, m.ID)
		return
	}
	if err != nil {
		w.storeFailed(ctx, "read mail attempts", err, "message_id", m.ID)
		return
	}
	switch {
	case count == 0:
		w.claim(ctx, m, 0, now)
	case last.Outcome == OutcomeSent:
		// Its sender stopped between recording the delivery and deleting it.
		w.remove(ctx, m.ID, count)
	case last.Outcome == OutcomeInFlight && now.Before(last.LeaseUntil):
		w.hints[m.ID] = hint{known: count - 1, notBefore: w.recheckInFlight(now, last.LeaseUntil)}
	case count >= w.maxAttempts:
		// The last attempt failed, or its worker crashed.
		w.abandon(ctx, m, count, last.Error)
	case last.Outcome == OutcomeFailed && now.Before(last.NextAt):
		w.hints[m.ID] = hint{known: count - 1, notBefore: last.NextAt}
	default:
		// Failed and due, or in flight with an expired lease: its worker crashed.
		w.claim(ctx, m, count, now)
	}
}

// inFlightRechecks is how many poll intervals a worker waits before it looks
// again at a mail another worker is delivering.
const inFlightRechecks = 2

// recheckInFlight says when to look again at a mail that another worker
// holds until leaseUntil. Not at the end of the lease: a worker that stops
// (SIGTERM) releases what it holds by recording a failed attempt due at
// once, and another running instance should send that mail within seconds,
// not minutes. Looking costs one read of the attempt.
func (w *Worker) recheckInFlight(now, leaseUntil time.Time) time.Time {
	if at := now.Add(inFlightRechecks * w.pollInterval); at.Before(leaseUntil) {
		return at
	}
	return leaseUntil
}

// errGone: attempts known to exist have vanished, so the mail was delivered
// and deleted by another worker since it was listed.
var errGone = errors.New("message gone")

// lastAttempt returns the last attempt of a message and the number of
// attempts, probing from attempt from (known to exist, or 0).
func (w *Worker) lastAttempt(ctx context.Context, id string, from int) (Attempt, int, error) {
	var last Attempt
	count := 0
	for n := from; n < w.maxAttempts; n++ {
		a, err := w.store.Attempt(ctx, id, n)
		if errors.Is(err, accounts.ErrNotFound) {
			break
		}
		if err != nil {
			return Attempt{}, 0, fmt.Errorf("read attempt %d: %w", n, err)
		}
		last, count = a, n+1
	}
	if from > 0 && count == 0 {
		return Attempt{}, 0, errGone
	}
	return last, count, nil
}

// claim tries to become the holder of attempt n and, if it does, delivers.
func (w *Worker) claim(ctx context.Context, m StoredMessage, n int, now time.Time) {
	a := Attempt{MessageID: m.ID, N: n, Owner: w.owner, LeaseUntil: now.Add(w.lease)}
	if err := w.store.ClaimAttempt(ctx, a); err != nil {
		if errors.Is(err, accounts.ErrConflict) {
			// Another worker holds it.
			w.hints[m.ID] = hint{known: n, notBefore: w.recheckInFlight(now, a.LeaseUntil)}
			return
		}
		w.storeFailed(ctx, "claim mail attempt", err, "message_id", m.ID, "attempt", n)
		return
	}
	// Deleting a delivered mail also deletes its attempts, which makes their
	// numbers claimable again: a claim on a mail listed before another worker
	// delivered it succeeds. The store deletes the message first, so checking
	// for it now tells the two cases apart.
	if _, err := w.store.Message(ctx, m.ID); err != nil {
		if errors.Is(err, accounts.ErrNotFound) {
			w.remove(ctx, m.ID, n+1)
			delete(w.hints, m.ID)
			return
		}
		w.failed(ctx, m, a, scrub(fmt.Errorf("check claimed mail: %w", err), ""), false)
		return
	}
	w.deliver(ctx, m, a)
}

// deliver sends the mail of attempt a, which this worker holds, and records the outcome.
func (w *Worker) deliver(ctx context.Context, m StoredMessage, a Attempt) {
	data, err := w.sealer.open(m)
	if err != nil {
		// Another instance may hold the key this mail was sealed with (a
		// rolling secret change, or a misconfigured instance): leave the
		// mail to the retries instead of losing it; it is abandoned only
		// after the last attempt.
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
		defer rcancel()
		w.failed(rctx, m, a, err.Error(), false)
		return
	}
	to, kind := m.To, m.Kind
	if kind.IsRequest() {
		resolved, ok, err := w.resolve(ctx, m)
		if err != nil {
			rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
			defer rcancel()
			w.failed(rctx, m, a, scrub(err, ""), ctx.Err() != nil)
			return
		}
		if !ok {
			w.settle(ctx, m, a)
			return
		}
		to, kind = resolved.To, resolved.Kind
		data = sealedData{Link: resolved.Link, Email: resolved.To, ValidFor: resolved.ValidFor, Provider: resolved.Provider, ProviderAccount: resolved.ProviderAccount}
	}
	r, err := w.templates.Render(kind, TemplateData{
		Link: data.Link, Email: data.Email, ProductName: w.productName, PublicURL: w.publicURL,
		ValidFor: humantime.Duration(data.ValidFor), Provider: data.Provider, ProviderAccount: data.ProviderAccount,
	})
	if err != nil {
		w.drop(ctx, m, a, scrub(err, data.Link))
		return
	}
	sendCtx, cancel := context.WithTimeout(ctx, a.LeaseUntil.Sub(w.now())-w.leaseMargin)
	err = w.transport.Deliver(sendCtx, to, r)
	cancel()

	// The outcome is recorded even when ctx was cancelled meanwhile.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer rcancel()
	if err != nil {
		// A delivery cut short by shutdown is not the mail's fault: let the
		// next worker retry it at once.
		w.failed(rctx, m, a, scrub(err, data.Link), ctx.Err() != nil)
		return
	}
	w.sent(rctx, m, a)
}

// resolve asks the resolver what a queued request becomes.
func (w *Worker) resolve(ctx context.Context, m StoredMessage) (accounts.Mail, bool, error) {
	if w.resolver == nil {
		return accounts.Mail{}, false, nil
	}
	data, err := w.sealer.open(m)
	if err != nil {
		return accounts.Mail{}, false, err
	}
	resolved, ok, err := w.resolver.ResolveMail(ctx, m.ID, accounts.Mail{To: m.To, Kind: m.Kind, PasswordHash: data.PasswordHash, ReturnTo: data.ReturnTo})
	if err != nil {
		return accounts.Mail{}, false, fmt.Errorf("resolve %s: %w", m.Kind, err)
	}
	if ok && (resolved.Kind.IsRequest() || !knownKind(resolved.Kind)) {
		return accounts.Mail{}, false, fmt.Errorf("resolve %s: got kind %q", m.Kind, resolved.Kind)
	}
	return resolved, ok, nil
}

// settle finishes a request that resolved to no mail: nothing is sent, and
// the request is deleted as a delivered mail would be.
func (w *Worker) settle(ctx context.Context, m StoredMessage, a Attempt) {
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer rcancel()
	a.Outcome, a.FinishedAt = OutcomeSent, w.now()
	if err := w.store.FinishAttempt(rctx, a); err != nil {
		w.storeFailed(rctx, "record settled request", err, "message_id", m.ID)
	}
	w.remove(rctx, m.ID, a.N+1)
	delete(w.hints, m.ID)
	w.logger.DebugContext(ctx, "mail request settled without a mail", "event", "mail_request_settled", "message_id", m.ID, "kind", m.Kind)
}

// sent records a delivery and deletes the mail.
func (w *Worker) sent(ctx context.Context, m StoredMessage, a Attempt) {
	now := w.now()
	a.Outcome, a.FinishedAt = OutcomeSent, now
	if now.After(a.LeaseUntil) {
		w.logger.WarnContext(ctx, "mail sent after its lease ended; another worker may send it again",
			"event", "mail_lease_overrun", "message_id", m.ID, "kind", m.Kind, "attempt", a.N)
	}
	// Recording first means a crash before the delete leaves a mail that the
	// next worker deletes instead of sending again.
	finishErr := w.store.FinishAttempt(ctx, a)
	deleteErr := w.store.DeleteMessage(ctx, m.ID, a.N+1)
	if finishErr != nil && deleteErr != nil {
		w.logger.ErrorContext(ctx, "mail sent but not recorded; it will be sent again when the lease ends",
			"event", "mail_unrecorded", "message_id", m.ID, "kind", m.Kind, "attempt", a.N, "error", finishErr.Error())
	}
	delete(w.hints, m.ID)
	w.metrics.sent.Inc()
	w.logger.InfoContext(ctx, "mail sent", "event", "mail_sent", "message_id", m.ID, "kind", m.Kind, "attempt", a.N)
}

// failed records a failed attempt, to be retried after a backoff (or at once
// if retryNow), and abandons the mail after the last attempt.
func (w *Worker) failed(ctx context.Context, m StoredMessage, a Attempt, errText string, retryNow bool) {
	now := w.now()
	a.Outcome, a.FinishedAt, a.Error, a.NextAt = OutcomeFailed, now, errText, now
	if !retryNow {
		a.NextAt = now.Add(w.backoff(a.N))
	}
	w.metrics.failed.Inc()
	if err := w.store.FinishAttempt(ctx, a); err != nil {
		// The attempt stays in flight and counts as failed when its lease ends.
		w.storeFailed(ctx, "record failed mail attempt", err, "message_id", m.ID, "attempt", a.N)
	}
	if a.N+1 >= w.maxAttempts {
		w.abandon(ctx, m, a.N+1, errText)
		return
	}
	w.hints[m.ID] = hint{known: a.N, notBefore: a.NextAt}
	w.logger.WarnContext(ctx, "mail delivery failed", "event", "mail_failed",
		"message_id", m.ID, "kind", m.Kind, "attempt", a.N, "retry_at", a.NextAt, "error", errText)
}

// abandon deletes a mail whose attempts all failed.
func (w *Worker) abandon(ctx context.Context, m StoredMessage, attempts int, lastErr string) {
	w.metrics.abandoned.Inc()
	w.logger.ErrorContext(ctx, "mail abandoned", "event", "mail_abandoned",
		"message_id", m.ID, "kind", m.Kind, "to", m.To, "attempts", attempts, "error", lastErr)
	w.remove(ctx, m.ID, attempts)
	delete(w.hints, m.ID)
}

// drop deletes a mail that can never be sent: its template cannot render it.
func (w *Worker) drop(ctx context.Context, m StoredMessage, a Attempt, errText string) {
	w.metrics.abandoned.Inc()
	w.logger.ErrorContext(ctx, "mail dropped", "event", "mail_dropped",
		"message_id", m.ID, "kind", m.Kind, "to", m.To, "error", errText)
	w.remove(ctx, m.ID, a.N+1)
	delete(w.hints, m.ID)
}

// remove deletes a mail and its attempts. If that fails, a later poll finds
// the mail again and reaches the same decision.
func (w *Worker) remove(ctx context.Context, id string, attempts int) {
	if err := w.store.DeleteMessage(ctx, id, attempts); err != nil {
		w.storeFailed(ctx, "delete mail", err, "message_id", id)
	}
}

func (w *Worker) storeFailed(ctx context.Context, what string, err error, attrs ...any) {
	if ctx.Err() != nil {
		return // shutting down; the next worker picks up where this one stopped
	}
	w.logger.WarnContext(ctx, what, append([]any{"event", "mail_store_failed", "error", err.Error()}, attrs...)...)
}

// backoff returns the delay after failed attempt n (0-based).
func (w *Worker) backoff(n int) time.Duration {
	d := w.baseBackoff
	for i := 0; i < n && d < w.maxBackoff; i++ {
		d *= 2
	}
	d = min(d, w.maxBackoff)
	// Equal jitter: the fixed half keeps delays growing; the random half keeps
	// workers that failed together during an outage from retrying in lockstep.
	return d/2 + rand.N(d/2+1)
}

// scrub returns a short error text without the link or the secrets in it.
// Errors come from servers and libraries that might quote what they were
// given, and the text is stored and logged.
func scrub(err error, link string) string {
	s := err.Error()
	for _, secret := range linkSecrets(link) {
		s = strings.ReplaceAll(s, secret, "[redacted]")
	}
	if len(s) > maxErrorLen {
		s = strings.ToValidUTF8(s[:maxErrorLen], "") + "…"
	}
	return s
}

// linkSecrets returns the link and its parts long enough to be tokens.
func linkSecrets(link string) []string {
	if link == "" {
		return nil
	}
	const minSecret = 16
	secrets := []string{link}
	u, err := url.Parse(link)
	if err != nil {
		return secrets
	}
	for _, vs := range u.Query() {
		for _, v := range vs {
			if len(v) >= minSecret {
				secrets = append(secrets, v)
			}
		}
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if len(seg) >= minSecret {
			secrets = append(secrets, seg)
		}
	}
	if len(u.Fragment) >= minSecret {
		secrets = append(secrets, u.Fragment)
	}
	return secrets
}
