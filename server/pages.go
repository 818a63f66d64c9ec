package server

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/gorilla/mux"

	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/internal/humantime"
	"github.com/gatehouse/gatehouse/web"
)

// notices are the fixed banners a redirect can ask for with ?notice=; the
// text never comes from the request.
var notices = map[string]string{
	"password_reset":   "Your password was changed. Sign in with the new one.",
	"password_changed": "Your password was changed. Your other sessions were signed out.",
	"session_revoked":  "That session was signed out.",
	"sessions_revoked": "All your other sessions were signed out.",
	"signed_out":       "You are signed out.",
	"connected":        "The account was connected. You can now sign in with it.",
	"disconnected":     "The account was disconnected.",
	"reauth":           "For your security, sign in again to continue.",
	"password_set":     "Your password was set. You can now sign in with your email address too.",
}

func (s *Server) client(r *http.Request) accounts.Client {
	return accounts.Client{IP: clientIP(r), UserAgent: r.UserAgent()}
}

// parseForm reads an urlencoded form body, mapping an oversize body to 413.
func parseForm(r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return requestError(http.StatusRequestEntityTooLarge, "payload_too_large", "The request body is too large.")
		}
		return requestError(http.StatusBadRequest, "invalid_request", "The form could not be read.")
	}
	return nil
}

// pageBase is the shared page data with the notice, if any, from the query.
func (s *Server) pageBase(r *http.Request, title string) web.Base {
	b := s.respond.base(r, title)
	b.Notice = notices[r.URL.Query().Get("notice")]
	return b
}

func (s *Server) redirectSignedIn(w http.ResponseWriter, r *http.Request, target string) {
	http.Redirect(w, r, returnTo(target, s.cfg.RedirectHosts), http.StatusSeeOther)
}

func (s *Server) handleHome() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := authFrom(r.Context()); ok {
			http.Redirect(w, r, "/account", http.StatusSeeOther)
			return
		}
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	})
}

func (s *Server) signupPage(r *http.Request, p web.SignupPage) web.SignupPage {
	p.Base = s.pageBase(r, "")
	p.MinLength = s.svc.MinPasswordLength()
	p.Providers = s.providerButtons(p.ReturnTo)
	return p
}

func (s *Server) handleSignupPage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.respond.page(w, r, http.StatusOK, s.signupPage(r, web.SignupPage{ReturnTo: r.URL.Query().Get("return_to")}))
	})
}

func (s *Server) handleSignupForm() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := parseForm(r); err != nil {
			s.respond.htmlError(w, r, err)
			return
		}
		email, target := r.PostForm.Get("email"), r.PostForm.Get("return_to")
		p := web.SignupPage{Email: email, ReturnTo: target}
		if target != "" {
			target = returnTo(target, s.cfg.RedirectHosts)
		}
		err := s.svc.Signup(r.Context(), email, r.PostForm.Get("password"), target, s.client(r))
		var pe *accounts.PasswordError
		switch {
		case err == nil:
			s.respond.page(w, r, http.StatusOK, s.checkInbox(r, email, "signup", s.cfg.VerifyTTL))
			return
		case errors.Is(err, accounts.ErrInvalidEmail):
			p.FieldErrors.Email = errorFor(err).Message
		case errors.As(err, &pe):
			p.FieldErrors.Password = pe.Error()
		default:
			s.formError(w, r, err, func(msg string) web.Page { p.Error = msg; return s.signupPage(r, p) })
			return
		}
		s.respond.page(w, r, http.StatusBadRequest, s.signupPage(r, p))
	})
}

// formError re-renders a form with the error's message for client-side
// failures (rate limits, invalid credentials) and shows the error page for
// server-side ones.
func (s *Server) formError(w http.ResponseWriter, r *http.Request, err error, page func(msg string) web.Page) {
	ae := errorFor(err)
	if ae.Status >= 500 {
		s.respond.htmlError(w, r, err)
		return
	}
	setRetryAfter(w, ae.RetryAfter)
	s.respond.page(w, r, ae.Status, page(ae.Message))
}

// tokenPage marks a page whose URL carries a token: no Referer at all,
// not even to us (TK-6). Only where browsers send Fetch Metadata (a secure
// context: HTTPS or loopback), because no-referrer also turns the Origin of
// the page's own form into "null", which elsewhere the cross-origin check
// would refuse; there same-origin (the default) keeps the token from
// other sites just as well.
func (s *Server) tokenPage(w http.ResponseWriter) {
	if s.secureContext {
		w.Header().Set("Referrer-Policy", "no-referrer")
	}
}

