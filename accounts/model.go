package accounts

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"time"
)

// User is a person with a verified address. Pending signups are not users:
// they are Tokens of PurposeVerify until their owner proves the mailbox.
type User struct {
	ID    string
	Email string // normalized; unique
	// PasswordHash is an argon2id PHC string, or empty for a user who signs in
	// only through a provider.
	PasswordHash      string
	CreatedAt         time.Time
	UpdatedAt         time.Time
	PasswordChangedAt time.Time
}

// HasPassword reports whether the user can sign in with a password.
func (u User) HasPassword() bool { return u.PasswordHash != "" }

// EmailClaim maps a normalized address to the user who owns it. It is a
// record of its own, keyed by the address, so that uniqueness and the login
// lookup rest on the primary key on every MongoDB-compatible server.
type EmailClaim struct {
	Email     string
	UserID    string
	ClaimedAt time.Time
}

// Purpose binds a token to one use; a token of one purpose never works for another.
type Purpose string

// Token purposes.
const (
	PurposeVerify Purpose = "verify"
	PurposeReset  Purpose = "reset"
	// PurposeLink is a pending link of a provider identity to an existing
	// account, held by the browser that signed in at the provider until the
	// account's owner proves it (LK-2).
	PurposeLink Purpose = "link"
	// PurposeLinkConfirm is the mailed proof for a pending link; it works
	// only together with the pending link's token from the same browser.
	PurposeLinkConfirm Purpose = "link_confirm"
)

// Token is the stored half of a mailed link: only the SHA-256 of the secret.
type Token struct {
	Hash    string // hex SHA-256 of the raw token; the record's key
	Purpose Purpose
	// Subject is what "a newer token voids the older" is counted per: the
	// address for verification, the user id for reset.
	Subject string
	Email   string
	// UserID is the user a reset is for, or the id the user will get when a
	// signup is verified (fixed at signup so that a verification interrupted
	// half-way can be completed by retrying with the same link).
	UserID string
	// PasswordHash is the password chosen at signup (verification only).
	PasswordHash string
	// Profile is the provider identity a link token would link.
	Profile *Profile
	// LinkHash binds a link confirmation to its pending link token.
	LinkHash string
	// ReturnTo is where the person goes once a link is done.
	ReturnTo  string
	CreatedAt time.Time
	// ExpiresAt ends the link; KeepUntil (never before it) is when the
	// record may be deleted: a signup outlives its link, so that its owner
	// can still ask for a new one.
	ExpiresAt time.Time
	KeepUntil time.Time
}

// Session is a signed-in browser or client. The cookie holds "<ID>.<secret>";
// the store keeps only SecretHash, so a database dump yields no usable cookie.
type Session struct {
	ID         string // public: listed to the user and used to revoke
	SecretHash string
	UserID     string
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time // absolute timeout
	UserAgent  string
	IP         string
}

// Auth is the result of checking a session: the user and the session.
type Auth struct {
	User    User
	Session Session
	// Providers lists the providers linked to the user.
	Providers []string
}

// NewSession is a session just created, with the raw token for the cookie.
type NewSession struct {
	Token   string
	Session Session
}

// Client describes who is calling, for rate limits and the session list.
type Client struct {
	IP        string
	UserAgent string
}

// MailSlot is one numbered place in an address's mail quota ledger (see
// quota.go): a mail that was, or is being, queued.
type MailSlot struct {
	N int
	// Ref names what took the slot (the queued request that a retried
	// resolution belongs to), so that a retry finds its own slot.
	Ref        string
	ReservedAt time.Time
	// QueuedAt is when the mail was queued; zero while it is prepared.
	QueuedAt time.Time
	// Void: the mail was refused by the quota or could not be queued; the
	// slot counts for nothing.
	Void      bool
	ExpiresAt time.Time
}

// LoginAttempt is one admitted password check of an address. Attempts are
// numbered per address and epoch; a success starts a new epoch (or frees its
// number when nothing failed before it), a failure keeps its number, so N
// counts the attempts before this one that failed or are still being checked.
type LoginAttempt struct {
	Email string
	Epoch string
	N     int
}

// newSecret returns a random 256-bit token, base64url, and its hash.
func newSecret() (raw, hash string) {
	raw = base64.RawURLEncoding.EncodeToString(randomBytes(32))
	return raw, hashSecret(raw)
}

// newID returns a random 128-bit identifier, base64url (22 characters).
func newID() string {
	return base64.RawURLEncoding.EncodeToString(randomBytes(16))
}

func hashSecret(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}

// validTokenSyntax cheaply refuses anything that cannot be one of our tokens
// before it reaches the database.
func validTokenSyntax(raw string) bool {
	return len(raw) == 43 && isBase64URL(raw)
}

// isBase64URL reports whether s uses only the base64url alphabet.
func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// splitSessionToken parses "<id>.<secret>".
func splitSessionToken(token string) (id, secret string, ok bool) {
	id, secret, ok = strings.Cut(token, ".")
	if !ok || len(id) != 22 || !isBase64URL(id) || !validTokenSyntax(secret) {
		return "", "", false
	}
	return id, secret, true
}

func equalHash(a, b string) bool {
	return len(a) == len(b) && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
