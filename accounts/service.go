package accounts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Config holds the domain's settings.
type Config struct {
	// PublicURL is the origin every mailed link starts with, never a request's Host.
	PublicURL       string
	VerifyTTL       time.Duration
	ResetTTL        time.Duration
	IdleTimeout     time.Duration
	AbsoluteTimeout time.Duration
	// SessionCacheTTL bounds how long a checked session is trusted without
	// asking the store. Changes made on this instance take effect at once;
	// changes made on another instance within this bound. 0 disables it.
	SessionCacheTTL time.Duration
	// LockoutAfter failed sign-ins start an exponential back-off, capped at LockoutMax.
	LockoutAfter int
	LockoutMax   time.Duration
	// MailInterval and MailPerHour bound the mails one address receives per
	// kind group (AB-2): at most one per MailInterval, MailPerHour an hour.
	MailInterval time.Duration
	MailPerHour  int
	// Providers lists the configured sign-in providers by id;
	// ProviderLabels names them for people ("google" → "Google").
	Providers      []string
	ProviderLabels map[string]string
	// AutoLinkVerifiedEmail links a provider identity to the existing
	// account with the same verified address without asking its owner for
	// proof. Off by default (LK-2).
	AutoLinkVerifiedEmail bool
	// RecentAuth is how long after signing in a session may connect a
	// provider or set a first password.
	RecentAuth time.Duration
	// IPv6Prefix is how many leading bits of an IPv6 client address the
	// per-IP limits count as one client (64: a subscriber's whole /64,
	// which one host can roam across at will). 128 counts each address.
	IPv6Prefix int
}

// Deps are the collaborators of a Service.
type Deps struct {
	Store  Store
	Mailer Mailer
	Hasher *Hasher
	Policy *Policy
	// PerIP and PerAddress rate-limit the endpoints that check a password or
	// send mail. Nil means unlimited.
	PerIP      Limiter
	PerAddress Limiter
	Logger     *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// HeldBack, if not nil, is told of each mail the quota refused (the
	// development mailbox lists them).
	HeldBack func(context.Context, Mail)
}

// Service implements every account use case. It is safe for concurrent use.
type Service struct {
	cfg    Config
	store  Store
	mailer Mailer
	hasher *Hasher
	policy *Policy
	perIP  Limiter
	perAdr Limiter
	log    *slog.Logger
	now    func() time.Time
	cache  *sessionCache
	claims claimCache
	held   func(context.Context, Mail)
}

// NewService returns a Service.
func NewService(cfg Config, d Deps) *Service {
	now := d.Now
	if now == nil {
		now = time.Now
	}
	return &Service{
		cfg:    cfg,
		store:  d.Store,
		mailer: d.Mailer,
		hasher: d.Hasher,
		policy: d.Policy,
		perIP:  d.PerIP,
		perAdr: d.PerAddress,
		log:    d.Logger,
		now:    func() time.Time { return now().UTC().Truncate(time.Millisecond) },
		cache:  newSessionCache(cfg.SessionCacheTTL),
		held:   d.HeldBack,
	}
}

// MinPasswordLength is the configured minimum, for forms and hints.
func (s *Service) MinPasswordLength() int { return s.policy.MinLength }

// Action names an endpoint class for rate limiting.
type Action string

// Rate-limited actions.
const (
	ActLogin  Action = "login"
	ActSignup Action = "signup"
	ActResend Action = "resend"
	ActForgot Action = "forgot"
	ActReset  Action = "reset"
	ActVerify Action = "verify"
	ActChange Action = "change"
	// ActProvider is starting a sign-in at a provider: each start stores a
	// flow state for ten minutes, so it is limited per IP like the others.
	ActProvider Action = "provider"
)

