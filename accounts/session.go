package accounts

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Authenticate returns the user and session of a session token, or
// ErrUnauthenticated. It enforces the idle and absolute timeouts itself
// (SE-4) and records activity at most every touchInterval, so that a busy
// session costs reads, not writes.
func (s *Service) Authenticate(ctx context.Context, token string) (Auth, error) {
	id, secret, ok := splitSessionToken(token)
	if !ok {
		return Auth{}, ErrUnauthenticated
	}
	sum := sha256.Sum256([]byte(secret))
	now := s.now()
	// A cache hit is trusted only while the recorded activity is fresh
	// enough; past that the store path runs, which records the activity, so
	// a busy session never looks idle to the store (or to other instances).
	if e, ok := s.cache.get(id, now); ok && now.Sub(e.auth.Session.LastSeenAt) < s.touchInterval() {
		if subtle.ConstantTimeCompare(sum[:], e.secretSum[:]) != 1 || !s.alive(e.auth.Session, now) {
			return Auth{}, ErrUnauthenticated
		}
		return e.auth, nil
	}
	hash := hex.EncodeToString(sum[:])
	sess, err := s.store.Session(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Auth{}, ErrUnauthenticated
	}
	if err != nil {
		return Auth{}, fmt.Errorf("find session: %w", err)
	}
	if !equalHash(sess.SecretHash, hash) || !s.alive(sess, now) {
		return Auth{}, ErrUnauthenticated
	}
	if now.Sub(sess.LastSeenAt) >= s.touchInterval() {
		if err := s.store.TouchSession(ctx, id, now); err != nil {
			s.log.Warn("touch session", "error", err)
		} else {
			sess.LastSeenAt = now
		}
	}
	u, err := s.store.User(ctx, sess.UserID)
	if errors.Is(err, ErrNotFound) {
		return Auth{}, ErrUnauthenticated
	}
	if err != nil {
		return Auth{}, fmt.Errorf("find user: %w", err)
	}
	a := Auth{User: u, Session: sess, Providers: []string{}}
	if len(s.cfg.Providers) > 0 {
		ids, err := s.Identities(ctx, u.ID)
		if err != nil {
			return Auth{}, err
		}
		for _, id := range ids {
			a.Providers = append(a.Providers, id.Provider)
		}
	}
	s.cache.put(id, a, sum, now)
	return a, nil
}

// alive reports whether a session is within both timeouts.
func (s *Service) alive(sess Session, now time.Time) bool {
	return now.Before(sess.ExpiresAt) && now.Before(sess.LastSeenAt.Add(s.cfg.IdleTimeout))
}

// touchInterval is how stale LastSeenAt may get: a tenth of the idle timeout,
// at most a minute, so the idle timeout is enforced to within 10%.
func (s *Service) touchInterval() time.Duration {
	return min(time.Minute, s.cfg.IdleTimeout/10)
}

// Logout ends the session of token server-side (SE-3). An unknown or
// malformed token is not an error: the outcome the caller wants holds.
func (s *Service) Logout(ctx context.Context, token string) error {
	id, secret, ok := splitSessionToken(token)
	if !ok {
		return nil
	}
	sess, err := s.store.Session(ctx, id)
	if errors.Is(err, ErrNotFound) {
		s.cache.drop(id)
		return nil
	}
	if err != nil {
		return fmt.Errorf("find session: %w", err)
	}
	if !equalHash(sess.SecretHash, hashSecret(secret)) {
		return nil
	}
	if _, err := s.store.DeleteSession(ctx, id); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	s.cache.drop(id)
	s.log.Info("logout", "event", "logout", "user_id", sess.UserID)
	return nil
}

// Sessions lists the user's live sessions, newest first.
func (s *Service) Sessions(ctx context.Context, a Auth) ([]Session, error) {
	all, err := s.store.UserSessions(ctx, a.User.ID)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	now := s.now()
	live := slices.DeleteFunc(all, func(x Session) bool { return !s.alive(x, now) })
	slices.SortFunc(live, func(x, y Session) int { return y.CreatedAt.Compare(x.CreatedAt) })
	return live, nil
}

// RevokeSession ends one of the user's sessions; ErrNotFound if the id is not
// one of theirs.
func (s *Service) RevokeSession(ctx context.Context, a Auth, id string) error {
	sess, err := s.store.Session(ctx, id)
	if errors.Is(err, ErrNotFound) || (err == nil && sess.UserID != a.User.ID) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("find session: %w", err)
	}
	if _, err := s.store.DeleteSession(ctx, id); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	s.cache.drop(id)
	s.log.Info("session revoked", "event", "session_revoked", "user_id", a.User.ID)
	return nil
}

// RevokeOtherSessions ends every session of the user but the current one.
func (s *Service) RevokeOtherSessions(ctx context.Context, a Auth) error {
	if err := s.endSessions(ctx, a.User.ID, a.Session.ID); err != nil {
		return err
	}
	s.log.Info("other sessions revoked", "event", "sessions_revoked", "user_id", a.User.ID)
	return nil
}

// endSessions deletes the user's sessions except one (may be empty) and
// forgets them in this instance's cache at once.
func (s *Service) endSessions(ctx context.Context, userID, except string) error {
	if _, err := s.store.DeleteUserSessions(ctx, userID, except); err != nil {
		return fmt.Errorf("delete sessions: %w", err)
	}
	s.cache.dropUser(userID, except)
	return nil
}

// maxCachedSessions bounds the cache's memory; past it the cache starts over.
const maxCachedSessions = 200_000

// sessionCache remembers checked sessions for a short TTL, so a hot session
// check costs no database round trip. Entries are keyed by session id and
// still verified against the secret's hash on every hit.
type sessionCache struct {
	ttl time.Duration
	mu  sync.RWMutex
	m   map[string]cacheEntry
}

type cacheEntry struct {
	auth Auth
	// secretSum is the session secret's SHA-256, as bytes, for cheap hits.
	secretSum [sha256.Size]byte
	until     time.Time
}

func newSessionCache(ttl time.Duration) *sessionCache {
	return &sessionCache{ttl: ttl, m: make(map[string]cacheEntry)}
}

func (c *sessionCache) get(id string, now time.Time) (cacheEntry, bool) {
	if c.ttl <= 0 {
		return cacheEntry{}, false
	}
	c.mu.RLock()
	e, ok := c.m[id]
	c.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		return cacheEntry{}, false
	}
	return e, true
}

func (c *sessionCache) put(id string, a Auth, sum [sha256.Size]byte, now time.Time) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCachedSessions {
		c.m = make(map[string]cacheEntry)
	}
	c.m[id] = cacheEntry{auth: a, secretSum: sum, until: now.Add(c.ttl)}
}

func (c *sessionCache) drop(id string) {
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
}

func (c *sessionCache) dropUser(userID, except string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, e := range c.m {
		if e.auth.User.ID == userID && id != except {
			delete(c.m, id)
		}
	}
}
