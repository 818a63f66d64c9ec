// Package accountstest gives the domain's tests what they need to run in
// milliseconds: an in-memory Store with the semantics the domain relies on
// (unique keys, exact single-record operations), a Mailer that records
// what was queued, a settable clock, and a Service wired with them.
package accountstest

import (
	"cmp"
	"context"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/accounts"
)

// Store is an in-memory accounts.Store. Its zero value is not usable; call
// NewStore. It is safe for concurrent use.
type Store struct {
	mu         sync.Mutex
	users      map[string]accounts.User
	claims     map[string]accounts.EmailClaim
	tokens     map[string]accounts.Token
	heads      map[string]head
	sessions   map[string]accounts.Session
	slots      map[string]accounts.MailSlot
	ledgerNext map[string]int
	failures   map[string]failures
	marks      map[string]time.Time
	identities map[string]accounts.Identity
	providers  map[string]string
	epochs     int
}

type head struct {
	hash      string
	expiresAt time.Time
}

type failures struct {
	epoch  string
	next   int
	lastAt time.Time
}

var _ accounts.Store = (*Store)(nil)

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{
		users: map[string]accounts.User{}, claims: map[string]accounts.EmailClaim{},
		tokens: map[string]accounts.Token{}, heads: map[string]head{}, sessions: map[string]accounts.Session{},
		slots: map[string]accounts.MailSlot{}, ledgerNext: map[string]int{}, failures: map[string]failures{},
		marks: map[string]time.Time{}, identities: map[string]accounts.Identity{}, providers: map[string]string{},
	}
}

// CreateUser implements accounts.UserStore.
func (s *Store) CreateUser(_ context.Context, u accounts.User) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[u.ID]; ok {
		return accounts.ErrConflict
	}
	s.users[u.ID] = u
	return nil
}

// User implements accounts.UserStore.
func (s *Store) User(_ context.Context, id string) (accounts.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		return accounts.User{}, accounts.ErrNotFound
	}
	return u, nil
}

// SetPassword implements accounts.UserStore.
func (s *Store) SetPassword(_ context.Context, userID, hash string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[userID]
	if !ok {
		return accounts.ErrNotFound
	}
	u.PasswordHash, u.PasswordChangedAt, u.UpdatedAt = hash, at, at
	s.users[userID] = u
	return nil
}

// ReplacePasswordHash implements accounts.UserStore.
func (s *Store) ReplacePasswordHash(_ context.Context, userID, oldHash, newHash string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[userID]
	if !ok || u.PasswordHash != oldHash {
		return accounts.ErrNotFound
	}
	u.PasswordHash = newHash
	s.users[userID] = u
	return nil
}

// ClaimEmail implements accounts.UserStore.
func (s *Store) ClaimEmail(_ context.Context, c accounts.EmailClaim) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.claims[c.Email]; ok {
		return accounts.ErrConflict
	}
	s.claims[c.Email] = c
	return nil
}

// EmailClaim implements accounts.UserStore.
func (s *Store) EmailClaim(_ context.Context, email string) (accounts.EmailClaim, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.claims[email]
	if !ok {
		return accounts.EmailClaim{}, accounts.ErrNotFound
	}
	return c, nil
}

// ReleaseEmail implements accounts.UserStore.
func (s *Store) ReleaseEmail(_ context.Context, email, userID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.claims[email]; ok && c.UserID == userID {
		delete(s.claims, email)
	}
	return nil
}

// InsertToken implements accounts.TokenStore.
func (s *Store) InsertToken(_ context.Context, t accounts.Token) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.tokens[t.Hash]; ok {
		return accounts.ErrConflict
	}
	s.tokens[t.Hash] = t
	return nil
}

// Token implements accounts.TokenStore.
func (s *Store) Token(_ context.Context, hash string) (accounts.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[hash]
	if !ok {
		return accounts.Token{}, accounts.ErrNotFound
	}
	return t, nil
}

// DeleteToken implements accounts.TokenStore.
func (s *Store) DeleteToken(_ context.Context, hash string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.tokens[hash]
	delete(s.tokens, hash)
	return ok, nil
}

