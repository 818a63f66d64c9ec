package server

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/providers"
	"github.com/gatehouse/gatehouse/web"
)

// apiError is the one shape of every error answer of /api/v1 and /auth.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	// RetryAfter, when set, becomes the Retry-After header.
	RetryAfter time.Duration `json:"-"`
	// Heading and Page, when set, are the error page's heading and text
	// (longer than Message); "{provider}" in Page names the provider.
	Heading string `json:"-"`
	Page    string `json:"-"`
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

// requestError is a bad request detected before any domain call.
func requestError(status int, code, message string) *apiError {
	return &apiError{Status: status, Code: code, Message: message}
}

// errorFor is the single table that maps an error to what the client sees.
// Anything it does not know is a 500, logged once here with the detail and
// answered with a generic message.
func errorFor(err error) *apiError {
	var (
		ae *apiError
		pe *accounts.PasswordError
		re *accounts.RateLimitError
	)
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &pe):
		return &apiError{Status: http.StatusBadRequest, Code: "weak_password", Message: pe.Error()}
	case errors.As(err, &re):
		return &apiError{Status: http.StatusTooManyRequests, Code: "rate_limited", Message: "Too many attempts. Try again later.", RetryAfter: re.RetryAfter}
	case errors.Is(err, accounts.ErrInvalidEmail):
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_email", Message: "Enter a valid email address."}
	case errors.Is(err, accounts.ErrInvalidCredentials):
		return &apiError{Status: http.StatusUnauthorized, Code: "invalid_credentials", Message: "Email or password is incorrect."}
	case errors.Is(err, accounts.ErrEmailNotVerified):
		return &apiError{Status: http.StatusForbidden, Code: "email_not_verified", Message: "Verify your email address first. We can send you a new link."}
	case errors.Is(err, accounts.ErrTokenInvalid):
		return &apiError{Status: http.StatusBadRequest, Code: "invalid_token", Message: "This link is invalid or has expired."}
	case errors.Is(err, accounts.ErrUnauthenticated):
		return &apiError{Status: http.StatusUnauthorized, Code: "unauthenticated", Message: "Sign in first."}
	case errors.Is(err, accounts.ErrNotFound):
		return &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "Not found."}
	case errors.Is(err, accounts.ErrLastLoginMethod):
		return &apiError{Status: http.StatusConflict, Code: "last_login_method", Message: "This is your only way to sign in. Add another one first."}
	case errors.Is(err, accounts.ErrIdentityLinked):
		return &apiError{Status: http.StatusConflict, Code: "identity_linked", Message: "This account is already linked to another user.",
			Heading: "Account already linked",
			Page:    "This {provider} account is already linked to another Gatehouse account. Sign in to that account, or disconnect it there first."}
	case errors.Is(err, accounts.ErrProviderLinked):
		return &apiError{Status: http.StatusConflict, Code: "provider_linked", Message: "Another account of this provider is linked. Disconnect it first.",
			Heading: "Another account is linked",
			Page:    "Your Gatehouse account is already linked to a different {provider} account. Disconnect it on your account page first."}
	case errors.Is(err, accounts.ErrProviderEmailUnverified):
		return &apiError{Status: http.StatusForbidden, Code: "provider_email_unverified", Message: "The provider did not verify an email address for this account.",
			Heading: "No verified email address",
			Page:    "Your {provider} account has no verified email address, so we can't sign you in with it. Verify your address at {provider} (and make it your primary one), then try again, or sign up with your email address."}
	// Provider flows (OA-6): none of these is a server failure, and only a
	// provider that is down gives a 5xx.
	case errors.Is(err, providers.ErrDenied):
		return &apiError{Status: http.StatusBadRequest, Code: "sign_in_cancelled", Message: "Signing in with the provider was cancelled.",
			Heading: "Sign-in cancelled",
			Page:    "Signing in with {provider} was cancelled or refused, so nothing changed. You can try again, or sign in another way."}
	case errors.Is(err, providers.ErrState), errors.Is(err, accounts.ErrConnectSession):
		return &apiError{Status: http.StatusBadRequest, Code: "sign_in_expired", Message: "This sign-in attempt is no longer valid. Start again.",
			Heading: "This sign-in has expired",
			Page:    "This sign-in attempt is no longer valid: it was already used, took too long, or was started in another browser. Please start again."}
	case errors.Is(err, providers.ErrProvider):
		return &apiError{Status: http.StatusBadRequest, Code: "sign_in_refused", Message: "The provider's answer could not be verified. Start again.",
			Heading: "Sign-in could not be verified",
			Page:    "We couldn't verify this sign-in with {provider}, so nothing changed. Please start again."}
	case errors.Is(err, providers.ErrUnreachable):
		return &apiError{Status: http.StatusBadGateway, Code: "provider_unavailable", Message: "The provider did not answer. Try again in a moment.", RetryAfter: 30 * time.Second,
			Heading: "Sign-in failed",
			Page:    "{provider} did not answer. Please try again in a moment."}
	case errors.Is(err, accounts.ErrReauthRequired):
		return &apiError{Status: http.StatusForbidden, Code: "reauthentication_required", Message: "Sign in again to do this."}
	case errors.Is(err, accounts.ErrBusy):
		return &apiError{Status: http.StatusServiceUnavailable, Code: "overloaded", Message: "The service is busy. Try again in a moment.", RetryAfter: time.Second}
	case errors.Is(err, accounts.ErrUnavailable):
		return &apiError{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "The service is temporarily unavailable. Try again in a moment.", RetryAfter: 5 * time.Second}
	default:
		return &apiError{Status: http.StatusInternalServerError, Code: "internal_error", Message: "Something went wrong on our side."}
	}
}