// checkLink looks at the token of a mailed link without using it (GET must
// never consume: mail scanners prefetch links). It answers the error page
// itself when the check could not be made (ok false).
func (s *Server) checkLink(w http.ResponseWriter, r *http.Request, p accounts.Purpose) (token string, valid bool, status int, ok bool) {
	s.tokenPage(w)
	token = r.URL.Query().Get("token")
	err := s.svc.CheckToken(r.Context(), p, token)
	switch {
	case err == nil:
		return token, true, http.StatusOK, true
	case errors.Is(err, accounts.ErrTokenInvalid):
		return token, false, http.StatusBadRequest, true
	default:
		s.respond.htmlError(w, r, err)
		return "", false, 0, false
	}
}

func (s *Server) handleVerifyPage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, valid, status, ok := s.checkLink(w, r, accounts.PurposeVerify)
		if ok {
			s.respond.page(w, r, status, web.VerifyPage{Base: s.pageBase(r, ""), Token: token, Valid: valid, ReturnTo: r.URL.Query().Get("return_to")})
		}
	})
}

func (s *Server) handleVerifyForm() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := parseForm(r); err != nil {
			s.respond.htmlError(w, r, err)
			return
		}
		token, target := r.PostForm.Get("token"), r.PostForm.Get("return_to")
		_, ns, err := s.svc.Verify(r.Context(), token, r.PostForm.Get("password"), s.sessions.previous(r), s.client(r))
		page := web.VerifyPage{Token: token, Valid: true, ReturnTo: target}
		switch {
		case err == nil:
			if err := s.sessions.start(w, r, ns); err != nil {
				s.respond.htmlError(w, r, err)
				return
			}
			s.redirectSignedIn(w, r, target)
		case errors.Is(err, accounts.ErrInvalidCredentials):
			page.Base = s.pageBase(r, "")
			page.Error = msgVerifyWrongPassword
			s.respond.page(w, r, http.StatusUnauthorized, page)
		case errors.Is(err, accounts.ErrTokenInvalid):
			page.Base, page.Valid = s.pageBase(r, ""), false
			s.respond.page(w, r, http.StatusBadRequest, page)
		default:
			s.formError(w, r, err, func(msg string) web.Page { page.Base, page.Error = s.pageBase(r, ""), msg; return page })
		}
	})
}

func (s *Server) handleResendForm() http.Handler {
	return s.handleMailRequestForm(s.svc.ResendVerification, "resend", s.cfg.VerifyTTL,
		func(r *http.Request, _, msg string) web.Page {
			return web.VerifyPage{Base: s.pageBase(r, ""), Error: msg}
		})
}

// handleMailRequestForm serves the forms that take an address and may
// mail it a link; the check-inbox answer is the same whatever the address.
func (s *Server) handleMailRequestForm(request func(context.Context, string, accounts.Client) error, kind string, ttl time.Duration, errPage func(r *http.Request, email, msg string) web.Page) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := parseForm(r); err != nil {
			s.respond.htmlError(w, r, err)
			return
		}
		email := r.PostForm.Get("email")
		if err := request(r.Context(), email, s.client(r)); err != nil {
			s.formError(w, r, err, func(msg string) web.Page { return errPage(r, email, msg) })
			return
		}
		s.respond.page(w, r, http.StatusOK, s.checkInbox(r, email, kind, ttl))
	})
}

// checkInbox is the neutral answer to a request that may mail a link. It
// states the mail quota to everyone alike: a person whose request was held
// back learns that the last link still works, and nobody learns whether
// this one was.
func (s *Server) checkInbox(r *http.Request, email, kind string, ttl time.Duration) web.CheckInboxPage {
	return web.CheckInboxPage{
		Base: s.pageBase(r, ""), Email: email, Kind: kind, ValidFor: humantime.Duration(ttl),
		MailInterval: humantime.Duration(s.cfg.MailInterval), MailPerHour: s.cfg.MailPerHour,
	}
}

func (s *Server) loginPage(r *http.Request, p web.LoginPage) web.LoginPage {
	p.Base = s.pageBase(r, "")
	p.Providers = s.providerButtons(p.ReturnTo)
	return p
}