func headKey(p accounts.Purpose, subject string) string { return string(p) + "|" + subject }

// SetTokenHead implements accounts.TokenStore.
func (s *Store) SetTokenHead(_ context.Context, p accounts.Purpose, subject, hash string, expiresAt time.Time) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.heads[headKey(p, subject)].hash
	s.heads[headKey(p, subject)] = head{hash: hash, expiresAt: expiresAt}
	return prev, nil
}

// TokenHead implements accounts.TokenStore.
func (s *Store) TokenHead(_ context.Context, p accounts.Purpose, subject string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.heads[headKey(p, subject)]
	if !ok {
		return "", accounts.ErrNotFound
	}
	return h.hash, nil
}

// DeleteTokenHead implements accounts.TokenStore.
func (s *Store) DeleteTokenHead(_ context.Context, p accounts.Purpose, subject string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.heads[headKey(p, subject)]
	delete(s.heads, headKey(p, subject))
	return h.hash, nil
}

// InsertSession implements accounts.SessionStore.
func (s *Store) InsertSession(_ context.Context, x accounts.Session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sessions[x.ID]; ok {
		return accounts.ErrConflict
	}
	s.sessions[x.ID] = x
	return nil
}

// Session implements accounts.SessionStore.
func (s *Store) Session(_ context.Context, id string) (accounts.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.sessions[id]
	if !ok {
		return accounts.Session{}, accounts.ErrNotFound
	}
	return x, nil
}

// TouchSession implements accounts.SessionStore.
func (s *Store) TouchSession(_ context.Context, id string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if x, ok := s.sessions[id]; ok {
		x.LastSeenAt = at
		s.sessions[id] = x
	}
	return nil
}

// DeleteSession implements accounts.SessionStore.
func (s *Store) DeleteSession(_ context.Context, id string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.sessions[id]
	delete(s.sessions, id)
	return ok, nil
}

// UserSessions implements accounts.SessionStore.
func (s *Store) UserSessions(_ context.Context, userID string) ([]accounts.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []accounts.Session
	for _, x := range s.sessions {
		if x.UserID == userID {
			out = append(out, x)
		}
	}
	slices.SortFunc(out, func(a, b accounts.Session) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out, nil
}

// DeleteUserSessions implements accounts.SessionStore.
func (s *Store) DeleteUserSessions(_ context.Context, userID, except string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for id, x := range s.sessions {
		if x.UserID == userID && id != except {
			delete(s.sessions, id)
			n++
		}
	}
	return n, nil
}

func slotKey(ledger string, n int) string { return ledger + "|" + strconv.Itoa(n) }

// MailLedgerNext implements accounts.LimitStore.
func (s *Store) MailLedgerNext(_ context.Context, ledger string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ledgerNext[ledger], nil
}

// ReserveMailSlot implements accounts.LimitStore.
func (s *Store) ReserveMailSlot(_ context.Context, ledger string, slot accounts.MailSlot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.slots[slotKey(ledger, slot.N)]; ok {
		return accounts.ErrConflict
	}
	s.slots[slotKey(ledger, slot.N)] = slot
	s.ledgerNext[ledger] = max(s.ledgerNext[ledger], slot.N+1)
	return nil
}

// MailSlot implements accounts.LimitStore.
func (s *Store) MailSlot(_ context.Context, ledger string, n int) (accounts.MailSlot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sl, ok := s.slots[slotKey(ledger, n)]
	if !ok {
		return accounts.MailSlot{}, accounts.ErrNotFound
	}
	return sl, nil
}

// FinishMailSlot implements accounts.LimitStore.
func (s *Store) FinishMailSlot(_ context.Context, ledger string, n int, queuedAt time.Time, void bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sl, ok := s.slots[slotKey(ledger, n)]
	if !ok {
		return accounts.ErrNotFound
	}
	sl.Void = void
	if !void {
		sl.QueuedAt = queuedAt
	}
	s.slots[slotKey(ledger, n)] = sl
	return nil
}

func markKey(a accounts.LoginAttempt, n int) string {
	return a.Email + "|" + a.Epoch + "|" + strconv.Itoa(n)
}

// BeginLoginAttempt implements accounts.LimitStore.
func (s *Store) BeginLoginAttempt(_ context.Context, email string, at time.Time) (accounts.LoginAttempt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.failures[email]
	a := accounts.LoginAttempt{Email: email, Epoch: f.epoch, N: f.next}
	for ; ; a.N++ {
		if _, taken := s.marks[markKey(a, a.N)]; !taken {
			s.marks[markKey(a, a.N)] = at
			return a, nil
		}
	}
}

// LoginAttemptTime implements accounts.LimitStore.
func (s *Store) LoginAttemptTime(_ context.Context, a accounts.LoginAttempt, n int) (time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.marks[markKey(a, n)]
	if !ok {
		return time.Time{}, accounts.ErrNotFound
	}
	return at, nil
}

// FailLoginAttempt implements accounts.LimitStore.
func (s *Store) FailLoginAttempt(_ context.Context, a accounts.LoginAttempt, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.failures[a.Email]
	if f.epoch != a.Epoch {
		return nil // an attempt of an epoch cleared meanwhile
	}
	f.next = max(f.next, a.N+1)
	f.lastAt = at
	s.failures[a.Email] = f
	return nil
}

// DropLoginAttempt implements accounts.LimitStore.
func (s *Store) DropLoginAttempt(_ context.Context, a accounts.LoginAttempt) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.marks, markKey(a, a.N))
	return nil
}