// responder writes answers and logs server-side failures once.
type responder struct {
	log   *slog.Logger
	pages *web.Templates
	// mailbox: the development mailbox page exists, so pages link to it.
	mailbox bool
}

// logIf logs 5xx answers with the underlying error; the client sees only the
// generic message. A request whose client hung up fails with its context
// canceled: that is no outage, so it is logged at debug level.
func (rs *responder) logIf(r *http.Request, ae *apiError, err error) {
	if ae.Status < 500 {
		return
	}
	level := slog.LevelError
	switch {
	case errors.Is(context.Cause(r.Context()), context.Canceled):
		level = slog.LevelDebug
	case ae.Status == http.StatusServiceUnavailable, ae.Status == http.StatusBadGateway:
		level = slog.LevelWarn // a dependency is down, not our bug
	}
	rs.log.Log(r.Context(), level, "request failed", "request_id", requestID(r), "status", ae.Status, "code", ae.Code, "error", err)
}

func setRetryAfter(w http.ResponseWriter, d time.Duration) {
	if d > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(d.Seconds()))))
	}
}

// jsonError answers an /api or /auth request with the error shape of API.md.
func (rs *responder) jsonError(w http.ResponseWriter, r *http.Request, err error) {
	ae := errorFor(err)
	rs.logIf(r, ae, err)
	setRetryAfter(w, ae.RetryAfter)
	rs.json(w, ae.Status, map[string]*apiError{"error": ae})
}

// json writes v as the body.
func (rs *responder) json(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

// page renders an HTML page with a status.
func (rs *responder) page(w http.ResponseWriter, r *http.Request, status int, p web.Page) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := rs.pages.Render(w, p); err != nil {
		rs.log.Error("render page", "request_id", requestID(r), "error", err)
	}
}

// htmlError answers a browser request with the error page.
func (rs *responder) htmlError(w http.ResponseWriter, r *http.Request, err error) {
	ae := errorFor(err)
	rs.logIf(r, ae, err)
	setRetryAfter(w, ae.RetryAfter)
	heading := http.StatusText(ae.Status)
	if ae.Status == http.StatusTooManyRequests {
		heading = "Slow down"
	}
	rs.page(w, r, ae.Status, &web.ErrorPage{Base: rs.base(r, heading), Status: ae.Status, Heading: heading, Message: ae.Message})
}

// The same error reads differently on the form that caused it. These are
// the only rewordings; they live here, beside the table.
const (
	msgVerifyWrongPassword  = "That is not the password you chose when you signed up."
	msgWrongCurrentPassword = "Your current password is not correct."
	msgLinkWrongPassword    = "That password is not correct."
)

// providerPage answers a provider flow's error with its page from the
// table, naming the provider; errors without one get the generic page.
func (rs *responder) providerPage(w http.ResponseWriter, r *http.Request, label string, err error) {
	ae := errorFor(err)
	if ae.Page == "" {
		rs.htmlError(w, r, err)
		return
	}
	rs.logIf(r, ae, err)
	if errors.Is(err, providers.ErrProvider) {
		rs.log.Info("provider answer refused", "event", "oauth_refused", "error", err, "request_id", requestID(r))
	}
	setRetryAfter(w, ae.RetryAfter)
	rs.page(w, r, ae.Status, web.ErrorPage{
		Base: rs.base(r, ae.Heading), Status: ae.Status, Heading: ae.Heading,
		Message: strings.ReplaceAll(ae.Page, "{provider}", label),
	})
}

// error picks JSON or HTML by the request: API paths and clients that
// prefer JSON get JSON.
func (rs *responder) error(w http.ResponseWriter, r *http.Request, err error) {
	if wantsJSON(r) {
		rs.jsonError(w, r, err)
		return
	}
	rs.htmlError(w, r, err)
}

func wantsJSON(r *http.Request) bool {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		return true
	}
	accept := r.Header.Get("Accept")
	return strings.Contains(accept, "application/json") && !strings.Contains(accept, "text/html")
}

// base fills the part every page shares.
func (rs *responder) base(r *http.Request, title string) web.Base {
	b := web.Base{Title: title, DevMode: rs.mailbox, RequestID: requestID(r)}
	if a, ok := authFrom(r.Context()); ok {
		b.SignedIn = true
		b.UserEmail = a.User.Email
	}
	return b
}