func (s *Server) handleLoginPage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := r.URL.Query().Get("return_to")
		// A signed-in user is sent on, unless they were sent here to sign
		// in again for a sensitive change.
		if _, ok := authFrom(r.Context()); ok && target != "" && r.URL.Query().Get("notice") != "reauth" {
			s.redirectSignedIn(w, r, target)
			return
		}
		s.respond.page(w, r, http.StatusOK, s.loginPage(r, web.LoginPage{ReturnTo: target}))
	})
}

func (s *Server) handleLoginForm() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := parseForm(r); err != nil {
			s.respond.htmlError(w, r, err)
			return
		}
		email, target := r.PostForm.Get("email"), r.PostForm.Get("return_to")
		_, ns, err := s.svc.Login(r.Context(), email, r.PostForm.Get("password"), s.sessions.previous(r), s.client(r))
		p := web.LoginPage{Email: email, ReturnTo: target}
		switch {
		case err == nil:
			if err := s.sessions.start(w, r, ns); err != nil {
				s.respond.htmlError(w, r, err)
				return
			}
			s.redirectSignedIn(w, r, target)
		case errors.Is(err, accounts.ErrEmailNotVerified):
			p.NotVerified = true
			s.respond.page(w, r, http.StatusForbidden, s.loginPage(r, p))
		default:
			s.formError(w, r, err, func(msg string) web.Page { p.Error = msg; return s.loginPage(r, p) })
		}
	})
}

func (s *Server) handleLogoutForm() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.sessions.end(w, r); err != nil {
			s.respond.htmlError(w, r, err)
			return
		}
		http.Redirect(w, r, "/login?notice=signed_out", http.StatusSeeOther)
	})
}

func (s *Server) handleForgotPage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.respond.page(w, r, http.StatusOK, web.ForgotPage{Base: s.pageBase(r, "")})
	})
}

func (s *Server) handleForgotForm() http.Handler {
	return s.handleMailRequestForm(s.svc.ForgotPassword, "reset", s.cfg.ResetTTL,
		func(r *http.Request, email, msg string) web.Page {
			return web.ForgotPage{Base: s.pageBase(r, ""), Email: email, Error: msg}
		})
}

func (s *Server) resetPage(r *http.Request, p web.ResetPage) web.ResetPage {
	p.Base = s.pageBase(r, "")
	p.MinLength = s.svc.MinPasswordLength()
	return p
}

func (s *Server) handleResetPage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, valid, status, ok := s.checkLink(w, r, accounts.PurposeReset)
		if ok {
			s.respond.page(w, r, status, s.resetPage(r, web.ResetPage{Token: token, Valid: valid}))
		}
	})
}

func (s *Server) handleResetForm() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := parseForm(r); err != nil {
			s.respond.htmlError(w, r, err)
			return
		}
		token := r.PostForm.Get("token")
		err := s.svc.ResetPassword(r.Context(), token, r.PostForm.Get("password"), s.client(r))
		p := web.ResetPage{Token: token, Valid: true}
		var pe *accounts.PasswordError
		switch {
		case err == nil:
			http.Redirect(w, r, "/login?notice=password_reset", http.StatusSeeOther)
		case errors.As(err, &pe):
			p.FieldErrors.Password = pe.Error()
			s.respond.page(w, r, http.StatusBadRequest, s.resetPage(r, p))
		case errors.Is(err, accounts.ErrTokenInvalid):
			p.Valid = false
			s.respond.page(w, r, http.StatusBadRequest, s.resetPage(r, p))
		default:
			s.formError(w, r, err, func(msg string) web.Page { p.Error = msg; return s.resetPage(r, p) })
		}
	})
}

// requireAuth sends signed-out browsers to the login page and back.
func (s *Server) requireAuth(w http.ResponseWriter, r *http.Request) (accounts.Auth, bool) {
	a, ok := authFrom(r.Context())
	if !ok {
		target := "/account"
		if r.Method == http.MethodGet {
			target = r.URL.RequestURI()
		}
		http.Redirect(w, r, "/login?return_to="+url.QueryEscape(target), http.StatusSeeOther)
	}
	return a, ok
}

