package accounts

import (
	"context"
	"time"
)

// MailKind names a message the domain sends; each kind has its own template.
type MailKind string

// The mails Gatehouse sends.
const (
	// MailVerify carries the link that confirms a new signup's address.
	MailVerify MailKind = "verify"
	// MailAccountExists tells the owner of an existing account that someone tried
	// to sign up with their address. It replaces the verification mail so that
	// the signup answer never reveals whether an address is taken.
	MailAccountExists MailKind = "account_exists"
	// MailReset carries a password-reset link.
	MailReset MailKind = "reset"
	// MailPasswordChanged tells a user that their password was changed or reset.
	MailPasswordChanged MailKind = "password_changed"
	// MailLinkConfirm asks the owner of an account to confirm linking a
	// provider identity that signed in with the account's address.
	MailLinkConfirm MailKind = "link_confirm"

	// MailSignupRequest, MailResetRequest and MailVerifyRequest are
	// requests, not mails: a signup, forgot-password or resend queues one
	// for any address alike, so the answer takes the same time whether the
	// address is known (EN-1..3). When its turn comes, the outbox's worker
	// asks ResolveMail what to send: a verify, account-exists or reset
	// mail, or nothing.
	MailSignupRequest MailKind = "signup_request"
	MailResetRequest  MailKind = "reset_request"
	MailVerifyRequest MailKind = "verify_request"
)

// IsRequest reports whether k is a request that ResolveMail turns into a
// mail (or into nothing) at delivery time.
func (k MailKind) IsRequest() bool {
	return k == MailSignupRequest || k == MailResetRequest || k == MailVerifyRequest
}

// Mail is one message to one recipient. Link may carry a secret token, so a
// Mailer must never store or log it in the clear.
type Mail struct {
	To   string
	Kind MailKind
	// Link is the call to action of the mail, always built from the public URL.
	Link string
	// ValidFor is how long Link works, for links that expire (0 otherwise).
	ValidFor time.Duration
	// Provider and ProviderAccount name the provider identity a
	// link_confirm mail is about ("Google", "ann@gmail.com").
	Provider        string
	ProviderAccount string
	// PasswordHash and ReturnTo carry a signup request (MailSignupRequest)
	// to its resolution; a Mailer must keep them as secret as Link.
	PasswordHash string
	ReturnTo     string
}

// Mailer accepts mail for delivery. Send returns once the mail is durably queued
// (not when it is delivered), so an SMTP outage delays mail and loses none.
type Mailer interface {
	Send(ctx context.Context, m Mail) error
}
