package web

import (
	"slices"
	"time"
)

// Base is the data every page shares; each page type embeds it.
type Base struct {
	// Title overrides the page's default <title>; " · Gatehouse" is appended.
	Title string
	// SignedIn shows the user's email and a sign-out button in the header.
	SignedIn  bool
	UserEmail string
	// DevMode links the development mailbox in the footer; set it only when
	// that page exists (dev mode without SMTP).
	DevMode bool
	// Notice is shown as a green info banner above the page (e.g. "Password updated.").
	Notice string
	// RequestID is shown on error pages so a user can quote it to support.
	RequestID string
}

// ProviderButton is one "Continue with …" social sign-in button.
type ProviderButton struct {
	ID    string // "google" or "github"; picks the icon
	Label string // "Google", "GitHub"
	URL   string // where the button links (GET), e.g. /auth/google?return_to=…
}

// FieldErrors holds one message per form field; empty means the field is fine.
type FieldErrors struct {
	Email    string
	Password string // the new or only password field
	Current  string // the current password on the account page
}

// Any reports whether any field has an error.
func (f FieldErrors) Any() bool {
	return f.Email != "" || f.Password != "" || f.Current != ""
}

// SignupPage is the sign-up form (GET/POST /signup).
type SignupPage struct {
	Base
	Email       string
	Error       string // summary shown above the form
	FieldErrors FieldErrors
	MinLength   int
	ReturnTo    string
	Providers   []ProviderButton
}

// CheckInboxPage is the neutral answer to a signup, resend or reset request:
// it reads the same whether or not the address has an account.
type CheckInboxPage struct {
	Base
	Email string
	// Kind is "signup", "resend" or "reset"; it picks the wording.
	Kind string
	// ValidFor says how long the mailed link works, e.g. "24 hours".
	ValidFor string
	// MailInterval ("1 minute") and MailPerHour are the mail quota of an
	// address, stated to everyone alike.
	MailInterval string
	MailPerHour  int
}

// VerifyPage asks for the signup password to confirm an address (GET /verify).
type VerifyPage struct {
	Base
	Token    string
	Valid    bool // false: the token is unknown, used, replaced or expired
	Error    string
	ReturnTo string
}

// LoginPage is the sign-in form (GET/POST /login).
type LoginPage struct {
	Base
	Email string
	Error string
	// NotVerified offers to resend the verification mail to Email. The page
	// supplies its own wording, so leave Error empty when setting it.
	NotVerified bool
	ReturnTo    string
	Providers   []ProviderButton
}

// ForgotPage asks for the address to send a reset link to.
type ForgotPage struct {
	Base
	Email string
	Error string
}

// ResetPage sets a new password from a reset link (GET /password/reset).
// The new password is posted as "password" along with "token".
type ResetPage struct {
	Base
	Token       string
	Valid       bool // false: the token is unknown, used, replaced or expired
	Error       string
	FieldErrors FieldErrors
	MinLength   int
}

// AccountPage is the signed-in user's account overview (GET /account).
type AccountPage struct {
	Base
	Email       string
	CreatedAt   time.Time
	HasPassword bool
	Sessions    []SessionRow
	// Identities lists the configured providers, linked or not; the section
	// is hidden when it is empty.
	Identities    []IdentityRow
	PasswordError string // summary for the password form
	FieldErrors   FieldErrors
	MinLength     int
}

// SessionRow is one active session on the account page.
type SessionRow struct {
	// ID names the session in /account/sessions/{ID}/revoke. It must be a
	// public handle (e.g. a hash of the session id), never the cookie value:
	// the page would otherwise hand out every session's credential.
	ID         string
	CreatedAt  time.Time
	LastSeenAt time.Time
	UserAgent  string
	IP         string
	Current    bool // the session that made this request
}

// IdentityRow is one social provider on the account page.
type IdentityRow struct {
	Provider      string // route name: "google", "github"
	Label         string // "Google", "GitHub"
	Email         string // the provider's address, when linked
	LinkedAt      time.Time
	Linked        bool
	CanDisconnect bool // false when it is the user's last way to sign in
}

// ErrorPage is the friendly page for 4xx and 5xx answers. The caller writes
// Status as the response status too.
type ErrorPage struct {
	Base
	Status  int
	Heading string
	Message string
}

// MessagePage is a generic information page (e.g. "Password updated").
type MessagePage struct {
	Base
	Heading  string
	Message  string
	LinkURL  string
	LinkText string
}

// MailboxPage lists the mails of the development mailbox (dev mode only).
type MailboxPage struct {
	Base
	Mails []MailboxRow
}

// MailboxRow is one captured mail.
type MailboxRow struct {
	ID      string
	To      string
	Subject string
	Text    string // plain-text body
	Link    string // the action link in the mail, if any
	At      time.Time
	// Held: the mail quota held this mail back; Subject names its kind.
	Held bool
}

// Newest returns the mails newest first, whatever order the caller used.
func (p MailboxPage) Newest() []MailboxRow {
	mails := slices.Clone(p.Mails)
	slices.SortStableFunc(mails, func(a, b MailboxRow) int { return b.At.Compare(a.At) })
	return mails
}

// TemplateName implements Page.
func (SignupPage) TemplateName() string { return "signup" }

// TemplateName implements Page.
func (CheckInboxPage) TemplateName() string { return "check_inbox" }

// TemplateName implements Page.
func (VerifyPage) TemplateName() string { return "verify" }

// TemplateName implements Page.
func (LoginPage) TemplateName() string { return "login" }

// TemplateName implements Page.
func (ForgotPage) TemplateName() string { return "forgot" }

// TemplateName implements Page.
func (ResetPage) TemplateName() string { return "reset" }

// TemplateName implements Page.
func (AccountPage) TemplateName() string { return "account" }

// TemplateName implements Page.
func (ErrorPage) TemplateName() string { return "error" }

// TemplateName implements Page.
func (MessagePage) TemplateName() string { return "message" }

// TemplateName implements Page.
func (MailboxPage) TemplateName() string { return "mailbox" }

// LinkPage asks the owner of an existing account to prove it before a
// provider identity with the same address is linked (GET /auth/link).
type LinkPage struct {
	Base
	Email string // the existing account's address
	// Provider is the provider's label ("Google"); ProviderAccount the
	// provider account that signed in ("ann@gmail.com").
	Provider        string
	ProviderAccount string
	// HasPassword offers the password form; the mail option is always there.
	HasPassword bool
	Error       string
	// MailSent shows that a confirmation link was mailed.
	MailSent bool
}

// LinkConfirmPage confirms a link from the mailed confirmation
// (GET /auth/link/confirm?token=…); it posts the token back.
type LinkConfirmPage struct {
	Base
	Token           string
	Valid           bool // false: invalid, used, expired, or another browser
	Email           string
	Provider        string
	ProviderAccount string
	Error           string
}

// TemplateName implements Page.
func (LinkPage) TemplateName() string { return "link" }

// TemplateName implements Page.
func (LinkConfirmPage) TemplateName() string { return "link_confirm" }
