package accounts

import (
	"context"
	"errors"
	"fmt"
)

// ConnectStart names who started connecting a provider: the user and the
// session that asked for it on their account page.
type ConnectStart struct {
	UserID    string
	SessionID string
}

// StartConnect reports whether a signed-in user may start connecting a
// provider: it needs a sign-in within RecentAuth (LK-4), or
// ErrReauthRequired.
func (s *Service) StartConnect(a Auth) error {
	if !s.RecentlySignedIn(a) {
		return ErrReauthRequired
	}
	return nil
}

// ConnectIdentity links the provider identity p to the signed-in user who
// started connecting it. The flow must come back to the session that
// started it (ErrConnectSession: a callback planted in another browser, or
// finished after signing in as someone else), and the sign-in must still be
// recent (ErrReauthRequired), as for SetFirstPassword (LK-4).
func (s *Service) ConnectIdentity(ctx context.Context, a Auth, started ConnectStart, p Profile) error {
	if a.Session.ID == "" || a.Session.ID != started.SessionID || a.User.ID != started.UserID {
		return ErrConnectSession
	}
	if err := s.StartConnect(a); err != nil {
		return err
	}
	return s.link(ctx, a.User.ID, p)
}

// Identities lists the user's linked identities, one per provider at most.
func (s *Service) Identities(ctx context.Context, userID string) ([]Identity, error) {
	var out []Identity
	for _, provider := range s.cfg.Providers {
		sub, err := s.store.ProviderClaim(ctx, userID, provider)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("find provider claim: %w", err)
		}
		id, err := s.store.Identity(ctx, provider, sub)
		if errors.Is(err, ErrNotFound) || (err == nil && id.UserID != userID) {
			continue // a claim left by an interrupted link or unlink
		}
		if err != nil {
			return nil, fmt.Errorf("find identity: %w", err)
		}
		out = append(out, id)
	}
	return out, nil
}

// DisconnectIdentity unlinks the user's identity at provider. The last
// way to sign in cannot be removed (LK-4): a user without a password keeps
// at least one identity.
func (s *Service) DisconnectIdentity(ctx context.Context, a Auth, provider string) error {
	ids, err := s.Identities(ctx, a.User.ID)
	if err != nil {
		return err
	}
	var target *Identity
	for i := range ids {
		if ids[i].Provider == provider {
			target = &ids[i]
		}
	}
	if target == nil {
		return ErrNotFound
	}
	u, err := s.store.User(ctx, a.User.ID)
	if err != nil {
		return fmt.Errorf("find user: %w", err)
	}
	if !u.HasPassword() && len(ids) <= 1 {
		return ErrLastLoginMethod
	}
	if _, err := s.store.DeleteIdentity(ctx, target.Provider, target.Subject); err != nil {
		return fmt.Errorf("delete identity: %w", err)
	}
	if err := s.store.ReleaseProvider(ctx, u.ID, provider); err != nil {
		return fmt.Errorf("release provider claim: %w", err)
	}
	s.cache.dropUser(u.ID, "")
	s.log.Info("identity unlinked", "event", "identity_unlinked", "provider", provider, "user_id", u.ID)
	return nil
}

// RecentlySignedIn reports whether the session's sign-in is recent enough
// for sensitive changes: connecting a provider, setting a first password.
func (s *Service) RecentlySignedIn(a Auth) bool {
	return s.now().Sub(a.Session.CreatedAt) <= s.cfg.RecentAuth
}

// SetFirstPassword gives a user who signs in only through providers a
// password. It needs a recent sign-in instead of a current password.
func (s *Service) SetFirstPassword(ctx context.Context, a Auth, password string, c Client) error {
	if err := s.limit(ActChange, c, a.User.Email); err != nil {
		return err
	}
	u, err := s.store.User(ctx, a.User.ID)
	if err != nil {
		return fmt.Errorf("find user: %w", err)
	}
	if u.HasPassword() {
		return ErrInvalidCredentials // changing a password needs the current one
	}
	if !s.RecentlySignedIn(a) {
		return ErrReauthRequired
	}
	if err := s.policy.Check(password, u.Email); err != nil {
		return err
	}
	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	if err := s.setPassword(ctx, u, hash, a.Session.ID); err != nil {
		return err
	}
	s.log.Info("password set", "event", "password_set", "user_id", u.ID)
	return nil
}