// accountPage builds the account overview of a.
func (s *Server) accountPage(r *http.Request, a accounts.Auth) (web.AccountPage, error) {
	list, err := s.svc.Sessions(r.Context(), a)
	if err != nil {
		return web.AccountPage{}, err
	}
	rows := make([]web.SessionRow, len(list))
	for i, x := range list {
		rows[i] = web.SessionRow{ID: x.ID, CreatedAt: x.CreatedAt, LastSeenAt: x.LastSeenAt, UserAgent: x.UserAgent, IP: x.IP, Current: x.ID == a.Session.ID}
	}
	idRows, err := s.identityRows(r, a)
	if err != nil {
		return web.AccountPage{}, err
	}
	return web.AccountPage{
		Base:        s.pageBase(r, ""),
		Email:       a.User.Email,
		CreatedAt:   a.User.CreatedAt,
		HasPassword: a.User.HasPassword(),
		Sessions:    rows,
		Identities:  idRows,
		MinLength:   s.svc.MinPasswordLength(),
	}, nil
}

// identityRows lists every configured provider, linked or not.
func (s *Server) identityRows(r *http.Request, a accounts.Auth) ([]web.IdentityRow, error) {
	if s.providers == nil || len(s.providers.Providers()) == 0 {
		return nil, nil
	}
	linked, err := s.svc.Identities(r.Context(), a.User.ID)
	if err != nil {
		return nil, err
	}
	canDisconnect := a.User.HasPassword() || len(linked) > 1
	var rows []web.IdentityRow
	for _, p := range s.providers.Providers() {
		row := web.IdentityRow{Provider: p.ID, Label: p.Label}
		for _, id := range linked {
			if id.Provider == p.ID {
				row.Linked, row.Email, row.LinkedAt, row.CanDisconnect = true, id.Email, id.LinkedAt, canDisconnect
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func (s *Server) handleAccountPage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := s.requireAuth(w, r)
		if !ok {
			return
		}
		p, err := s.accountPage(r, a)
		if err != nil {
			s.respond.htmlError(w, r, err)
			return
		}
		s.respond.page(w, r, http.StatusOK, p)
	})
}

func (s *Server) handlePasswordForm() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := s.requireAuth(w, r)
		if !ok {
			return
		}
		if err := parseForm(r); err != nil {
			s.respond.htmlError(w, r, err)
			return
		}
		notice := "password_changed"
		var err error
		if a.User.HasPassword() {
			err = s.svc.ChangePassword(r.Context(), a, r.PostForm.Get("current_password"), r.PostForm.Get("new_password"), s.client(r))
		} else {
			notice = "password_set"
			err = s.svc.SetFirstPassword(r.Context(), a, r.PostForm.Get("new_password"), s.client(r))
		}
		if errors.Is(err, accounts.ErrReauthRequired) {
			http.Redirect(w, r, "/login?notice=reauth&return_to="+url.QueryEscape("/account"), http.StatusSeeOther)
			return
		}
		if err == nil {
			http.Redirect(w, r, "/account?notice="+notice, http.StatusSeeOther)
			return
		}
		ae := errorFor(err)
		if ae.Status >= 500 {
			s.respond.htmlError(w, r, err)
			return
		}
		p, perr := s.accountPage(r, a)
		if perr != nil {
			s.respond.htmlError(w, r, perr)
			return
		}
		var pe *accounts.PasswordError
		switch {
		case errors.As(err, &pe):
			p.FieldErrors.Password = pe.Error()
		case errors.Is(err, accounts.ErrInvalidCredentials):
			p.FieldErrors.Current = msgWrongCurrentPassword
		default:
			p.PasswordError = ae.Message
		}
		setRetryAfter(w, ae.RetryAfter)
		s.respond.page(w, r, ae.Status, p)
	})
}

func (s *Server) handleRevokeForm() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := s.requireAuth(w, r)
		if !ok {
			return
		}
		if err := s.svc.RevokeSession(r.Context(), a, mux.Vars(r)["id"]); err != nil {
			s.respond.htmlError(w, r, err)
			return
		}
		http.Redirect(w, r, "/account?notice=session_revoked", http.StatusSeeOther)
	})
}

func (s *Server) handleRevokeOthersForm() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := s.requireAuth(w, r)
		if !ok {
			return
		}
		if err := s.svc.RevokeOtherSessions(r.Context(), a); err != nil {
			s.respond.htmlError(w, r, err)
			return
		}
		http.Redirect(w, r, "/account?notice=sessions_revoked", http.StatusSeeOther)
	})
}
