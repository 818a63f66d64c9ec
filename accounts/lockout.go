package accounts

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// The login lockout (AB-1): after LockoutAfter failed password checks for
// an address, each further check must wait 1 s, doubling per failure, capped
// at LockoutMax, counted from the last attempt. A check is admitted before
// the password is hashed by taking the next attempt number of the address
// (an exact unique-key insert in the store), so however many guesses arrive
// in parallel, on however many instances, at most LockoutAfter are checked
// before the lockout starts, and then one per back-off step: every attempt
// still being checked counts as a failure for the attempts behind it.

// beginGuess admits one password check for email, or returns a
// *RateLimitError (the attempt is then not counted: nothing was checked).
func (s *Service) beginGuess(ctx context.Context, email string) (LoginAttempt, error) {
	now := s.now()
	a, err := s.store.BeginLoginAttempt(ctx, email, now)
	if err != nil {
		return LoginAttempt{}, fmt.Errorf("begin login attempt: %w", err)
	}
	if a.N < s.cfg.LockoutAfter {
		return a, nil
	}
	last, err := s.store.LoginAttemptTime(ctx, a, a.N-1)
	if errors.Is(err, ErrNotFound) {
		last = now // freed meanwhile: wait the whole step
	} else if err != nil {
		s.dropGuess(ctx, a)
		return LoginAttempt{}, fmt.Errorf("load login attempt: %w", err)
	}
	wait := s.lockout(a.N, last)
	if wait <= 0 {
		return a, nil
	}
	s.dropGuess(ctx, a)
	s.log.Info("login locked out", "event", "login_locked", "failures", a.N)
	return LoginAttempt{}, &RateLimitError{RetryAfter: wait}
}

// guessFailed keeps a as a failure and returns ErrInvalidCredentials.
func (s *Service) guessFailed(ctx context.Context, a LoginAttempt) error {
	if err := s.store.FailLoginAttempt(ctx, a, s.now()); err != nil {
		return fmt.Errorf("record login failure: %w", err)
	}
	return ErrInvalidCredentials
}

// guessSucceeded forgets the address's failures after a right password. An
// attempt numbered 0 had no failure before it: freeing its number is
// enough, and cheaper than a new epoch.
func (s *Service) guessSucceeded(ctx context.Context, a LoginAttempt) {
	if a.N == 0 {
		s.dropGuess(ctx, a)
		return
	}
	if err := s.store.ClearLoginFailures(ctx, a.Email); err != nil {
		s.log.Warn("clear login failures", "error", err)
	}
}

// dropGuess frees an attempt's number, best effort: an attempt left behind
// counts as a failure until it expires, which errs on the safe side.
func (s *Service) dropGuess(ctx context.Context, a LoginAttempt) {
	if err := s.store.DropLoginAttempt(ctx, a); err != nil {
		s.log.Warn("drop login attempt", "error", err)
	}
}

// lockout reports how long an address with n failed (or in-flight)
// attempts, the last at last, must wait before its next check: nothing
// below LockoutAfter, then 1 s doubling per failure, capped at LockoutMax.
func (s *Service) lockout(n int, last time.Time) time.Duration {
	if n < s.cfg.LockoutAfter {
		return 0
	}
	k := min(n-s.cfg.LockoutAfter, 30)
	d := min(time.Second<<k, s.cfg.LockoutMax)
	return last.Add(d).Sub(s.now())
}
