package server

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/gorilla/mux"

	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/providers"
	"github.com/gatehouse/gatehouse/web"
)

// Cookies of the provider flows. Both are host-only, HttpOnly and
// SameSite=Lax: the provider's redirect back is a top-level navigation, on
// which Lax cookies are sent.
const (
	// browserCookie binds a flow to the browser that started it (OA-1).
	browserCookie    = "gatehouse_oauth"
	browserCookieAge = 24 * time.Hour
	// linkCookie holds a pending link until the account owner proves it.
	linkCookie    = "gatehouse_link"
	linkCookieAge = time.Hour
)

// cookieName adds the __Host- prefix when cookies are Secure: these
// cookies are always host-only, so browsers can enforce it.
func (s *Server) cookieName(name string) string {
	if s.cfg.SecureCookies {
		return "__Host-" + name
	}
	return name
}

// newToken returns 256 random bits, base64url.
func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *Server) setCookie(w http.ResponseWriter, name, value string, age time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name: s.cookieName(name), Value: value, Path: "/", MaxAge: int(age.Seconds()),
		Secure: s.cfg.SecureCookies, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
}

func (s *Server) clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{
		Name: s.cookieName(name), Value: "", Path: "/", MaxAge: -1,
		Secure: s.cfg.SecureCookies, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
}

func (s *Server) cookieValue(r *http.Request, name string) string {
	c, err := r.Cookie(s.cookieName(name))
	if err != nil || len(c.Value) > 256 {
		return ""
	}
	return c.Value
}

// browserBinding returns the browser's binding value, setting a new one if
// it has none. Flows already under way in other tabs keep working.
func (s *Server) browserBinding(w http.ResponseWriter, r *http.Request) string {
	if v := s.cookieValue(r, browserCookie); len(v) == 43 {
		return v
	}
	v := newToken()
	s.setCookie(w, browserCookie, v, browserCookieAge)
	return v
}

// providerButtons lists the sign-in buttons, carrying return_to along.
func (s *Server) providerButtons(target string) []web.ProviderButton {
	if s.providers == nil {
		return nil
	}
	var out []web.ProviderButton
	for _, p := range s.providers.Providers() {
		u := "/auth/" + url.PathEscape(p.ID)
		if target != "" {
			u += "?return_to=" + url.QueryEscape(target)
		}
		out = append(out, web.ProviderButton{ID: p.ID, Label: p.Label, URL: u})
	}
	return out
}

func (s *Server) providerLabel(id string) string {
	if s.providers != nil {
		if p, ok := s.providers.Get(id); ok {
			return p.Label
		}
	}
	return id
}

// handleProviderBegin starts a sign-in with a provider: GET /auth/{provider}.
// The provider comes from the route only; a ?state= from the caller is
// never read (OA-1).
func (s *Server) handleProviderBegin() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := mux.Vars(r)["provider"]
		if _, ok := s.provider(id); !ok {
			s.respond.htmlError(w, r, accounts.ErrNotFound)
			return
		}
		if err := s.svc.LimitProviderStart(s.client(r)); err != nil {
			s.respond.htmlError(w, r, err)
			return
		}
		target := r.URL.Query().Get("return_to")
		if target != "" {
			target = returnTo(target, s.cfg.RedirectHosts)
		}
		flow := providers.Flow{Intent: providers.IntentSignIn, ReturnTo: target}
		dest, err := s.providers.Begin(r.Context(), id, flow, s.browserBinding(w, r))
		if err != nil {
			s.respond.htmlError(w, r, err)
			return
		}
		http.Redirect(w, r, dest, http.StatusFound)
	})
}

func (s *Server) provider(id string) (*providers.Provider, bool) {
	if s.providers == nil {
		return nil, false
	}
	return s.providers.Get(id)
}

// providerError shows what went wrong in a provider flow and what to do;
// the table in respond.go says how each error reads.
func (s *Server) providerError(w http.ResponseWriter, r *http.Request, id string, err error) {
	label := s.providerLabel(id)
	if label == "" {
		label = "the provider"
	}
	s.respond.providerPage(w, r, label, err)
}

// countSignin counts a provider callback's result in
// gatehouse_provider_signins_total. The provider is a configured id (the
// route refused others), so the labels stay few.
func (s *Server) countSignin(provider string, err error, pending bool) {
	s.metrics.signins.WithLabelValues(provider, signinResult(err, pending)).Inc()
}

