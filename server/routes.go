package server

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gatehouse/gatehouse/web"
)

// routes is the whole HTTP surface of Gatehouse, in one place.
func (s *Server) routes() http.Handler {
	r := s.router()
	r.Use(nameRoute)
	get, post, del := []string{http.MethodGet, http.MethodHead}, http.MethodPost, http.MethodDelete

	// Browser pages: HTML forms, no JavaScript needed.
	r.Handle("/", s.handleHome()).Methods(get...)
	r.Handle("/signup", s.handleSignupPage()).Methods(get...)
	r.Handle("/signup", s.handleSignupForm()).Methods(post)
	r.Handle("/verify", s.handleVerifyPage()).Methods(get...)
	r.Handle("/verify", s.handleVerifyForm()).Methods(post)
	r.Handle("/verify/resend", s.handleResendForm()).Methods(post)
	r.Handle("/login", s.handleLoginPage()).Methods(get...)
	r.Handle("/login", s.handleLoginForm()).Methods(post)
	r.Handle("/logout", s.handleLogoutForm()).Methods(post)
	r.Handle("/password/forgot", s.handleForgotPage()).Methods(get...)
	r.Handle("/password/forgot", s.handleForgotForm()).Methods(post)
	r.Handle("/password/reset", s.handleResetPage()).Methods(get...)
	r.Handle("/password/reset", s.handleResetForm()).Methods(post)
	r.Handle("/account", s.handleAccountPage()).Methods(get...)
	r.Handle("/account/password", s.handlePasswordForm()).Methods(post)
	r.Handle("/account/sessions/revoke-others", s.handleRevokeOthersForm()).Methods(post)
	r.Handle("/account/sessions/{id}/revoke", s.handleRevokeForm()).Methods(post)
	r.Handle("/account/identities/{provider}/connect", s.handleConnectForm()).Methods(post)
	r.Handle("/account/identities/{provider}/disconnect", s.handleDisconnectForm()).Methods(post)

	// Sign in with Google, GitHub: the flow, and linking to an existing account.
	r.Handle("/auth/link", s.handleLinkPage()).Methods(get...)
	r.Handle("/auth/link", s.handleLinkForm()).Methods(post)
	r.Handle("/auth/link/mail", s.handleLinkMailForm()).Methods(post)
	r.Handle("/auth/link/confirm", s.handleLinkConfirmPage()).Methods(get...)
	r.Handle("/auth/link/confirm", s.handleLinkConfirmForm()).Methods(post)

	// JSON API for single-page apps.
	r.Handle("/api/v1/signup", s.handleAPISignup()).Methods(post)
	r.Handle("/api/v1/verify", s.handleAPIVerify()).Methods(post)
	r.Handle("/api/v1/verify/resend", s.handleAPIResend()).Methods(post)
	r.Handle("/api/v1/login", s.handleAPILogin()).Methods(post)
	r.Handle("/api/v1/logout", s.handleAPILogout()).Methods(post)
	r.Handle("/api/v1/session", s.handleAPISession()).Methods(get...)
	r.Handle("/api/v1/password/forgot", s.handleAPIForgot()).Methods(post)
	r.Handle("/api/v1/password/reset", s.handleAPIReset()).Methods(post)
	r.Handle("/api/v1/password/change", s.handleAPIChangePassword()).Methods(post)
	r.Handle("/api/v1/sessions", s.handleAPISessions()).Methods(get...)
	r.Handle("/api/v1/sessions", s.handleAPIRevokeOthers()).Methods(del)
	r.Handle("/api/v1/sessions/{id}", s.handleAPIRevoke()).Methods(del)
	r.Handle("/api/v1/identities", s.handleAPIIdentities()).Methods(get...)
	r.Handle("/api/v1/identities/{provider}", s.handleAPIDisconnect()).Methods(del)

	// Forward auth for nginx auth_request, Traefik forwardAuth, Caddy forward_auth.
	r.Handle("/auth/check", s.handleAuthCheck())
	// Provider routes after the fixed /auth/... paths, which they would shadow.
	// GET only: a HEAD must neither start a flow nor use up a callback's state.
	r.Handle("/auth/{provider}", s.handleProviderBegin()).Methods(http.MethodGet)
	r.Handle("/auth/{provider}/callback", s.handleProviderCallback()).Methods(http.MethodGet)

	// Probes; /metrics is only on the operations listener (opsRoutes).
	r.Handle("/healthz", s.handleHealthz()).Methods(get...)
	r.Handle("/readyz", s.handleReadyz()).Methods(get...)
	r.PathPrefix("/static/").Handler(http.StripPrefix("/static/", web.Static())).Methods(get...)
	if s.mailbox != nil {
		r.Handle("/dev/mailbox", s.handleDevMailbox()).Methods(get...)
	}

	return chain(r, s.observe, s.secure, s.limits, s.cors, s.crossOrigin, s.authenticate)
}

// opsRoutes is the surface of the operations listener (server.ops_address):
// what operators and their tools need, kept off the public listener because
// counters of mails and sign-ins describe what happens to accounts.
func (s *Server) opsRoutes() http.Handler {
	r := s.router()
	r.Use(nameRoute)
	get := []string{http.MethodGet, http.MethodHead}

	r.Handle("/healthz", s.handleHealthz()).Methods(get...)
	r.Handle("/readyz", s.handleReadyz()).Methods(get...)
	r.Handle("/metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{})).Methods(get...)

	return chain(r, s.observe, s.secure, s.limits)
}
