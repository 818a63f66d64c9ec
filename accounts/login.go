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
	ctx, u, release, err := s.passwordSignIn(ctx, email, password, c, func(ctx context.Context) (User, error) {
		return s.userByEmail(ctx, email)
	})
	if err != nil {
		return User{}, NewSession{}, err
	}
	defer release()
	ns, err := s.startSession(ctx, u.ID, previous, c)
	if err != nil {
		return User{}, NewSession{}, err
	}
	s.log.Info("login", "event", "login_succeeded", "user_id", u.ID)
	return u, ns, nil
}

// passwordSignIn is what every sign-in with a password does, for the
// account of email that load finds: the per-IP and per-address limits, a
// hashing slot, the lockout (the attempt is admitted before the hash and
// counted after it), the password check, and a rehash when the cost rose.
// An unknown account (load returns ErrNotFound) costs the same hash; a
// pending signup whose password it is gets ErrEmailNotVerified. On success
// the returned context holds the hashing slot until release, so that the
// caller writes its session inside it.
func (s *Service) passwordSignIn(ctx context.Context, email, password string, c Client, load func(context.Context) (User, error)) (context.Context, User, func(), error) {
	if len(password) > MaxPasswordBytes {
		// Refused before any work (PW-1); no account has such a password.
		return ctx, User{}, nil, ErrInvalidCredentials
	}
	if err := s.limit(ActLogin, c, email); err != nil {
		return ctx, User{}, nil, err
	}
	ctx, release, err := s.hasher.Reserve(ctx)
	if err != nil {
		return ctx, User{}, nil, err
	}
	u, err := s.checkPassword(ctx, email, password, load)
	if err != nil {
		release()
		return ctx, User{}, nil, err
	}
	return ctx, u, release, nil
}

// checkPassword runs the lockout and the password check of passwordSignIn.
func (s *Service) checkPassword(ctx context.Context, email, password string, load func(context.Context) (User, error)) (User, error) {
	guess, err := s.beginGuess(ctx, email)
	if err != nil {
		return User{}, err
	}
	u, err := load(ctx)
	switch {
	case errors.Is(err, ErrNotFound):
		return User{}, s.loginUnknown(ctx, guess, password)
	case err != nil:
		s.dropGuess(ctx, guess)
		return User{}, fmt.Errorf("find user: %w", err)
	}
	ok, rehash, err := s.hasher.Verify(ctx, password, u.PasswordHash)
	if err != nil {
		s.dropGuess(ctx, guess)
		return User{}, fmt.Errorf("verify password: %w", err)
	}
	if !ok {
		s.log.Info("login failed", "event", "login_failed")
		return User{}, s.guessFailed(ctx, guess)
	}
	if rehash {
		s.rehash(ctx, u, password)
	}
	s.guessSucceeded(ctx, guess)
	return u, nil
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