func signinResult(err error, pending bool) string {
	var rl *accounts.RateLimitError
	switch {
	case err == nil && pending:
		return "link_required"
	case err == nil:
		return "succeeded"
	case errors.Is(err, providers.ErrDenied):
		return "cancelled"
	case errors.Is(err, providers.ErrUnreachable):
		return "provider_unavailable"
	case errors.Is(err, providers.ErrProvider), errors.Is(err, providers.ErrState),
		errors.Is(err, accounts.ErrProviderEmailUnverified), errors.Is(err, accounts.ErrIdentityLinked),
		errors.Is(err, accounts.ErrProviderLinked), errors.Is(err, accounts.ErrReauthRequired),
		errors.Is(err, accounts.ErrConnectSession), errors.As(err, &rl):
		return "refused"
	default:
		return "failed"
	}
}

// handleProviderCallback finishes a provider flow: GET /auth/{provider}/callback.
func (s *Server) handleProviderCallback() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := mux.Vars(r)["provider"]
		if _, ok := s.provider(id); !ok {
			s.respond.htmlError(w, r, accounts.ErrNotFound)
			return
		}
		flow, prof, err := s.providers.Complete(r.Context(), id, r.URL.Query(), s.cookieValue(r, browserCookie))
		if err != nil {
			s.countSignin(id, err, false)
			s.providerError(w, r, id, err)
			return
		}
		if flow.Intent == providers.IntentConnect {
			s.finishConnect(w, r, flow, prof)
			return
		}
		res, err := s.svc.SocialSignIn(r.Context(), prof, flow.ReturnTo, s.sessions.previous(r), s.client(r))
		s.countSignin(id, err, res.Pending != nil)
		switch {
		case err != nil:
			s.providerError(w, r, id, err)
		case res.Pending != nil:
			s.setCookie(w, linkCookie, res.Pending.Token, linkCookieAge)
			http.Redirect(w, r, "/auth/link", http.StatusSeeOther)
		default:
			if err := s.sessions.start(w, r, res.Session); err != nil {
				s.respond.htmlError(w, r, err)
				return
			}
			s.redirectSignedIn(w, r, flow.ReturnTo)
		}
	})
}

// finishConnect links a provider to the user who asked for it from their
// account page; it must be the same session that started the flow.
func (s *Server) finishConnect(w http.ResponseWriter, r *http.Request, flow providers.Flow, prof accounts.Profile) {
	a, _ := authFrom(r.Context())
	err := s.svc.ConnectIdentity(r.Context(), a, accounts.ConnectStart{UserID: flow.UserID, SessionID: flow.SessionID}, prof)
	s.countSignin(prof.Provider, err, false)
	if err != nil {
		s.providerError(w, r, prof.Provider, err)
		return
	}
	http.Redirect(w, r, "/account?notice=connected", http.StatusSeeOther)
}

// linkPage renders the page of the browser's pending link.
func (s *Server) linkPage(w http.ResponseWriter, r *http.Request, status int, mailSent bool, errMsg string) {
	pl, err := s.svc.PendingLink(r.Context(), s.cookieValue(r, linkCookie))
	if errors.Is(err, accounts.ErrTokenInvalid) {
		s.clearCookie(w, linkCookie)
		s.providerError(w, r, "", providers.ErrState)
		return
	}
	if err != nil {
		s.respond.htmlError(w, r, err)
		return
	}
	s.respond.page(w, r, status, web.LinkPage{
		Base: s.pageBase(r, ""), Email: pl.Email, Provider: s.providerLabel(pl.Provider),
		ProviderAccount: providerAccount(pl.Profile), HasPassword: pl.HasPassword,
		Error: errMsg, MailSent: mailSent,
	})
}

func providerAccount(p accounts.Profile) string {
	for _, v := range []string{p.Email, p.Username, p.Name} {
		if v != "" {
			return v
		}
	}
	return p.Subject
}

func (s *Server) handleLinkPage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.linkPage(w, r, http.StatusOK, false, "")
	})
}

// handleLinkForm proves the existing account with its password.
func (s *Server) handleLinkForm() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := parseForm(r); err != nil {
			s.respond.htmlError(w, r, err)
			return
		}
		_, ns, target, err := s.svc.LinkWithPassword(r.Context(), s.cookieValue(r, linkCookie), r.PostForm.Get("password"), s.sessions.previous(r), s.client(r))
		s.finishLink(w, r, ns, target, err)
	})
}