// limit applies the per-IP and per-address limits of an action. The address
// is counted whether or not an account exists, so the answer reveals nothing.
func (s *Service) limit(a Action, c Client, email string) error {
	var wait time.Duration
	if s.perIP != nil && c.IP != "" {
		if ok, d := s.perIP.Allow(string(a) + "|ip|" + clientNetwork(c.IP, s.cfg.IPv6Prefix)); !ok {
			wait = max(wait, d)
		}
	}
	if s.perAdr != nil && email != "" {
		if ok, d := s.perAdr.Allow(string(a) + "|addr|" + email); !ok {
			wait = max(wait, d)
		}
	}
	if wait > 0 {
		s.log.Info("rate limited", "event", "rate_limited", "action", string(a), "ip", c.IP)
		return &RateLimitError{RetryAfter: wait}
	}
	return nil
}

// clientNetwork is what the per-IP limits count as one client: an IPv4
// address, or an IPv6 address's leading prefix bits (an IPv4-mapped IPv6
// address counts as the IPv4 address).
func clientNetwork(ip string, prefix int) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is4() || prefix <= 0 || prefix >= 128 {
		return addr.String()
	}
	p, err := addr.Prefix(prefix)
	if err != nil {
		return addr.String()
	}
	return p.String()
}

// LimitProviderStart applies the per-IP limit to starting a provider
// sign-in; it returns a *RateLimitError when the client is over it.
func (s *Service) LimitProviderStart(c Client) error {
	return s.limit(ActProvider, c, "")
}

// mailGroup groups mail kinds that share a per-address quota. Notices of a
// completed password change are not limited: they are caused by a successful,
// already rate-limited action and must always reach the owner.
func mailGroup(k MailKind) string {
	switch k {
	case MailVerify, MailAccountExists:
		return "signup"
	case MailReset:
		return "reset"
	case MailLinkConfirm:
		return "link"
	default:
		return ""
	}
}

// mailLink builds a mailed link from the public URL, never from a request's
// Host. returnTo, already checked by the caller, rides along so that a user
// who signed up on the way to an app gets back to it.
func (s *Service) mailLink(path, token, returnTo string) string {
	q := url.Values{}
	if token != "" {
		q.Set("token", token)
	}
	if returnTo != "" {
		q.Set("return_to", returnTo)
	}
	if len(q) == 0 {
		return s.cfg.PublicURL + path
	}
	return s.cfg.PublicURL + path + "?" + q.Encode()
}

// issueToken stores a new token for (purpose, subject), makes it the newest,
// and deletes the one it replaced. A crash between the steps leaves at worst
// a record no head names, which no request can redeem and the sweep removes.
func (s *Service) issueToken(ctx context.Context, t Token, ttl time.Duration) (raw string, err error) {
	raw, t.Hash = newSecret()
	t.CreatedAt = s.now()
	t.ExpiresAt = t.CreatedAt.Add(ttl)
	t.KeepUntil = t.ExpiresAt
	if t.Purpose == PurposeVerify {
		t.KeepUntil = t.ExpiresAt.Add(lapsedSignupKeep)
	}
	if err := s.store.InsertToken(ctx, t); err != nil {
		return "", fmt.Errorf("insert token: %w", err)
	}
	prev, err := s.store.SetTokenHead(ctx, t.Purpose, t.Subject, t.Hash, t.KeepUntil)
	if err != nil {
		return "", fmt.Errorf("set token head: %w", err)
	}
	if prev != "" && prev != t.Hash {
		if _, err := s.store.DeleteToken(ctx, prev); err != nil {
			return "", fmt.Errorf("delete replaced token: %w", err)
		}
	}
	return raw, nil
}

// liveToken returns the token for raw if it exists, has purpose p, has not
// expired and is still the newest of its subject. It does not consume it.
func (s *Service) liveToken(ctx context.Context, p Purpose, raw string) (Token, error) {
	if !validTokenSyntax(raw) {
		return Token{}, ErrTokenInvalid
	}
	t, err := s.store.Token(ctx, hashSecret(raw))
	if errors.Is(err, ErrNotFound) {
		return Token{}, ErrTokenInvalid
	}
	if err != nil {
		return Token{}, fmt.Errorf("find token: %w", err)
	}
	if t.Purpose != p || !s.now().Before(t.ExpiresAt) {
		return Token{}, ErrTokenInvalid
	}
	head, err := s.store.TokenHead(ctx, p, t.Subject)
	if errors.Is(err, ErrNotFound) || (err == nil && !equalHash(head, t.Hash)) {
		return Token{}, ErrTokenInvalid
	}
	if err != nil {
		return Token{}, fmt.Errorf("find token head: %w", err)
	}
	return t, nil
}

