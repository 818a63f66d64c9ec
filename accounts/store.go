package accounts

import (
	"context"
	"time"
)

// Store is the persistence the domain needs. Implementations translate their
// driver's errors at their edge: ErrNotFound for a missing record, ErrConflict
// for a duplicate key, ErrUnavailable when the database cannot be reached.
// Only single-record atomicity is assumed.
type Store interface {
	UserStore
	TokenStore
	SessionStore
	LimitStore
	IdentityStore
	// DeleteExpired removes tokens, sessions and counters that can no longer
	// matter: expired before now, or (sessions) idle since before idleCutoff.
	DeleteExpired(ctx context.Context, now, idleCutoff time.Time) error
}

// UserStore keeps users and the address → user claims.
type UserStore interface {
	// CreateUser inserts u; ErrConflict if a user with u.ID exists.
	CreateUser(ctx context.Context, u User) error
	// User returns the user with id, or ErrNotFound.
	User(ctx context.Context, id string) (User, error)
	// SetPassword replaces the user's password hash; ErrNotFound if no user.
	SetPassword(ctx context.Context, userID, hash string, at time.Time) error
	// ReplacePasswordHash swaps oldHash for newHash only if oldHash is still
	// stored (a rehash must never undo a concurrent password change);
	// ErrNotFound otherwise.
	ReplacePasswordHash(ctx context.Context, userID, oldHash, newHash string) error
	// ClaimEmail inserts c; ErrConflict if the address is claimed.
	ClaimEmail(ctx context.Context, c EmailClaim) error
	// EmailClaim returns the claim on a normalized address, or ErrNotFound.
	EmailClaim(ctx context.Context, email string) (EmailClaim, error)
	// ReleaseEmail deletes the claim on email if it is held by userID.
	ReleaseEmail(ctx context.Context, email, userID string) error
}

// TokenStore keeps mailed tokens by hash, and per (purpose, subject) a head
// that names the newest one.
type TokenStore interface {
	// InsertToken stores t; ErrConflict on a duplicate hash.
	InsertToken(ctx context.Context, t Token) error
	// Token returns the token with hash, or ErrNotFound.
	Token(ctx context.Context, hash string) (Token, error)
	// DeleteToken deletes the token and reports whether this call deleted it:
	// of many concurrent callers exactly one gets true.
	DeleteToken(ctx context.Context, hash string) (bool, error)
	// SetTokenHead makes hash the newest token of (purpose, subject) and
	// returns the hash it replaced ("" if none).
	SetTokenHead(ctx context.Context, p Purpose, subject, hash string, expiresAt time.Time) (previous string, err error)
	// TokenHead returns the newest token hash of (purpose, subject), or ErrNotFound.
	TokenHead(ctx context.Context, p Purpose, subject string) (string, error)
	// DeleteTokenHead removes the head and returns the hash it named ("" if none).
	DeleteTokenHead(ctx context.Context, p Purpose, subject string) (string, error)
}

// SessionStore keeps server-side sessions.
type SessionStore interface {
	// InsertSession stores s; ErrConflict on a duplicate id.
	InsertSession(ctx context.Context, s Session) error
	// Session returns the session with id, or ErrNotFound.
	Session(ctx context.Context, id string) (Session, error)
	// TouchSession records activity.
	TouchSession(ctx context.Context, id string, at time.Time) error
	// DeleteSession deletes a session and reports whether it existed.
	DeleteSession(ctx context.Context, id string) (bool, error)
	// UserSessions returns the user's sessions, newest first.
	UserSessions(ctx context.Context, userID string) ([]Session, error)
	// DeleteUserSessions deletes every session of the user except the one
	// with id except (may be empty) and returns how many it deleted.
	DeleteUserSessions(ctx context.Context, userID, except string) (int64, error)
}

// LimitStore keeps the abuse counters that must be shared by every instance.
type LimitStore interface {
	// MailLedgerNext returns a hint of the next free slot number of a mail
	// ledger (0 for a new one): every number below it was taken when the
	// hint was written, numbers above it may be too.
	MailLedgerNext(ctx context.Context, ledger string) (int, error)
	// ReserveMailSlot inserts slot.N of ledger; ErrConflict if the number is
	// taken. Of concurrent callers, on any instance, exactly one gets a
	// number.
	ReserveMailSlot(ctx context.Context, ledger string, slot MailSlot) error
	// MailSlot returns slot n of ledger, or ErrNotFound.
	MailSlot(ctx context.Context, ledger string, n int) (MailSlot, error)
	// FinishMailSlot records that slot n's mail was queued at queuedAt, or,
	// if void, that it was not queued at all.
	FinishMailSlot(ctx context.Context, ledger string, n int, queuedAt time.Time, void bool) error
	// BeginLoginAttempt admits one password check for an address: it takes
	// the lowest free number of the address's current epoch with a
	// unique-key insert, so concurrent attempts, on any instance, get
	// distinct numbers, and at is kept as the attempt's time.
	BeginLoginAttempt(ctx context.Context, email string, at time.Time) (LoginAttempt, error)
	// LoginAttemptTime returns when attempt n of a's epoch began, or
	// ErrNotFound.
	LoginAttemptTime(ctx context.Context, a LoginAttempt, n int) (time.Time, error)
	// FailLoginAttempt keeps attempt a as a failure, at time at.
	FailLoginAttempt(ctx context.Context, a LoginAttempt, at time.Time) error
	// DropLoginAttempt deletes attempt a, freeing its number: it was refused
	// before any check, or it succeeded.
	DropLoginAttempt(ctx context.Context, a LoginAttempt) error
	// ClearLoginFailures starts a new epoch for the address: the attempts
	// of the old one no longer count.
	ClearLoginFailures(ctx context.Context, email string) error
}

// Limiter is a fast, per-instance request rate limiter (token bucket or
// similar). Allow consumes one unit for key and, when refused, says how long
// to wait.
type Limiter interface {
	Allow(key string) (ok bool, retryAfter time.Duration)
}