// finishLink signs in after a link, or shows the link page with the error.
func (s *Server) finishLink(w http.ResponseWriter, r *http.Request, ns accounts.NewSession, target string, err error) {
	switch {
	case err == nil:
		s.clearCookie(w, linkCookie)
		if err := s.sessions.start(w, r, ns); err != nil {
			s.respond.htmlError(w, r, err)
			return
		}
		s.redirectSignedIn(w, r, target)
	case errors.Is(err, accounts.ErrTokenInvalid):
		// A bad mailed confirmation leaves a live pending link alone: the
		// person may still prove the account another way.
		if _, perr := s.svc.PendingLink(r.Context(), s.cookieValue(r, linkCookie)); perr != nil {
			s.clearCookie(w, linkCookie)
		}
		s.providerError(w, r, "", providers.ErrState)
	case errors.Is(err, accounts.ErrIdentityLinked), errors.Is(err, accounts.ErrProviderLinked):
		s.providerError(w, r, "", err)
	default:
		ae := errorFor(err)
		if ae.Status >= 500 {
			s.respond.htmlError(w, r, err)
			return
		}
		setRetryAfter(w, ae.RetryAfter)
		if errors.Is(err, accounts.ErrInvalidCredentials) {
			ae.Message = msgLinkWrongPassword
		}
		s.linkPage(w, r, ae.Status, false, ae.Message)
	}
}

// handleLinkMailForm mails the account's owner a confirmation link.
func (s *Server) handleLinkMailForm() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := s.svc.RequestLinkMail(r.Context(), s.cookieValue(r, linkCookie), s.client(r))
		if err != nil {
			s.finishLink(w, r, accounts.NewSession{}, "", err)
			return
		}
		s.linkPage(w, r, http.StatusOK, true, "")
	})
}

// handleLinkConfirmPage shows the mailed confirmation, without using it.
func (s *Server) handleLinkConfirmPage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.tokenPage(w)
		token := r.URL.Query().Get("token")
		pl, err := s.svc.CheckLinkConfirmation(r.Context(), token, s.cookieValue(r, linkCookie))
		if err != nil && !errors.Is(err, accounts.ErrTokenInvalid) {
			s.respond.htmlError(w, r, err)
			return
		}
		status := http.StatusOK
		if err != nil {
			status = http.StatusBadRequest
		}
		s.respond.page(w, r, status, web.LinkConfirmPage{
			Base: s.pageBase(r, ""), Token: token, Valid: err == nil, Email: pl.Email,
			Provider: s.providerLabel(pl.Provider), ProviderAccount: providerAccount(pl.Profile),
		})
	})
}

// handleLinkConfirmForm links with the mailed confirmation.
func (s *Server) handleLinkConfirmForm() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := parseForm(r); err != nil {
			s.respond.htmlError(w, r, err)
			return
		}
		_, ns, target, err := s.svc.ConfirmLink(r.Context(), r.PostForm.Get("token"), s.cookieValue(r, linkCookie), s.sessions.previous(r), s.client(r))
		s.finishLink(w, r, ns, target, err)
	})
}

// handleConnectForm starts linking a provider to the signed-in user. It
// needs a recent sign-in (LK-4); CSRF protection covers it like every POST.
func (s *Server) handleConnectForm() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := s.requireAuth(w, r)
		if !ok {
			return
		}
		id := mux.Vars(r)["provider"]
		if _, ok := s.provider(id); !ok {
			s.respond.htmlError(w, r, accounts.ErrNotFound)
			return
		}
		if err := s.svc.StartConnect(a); errors.Is(err, accounts.ErrReauthRequired) {
			http.Redirect(w, r, "/login?notice=reauth&return_to="+url.QueryEscape("/account"), http.StatusSeeOther)
			return
		}
		flow := providers.Flow{Intent: providers.IntentConnect, UserID: a.User.ID, SessionID: a.Session.ID, ReturnTo: "/account"}
		dest, err := s.providers.Begin(r.Context(), id, flow, s.browserBinding(w, r))
		if err != nil {
			s.respond.htmlError(w, r, err)
			return
		}
		http.Redirect(w, r, dest, http.StatusSeeOther)
	})
}

// handleDisconnectForm unlinks a provider from the signed-in user.
func (s *Server) handleDisconnectForm() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := s.requireAuth(w, r)
		if !ok {
			return
		}
		if err := s.svc.DisconnectIdentity(r.Context(), a, mux.Vars(r)["provider"]); err != nil {
			s.respond.htmlError(w, r, err)
			return
		}
		http.Redirect(w, r, "/account?notice=disconnected", http.StatusSeeOther)
	})
}