// ClearLoginFailures implements accounts.LimitStore.
func (s *Store) ClearLoginFailures(_ context.Context, email string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.epochs++
	s.failures[email] = failures{epoch: "e" + strconv.Itoa(s.epochs)}
	return nil
}

// InsertIdentity implements accounts.IdentityStore.
func (s *Store) InsertIdentity(_ context.Context, id accounts.Identity) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := id.Provider + ":" + id.Subject
	if _, ok := s.identities[key]; ok {
		return accounts.ErrConflict
	}
	s.identities[key] = id
	return nil
}

// Identity implements accounts.IdentityStore.
func (s *Store) Identity(_ context.Context, provider, subject string) (accounts.Identity, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.identities[provider+":"+subject]
	if !ok {
		return accounts.Identity{}, accounts.ErrNotFound
	}
	return id, nil
}

// DeleteIdentity implements accounts.IdentityStore.
func (s *Store) DeleteIdentity(_ context.Context, provider, subject string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.identities[provider+":"+subject]
	delete(s.identities, provider+":"+subject)
	return ok, nil
}

// ClaimProvider implements accounts.IdentityStore.
func (s *Store) ClaimProvider(_ context.Context, userID, provider, subject string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.providers[userID+"|"+provider]; ok {
		return accounts.ErrConflict
	}
	s.providers[userID+"|"+provider] = subject
	return nil
}

// ProviderClaim implements accounts.IdentityStore.
func (s *Store) ProviderClaim(_ context.Context, userID, provider string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, ok := s.providers[userID+"|"+provider]
	if !ok {
		return "", accounts.ErrNotFound
	}
	return sub, nil
}

// ReleaseProvider implements accounts.IdentityStore.
func (s *Store) ReleaseProvider(_ context.Context, userID, provider string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.providers, userID+"|"+provider)
	return nil
}

// DeleteExpired implements accounts.Store.
func (s *Store) DeleteExpired(_ context.Context, now, idleCutoff time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, t := range s.tokens {
		if cmp.Or(t.KeepUntil, t.ExpiresAt).Before(now) {
			delete(s.tokens, k)
		}
	}
	for k, h := range s.heads {
		if h.expiresAt.Before(now) {
			delete(s.heads, k)
		}
	}
	for k, x := range s.sessions {
		if x.ExpiresAt.Before(now) || x.LastSeenAt.Before(idleCutoff) {
			delete(s.sessions, k)
		}
	}
	for k, sl := range s.slots {
		if sl.ExpiresAt.Before(now) {
			delete(s.slots, k)
		}
	}
	return nil
}

