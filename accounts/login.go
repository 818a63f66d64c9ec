package accounts

import (
	"context"
	"errors"
	"fmt"
)

// Login checks an address and password and starts a session. Unknown
// addresses and wrong passwords give the same error after the same work: one
// password hash (EN-1). ErrEmailNotVerified is returned only when the
// password matches the pending signup, so it reveals nothing to someone who
// does not know it.
//
// previous is the session token the client already holds, if any: it is
// ended, and a new id is issued (SE-1).
func (s *Service) Login(ctx context.Context, email, password, previous string, c Client) (User, NewSession, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		return User{}, NewSession{}, err
	}
	if len(password) > MaxPasswordBytes {
		// Refused before any work (PW-1); no account has such a password.
		return User{}, NewSession{}, ErrInvalidCredentials
	}
	if err := s.limit(ActLogin, c, email); err != nil {
		return User{}, NewSession{}, err
	}
	ctx, release, err := s.hasher.Reserve(ctx)
	if err != nil {
		return User{}, NewSession{}, err
	}
	defer release()
	guess, err := s.beginGuess(ctx, email)
	if err != nil {
		return User{}, NewSession{}, err
	}

	u, err := s.userByEmail(ctx, email)
	switch {
	case err == nil:
		ok, rehash, err := s.hasher.Verify(ctx, password, u.PasswordHash)
		if err != nil {
			s.dropGuess(ctx, guess)
			return User{}, NewSession{}, fmt.Errorf("verify password: %w", err)
		}
		if !ok {
			s.log.Info("login failed", "event", "login_failed")
			return User{}, NewSession{}, s.guessFailed(ctx, guess)
		}
		if rehash {
			s.rehash(ctx, u, password)
		}
	case errors.Is(err, ErrNotFound):
		return User{}, NewSession{}, s.loginUnknown(ctx, guess, password)
	default:
		s.dropGuess(ctx, guess)
		return User{}, NewSession{}, fmt.Errorf("find user: %w", err)
	}

	s.guessSucceeded(ctx, guess)
	ns, err := s.startSession(ctx, u.ID, previous, c)
	if err != nil {
		return User{}, NewSession{}, err
	}
	s.log.Info("login", "event", "login_succeeded", "user_id", u.ID)
	return u, ns, nil
}

// loginUnknown handles an address with no user: it may be a pending signup,
// whose owner is told to verify only if the password is theirs.
func (s *Service) loginUnknown(ctx context.Context, guess LoginAttempt, password string) error {
	pending, err := s.pendingSignup(ctx, guess.Email)
	if err != nil && !errors.Is(err, ErrNotFound) {
		s.dropGuess(ctx, guess)
		return fmt.Errorf("find pending signup: %w", err)
	}
	ok, _, err := s.hasher.Verify(ctx, password, pending.PasswordHash)
	if err != nil {
		s.dropGuess(ctx, guess)
		return fmt.Errorf("verify password: %w", err)
	}
	if ok {
		s.guessSucceeded(ctx, guess)
		s.log.Info("login before verification", "event", "login_unverified")
		return ErrEmailNotVerified
	}
	s.log.Info("login failed", "event", "login_failed")
	return s.guessFailed(ctx, guess)
}

// rehash upgrades a hash made with an older, cheaper cost. It is best effort:
// a failure leaves the old hash, which still works.
func (s *Service) rehash(ctx context.Context, u User, password string) {
	h, err := s.hasher.Hash(ctx, password)
	if err == nil {
		err = s.store.ReplacePasswordHash(ctx, u.ID, u.PasswordHash, h)
	}
	if err != nil {
		s.log.Warn("rehash password", "user_id", u.ID, "error", err)
		return
	}
	s.log.Info("password rehashed", "event", "password_rehashed", "user_id", u.ID)
}
