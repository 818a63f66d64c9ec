package accounts

import (
	"errors"
	"fmt"
	"time"
)

// Errors returned by the domain. Callers match them with errors.Is / errors.As;
// the HTTP layer maps each to one status in a single table.
var (
	// ErrNotFound: the record does not exist (or is not the caller's).
	ErrNotFound = errors.New("not found")
	// ErrConflict: a record with that key already exists (stores return it on
	// duplicate keys).
	ErrConflict = errors.New("conflict")
	// ErrInvalidEmail: the address is not acceptable as a username.
	ErrInvalidEmail = errors.New("invalid email address")
	// ErrInvalidCredentials: unknown address or wrong password; deliberately one error.
	ErrInvalidCredentials = errors.New("invalid credentials")
	// ErrEmailNotVerified: the password was right, but the signup was never verified.
	ErrEmailNotVerified = errors.New("email not verified")
	// ErrTokenInvalid: a verification or reset token is unknown, used, expired,
	// superseded or of another purpose; deliberately one error.
	ErrTokenInvalid = errors.New("invalid or expired token")
	// ErrUnauthenticated: no valid session.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrBusy: too many password hashes are in flight; the caller should retry later.
	ErrBusy = errors.New("too many concurrent requests")
	// ErrUnavailable: the database (or another dependency) cannot be reached.
	ErrUnavailable = errors.New("service unavailable")
	// ErrLastLoginMethod: removing this would leave the user no way to sign in.
	ErrLastLoginMethod = errors.New("last login method")
	// ErrIdentityLinked: the provider identity belongs to another user.
	ErrIdentityLinked = errors.New("identity linked to another user")
	// ErrProviderLinked: the user already has another account of that
	// provider linked; it must be disconnected first.
	ErrProviderLinked = errors.New("another account of this provider is linked")
	// ErrProviderEmailUnverified: the provider vouches for no verified
	// address, so the person can neither be matched nor given an account.
	ErrProviderEmailUnverified = errors.New("provider email not verified")
	// ErrReauthRequired: the action needs a recent sign-in.
	ErrReauthRequired = errors.New("recent sign-in required")
	// ErrConnectSession: connecting a provider was finished by another
	// session than the one that started it.
	ErrConnectSession = errors.New("connect finished in another session")
)

// PasswordError says why a new password was refused. It is matched with errors.As.
type PasswordError struct {
	Reason string // machine-readable: too_short, too_long, common, contains_email
	Min    int
	Max    int
}

func (e *PasswordError) Error() string {
	switch e.Reason {
	case "too_short":
		return fmt.Sprintf("Use at least %d characters.", e.Min)
	case "too_long":
		return fmt.Sprintf("Use at most %d characters.", e.Max)
	case "common":
		return "This password is too common. Choose one that is harder to guess."
	case "contains_email":
		return "Don't use your email address as your password."
	default:
		return "This password can't be used."
	}
}

// RateLimitError says a caller must wait before trying again. The answer is the
// same whether or not an account exists for the address.
type RateLimitError struct {
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("rate limited; retry after %s", e.RetryAfter.Round(time.Second))
}