// CheckToken reports whether a mailed link is still good, without using it
// (GET must never consume: mail scanners prefetch links).
func (s *Service) CheckToken(ctx context.Context, p Purpose, raw string) error {
	_, err := s.liveToken(ctx, p, raw)
	return err
}

// cancelTokens voids the pending tokens of (purpose, subject).
func (s *Service) cancelTokens(ctx context.Context, p Purpose, subject string) error {
	prev, err := s.store.DeleteTokenHead(ctx, p, subject)
	if err != nil {
		return fmt.Errorf("delete token head: %w", err)
	}
	if prev != "" {
		if _, err := s.store.DeleteToken(ctx, prev); err != nil {
			return fmt.Errorf("delete token: %w", err)
		}
	}
	return nil
}

// userByEmail returns the user owning a normalized address. A claim whose
// user record is missing (a creation interrupted between its two inserts)
// counts as no user.
//
// Claims are written once and never change owner (a dangling one may be
// released, after which its user id no longer exists), so this instance
// remembers them: a sign-in then needs one read fewer.
func (s *Service) userByEmail(ctx context.Context, email string) (User, error) {
	if id, ok := s.claims.get(email); ok {
		u, err := s.store.User(ctx, id)
		if !errors.Is(err, ErrNotFound) {
			return u, err
		}
		s.claims.drop(email) // released meanwhile: ask the store again
	}
	c, err := s.store.EmailClaim(ctx, email)
	if err != nil {
		return User{}, err
	}
	u, err := s.store.User(ctx, c.UserID)
	if err == nil {
		s.claims.put(email, c.UserID)
	}
	return u, err
}

// maxCachedClaims bounds the claim cache; past it the cache starts over.
const maxCachedClaims = 100_000

// claimCache maps addresses to the user ids that claimed them.
type claimCache struct {
	mu sync.RWMutex
	m  map[string]string
}

func (c *claimCache) get(email string) (string, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	id, ok := c.m[email]
	return id, ok
}

func (c *claimCache) put(email, userID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedClaims {
		c.m = make(map[string]string)
	}
	c.m[email] = userID
}

func (c *claimCache) drop(email string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, email)
}

// startSession creates a session for a sign-in and ends the session the
// client presented before it, if any: every sign-in gets a new id (SE-1).
func (s *Service) startSession(ctx context.Context, userID, previous string, c Client) (NewSession, error) {
	if previous != "" {
		if err := s.Logout(ctx, previous); err != nil {
			return NewSession{}, err
		}
	}
	secret, hash := newSecret()
	now := s.now()
	sess := Session{
		ID:         newID(),
		SecretHash: hash,
		UserID:     userID,
		CreatedAt:  now,
		LastSeenAt: now,
		ExpiresAt:  now.Add(s.cfg.AbsoluteTimeout),
		UserAgent:  truncate(c.UserAgent, 256),
		IP:         c.IP,
	}
	if err := s.store.InsertSession(ctx, sess); err != nil {
		return NewSession{}, fmt.Errorf("insert session: %w", err)
	}
	return NewSession{Token: sess.ID + "." + secret, Session: sess}, nil
}

// truncate cuts s to at most n bytes without splitting a character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}

// Sweep deletes what has expired. Run it periodically; correctness never
// depends on it, since every read checks expiry itself.
func (s *Service) Sweep(ctx context.Context) error {
	now := s.now()
	if err := s.store.DeleteExpired(ctx, now, now.Add(-s.cfg.IdleTimeout)); err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	return nil
}