// Mailer records the mails the domain queued, and the ones the quota held
// back. Set Fail to make Send fail (an outbox that cannot be written).
type Mailer struct {
	mu   sync.Mutex
	sent []accounts.Mail
	held []accounts.Mail
	Fail error
}

// Send implements accounts.Mailer.
func (m *Mailer) Send(_ context.Context, mail accounts.Mail) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		return m.Fail
	}
	m.sent = append(m.sent, mail)
	return nil
}

// HeldBack records a mail the quota held back (accounts.Deps.HeldBack).
func (m *Mailer) HeldBack(_ context.Context, mail accounts.Mail) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.held = append(m.held, mail)
}

// Sent returns the mails queued to `to` ("" for all), oldest first.
func (m *Mailer) Sent(to string) []accounts.Mail {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []accounts.Mail
	for _, x := range m.sent {
		if to == "" || x.To == to {
			out = append(out, x)
		}
	}
	return out
}

// Held returns the mails held back for `to` ("" for all).
func (m *Mailer) Held(to string) []accounts.Mail {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []accounts.Mail
	for _, x := range m.held {
		if to == "" || x.To == to {
			out = append(out, x)
		}
	}
	return out
}

// Clock is a settable clock, stopped until the test moves it.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock stopped at a fixed, round time.
func NewClock() *Clock { return NewClockAt(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)) }

// NewClockAt returns a clock stopped at t.
func NewClockAt(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Env is a Service wired with an in-memory store, a recording mailer and a
// stopped clock.
type Env struct {
	Service *accounts.Service
	Store   *Store
	Mailer  *Mailer
	Clock   *Clock
	// resolved counts the requests resolved, for their refs; seen is how
	// much of the mailer's queue Resolve has taken.
	resolved, seen int
}

// New returns an Env with the defaults of config.yaml, changed by edit
// (may be nil). Hashing uses argon2id at a test cost.
func New(edit func(*accounts.Config)) *Env {
	cfg := accounts.Config{
		PublicURL: "https://gate.example", VerifyTTL: 24 * time.Hour, ResetTTL: time.Hour,
		IdleTimeout: 168 * time.Hour, AbsoluteTimeout: 720 * time.Hour,
		LockoutAfter: 5, LockoutMax: 15 * time.Minute, MailInterval: time.Minute, MailPerHour: 5,
		RecentAuth: 15 * time.Minute, IPv6Prefix: 64, Providers: []string{"google", "github"},
		ProviderLabels: map[string]string{"google": "Google", "github": "GitHub"},
	}
	if edit != nil {
		edit(&cfg)
	}
	e := &Env{Store: NewStore(), Mailer: &Mailer{}, Clock: NewClock()}
	e.Service = accounts.NewService(cfg, accounts.Deps{
		Store:    e.Store,
		Mailer:   e.Mailer,
		Hasher:   accounts.NewHasher(accounts.Argon2Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1}, 4, 64, time.Minute),
		Policy:   accounts.NewPolicy(12),
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:      e.Clock.Now,
		HeldBack: e.Mailer.HeldBack,
	})
	return e
}

// Resolve has the mail worker's turn: it resolves the requests queued since
// the last call, in queue order, and returns the mails they became, with
// the plain mails queued meanwhile (requests that become nothing are left
// out). Mailer.Sent keeps the raw queue.
func (e *Env) Resolve(ctx context.Context) ([]accounts.Mail, error) {
	e.Mailer.mu.Lock()
	queued := e.Mailer.sent[e.seen:]
	e.seen = len(e.Mailer.sent)
	e.Mailer.mu.Unlock()
	var out []accounts.Mail
	for _, m := range queued {
		if !m.Kind.IsRequest() {
			out = append(out, m)
			continue
		}
		e.resolved++
		resolved, ok, err := e.Service.ResolveMail(ctx, "request-"+strconv.Itoa(e.resolved), m)
		if err != nil {
			return out, err
		}
		if ok {
			out = append(out, resolved)
		}
	}
	return out, nil
}
