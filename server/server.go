// Package server is Gatehouse's HTTP layer: the server-rendered pages, the
// JSON API for single-page apps, forward auth for reverse proxies, and the
// operational endpoints. Handlers decode and validate, make one call into
// the accounts domain, and map the result; every route is listed in
// routes.go and every error's status in respond.go.
package server

import (
	"context"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/gorilla/sessions"
	"github.com/prometheus/client_golang/prometheus"

	"log/slog"

	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/providers"
	"github.com/gatehouse/gatehouse/web"
)

// Config is what the HTTP layer needs from the configuration.
type Config struct {
	PublicURL      string
	TrustedProxies []*net.IPNet
	MaxBodyBytes   int64
	RequestTimeout time.Duration
	// CORSOrigins and RedirectHosts hold canonical origins (scheme://host[:port]).
	CORSOrigins         map[string]bool
	RedirectHosts       map[string]bool
	ForwardAuthRedirect bool
	DevMode             bool
	// Cookie settings.
	CookieName      string
	CookieDomain    string
	SecureCookies   bool
	AbsoluteTimeout time.Duration
	// SessionKey signs session cookies (HMAC-SHA256).
	SessionKey []byte
	// HTTPS is true when PublicURL is https: HSTS on every answer.
	HTTPS bool
	// AccessLog logs one line per request.
	AccessLog bool
	// VerifyTTL and ResetTTL are the lifetimes of mailed links, for the
	// pages that mention them.
	VerifyTTL time.Duration
	ResetTTL  time.Duration
	// MailInterval and MailPerHour are the per-address mail quota, which
	// every "check your inbox" answer states, the same for every address.
	MailInterval time.Duration
	MailPerHour  int
}

// Mailbox lists the mails of the development mailbox.
type Mailbox interface {
	Rows() []web.MailboxRow
}

// Deps are the collaborators of the server.
type Deps struct {
	Logger   *slog.Logger
	Accounts *accounts.Service
	Pages    *web.Templates
	// Mailbox is the development mailbox; nil unless dev mode without SMTP.
	Mailbox Mailbox
	// Ready reports whether the database answers, for /readyz.
	Ready func(context.Context) error
	// Registry collects metrics for /metrics.
	Registry *prometheus.Registry
	// Providers are the sign-in providers; nil or empty when none is configured.
	Providers *providers.Registry
}

// Server is the HTTP handler of Gatehouse.
type Server struct {
	cfg       Config
	log       *slog.Logger
	svc       *accounts.Service
	pages     *web.Templates
	mailbox   Mailbox
	ready     func(context.Context) error
	registry  *prometheus.Registry
	metrics   *metrics
	respond   *responder
	sessions  *sessionStore
	providers *providers.Registry
	csp       string
	// secureContext: browsers treat the public URL as a secure context
	// (HTTPS or loopback) and send Fetch Metadata to it.
	secureContext bool
	handler       http.Handler
	ops           http.Handler
}

// New builds the server and its routes.
func New(cfg Config, d Deps) *Server {
	s := &Server{
		cfg:       cfg,
		log:       d.Logger,
		svc:       d.Accounts,
		pages:     d.Pages,
		mailbox:   d.Mailbox,
		ready:     d.Ready,
		registry:  d.Registry,
		metrics:   newMetrics(d.Registry),
		respond:   &responder{log: d.Logger, pages: d.Pages, mailbox: d.Mailbox != nil},
		providers: d.Providers,
	}
	s.sessions = newSessionStore(cfg.CookieName, cfg.SessionKey, sessions.Options{
		Path:     "/",
		Domain:   cfg.CookieDomain,
		MaxAge:   int(cfg.AbsoluteTimeout.Seconds()),
		Secure:   cfg.SecureCookies,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}, d.Accounts)
	formTargets := maps.Clone(cfg.RedirectHosts)
	if formTargets == nil {
		formTargets = map[string]bool{}
	}
	if d.Providers != nil {
		for _, o := range d.Providers.AuthOrigins() {
			formTargets[o] = true
		}
	}
	s.csp = contentSecurityPolicy(formTargets)
	s.secureContext = isSecureContext(cfg.PublicURL)
	s.handler = s.routes()
	s.ops = s.opsRoutes()
	return s
}

// ServeHTTP implements http.Handler: the public listener.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Ops is the handler of the operations listener: /healthz, /readyz and
// /metrics.
func (s *Server) Ops() http.Handler { return s.ops }

// contentSecurityPolicy allows nothing but our own stylesheet. Forms may
// post to us and, since browsers apply form-action to the redirect that
// follows a form, lead on to the allowed return_to hosts and to the
// providers' authorization pages (connecting an account is a POST).
func contentSecurityPolicy(formTargets map[string]bool) string {
	formAction := []string{"'self'"}
	for h := range formTargets {
		formAction = append(formAction, h)
	}
	slices.Sort(formAction[1:])
	return strings.Join([]string{
		"default-src 'none'",
		"style-src 'self'",
		"img-src 'self' data:",
		"form-action " + strings.Join(formAction, " "),
		"frame-ancestors 'none'",
		"base-uri 'none'",
		"object-src 'none'",
	}, "; ")
}

// isSecureContext reports whether browsers consider an origin potentially
// trustworthy: https, or a loopback host (including *.localhost).
func isSecureContext(origin string) bool {
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if u.Scheme == "https" {
		return true
	}
	h := u.Hostname()
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// crossOrigin refuses state-changing requests from other origins (CS-1)
// with the standard library's Fetch-metadata check, trusting only the
// configured SPA origins.
func (s *Server) crossOrigin(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	for o := range s.cfg.CORSOrigins {
		_ = cop.AddTrustedOrigin(o) // validated at startup
	}
	// The forward-auth check changes nothing, and proxies send it with the
	// headers (and method) of whatever request they are guarding.
	cop.AddInsecureBypassPattern("/auth/check")
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.respond.error(w, r, requestError(http.StatusForbidden, "cross_origin", "Cross-origin request refused."))
	}))
	return cop.Handler(next)
}

// chain applies middleware so that the first listed runs first.
func chain(h http.Handler, mw ...func(http.Handler) http.Handler) http.Handler {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}

// notFound answers unknown paths in the right format.
func (s *Server) notFound() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.respond.error(w, r, accounts.ErrNotFound)
	})
}

func (s *Server) methodNotAllowed() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.respond.error(w, r, requestError(http.StatusMethodNotAllowed, "method_not_allowed", "Method not allowed."))
	})
}

// router is the gorilla/mux router with our fallbacks.
func (s *Server) router() *mux.Router {
	r := mux.NewRouter()
	r.NotFoundHandler = s.notFound()
	r.MethodNotAllowedHandler = s.methodNotAllowed()
	return r
}
