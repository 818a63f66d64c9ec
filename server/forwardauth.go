package server

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse/gatehouse/accounts"
)

// handleAuthCheck is the forward-auth endpoint: 200 with the user's id and
// email in X-Auth-Request-* headers for a valid session, otherwise 401 — or,
// for a browser navigating to a protected app, a redirect to the login page
// that brings them back to the page they asked for.
func (s *Server) handleAuthCheck() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a, ok := authFrom(r.Context()); ok {
			h := w.Header()
			h.Set("X-Auth-Request-User", a.User.ID)
			h.Set("X-Auth-Request-Email", a.User.Email)
			w.WriteHeader(http.StatusOK)
			return
		}
		if s.cfg.ForwardAuthRedirect && strings.Contains(r.Header.Get("Accept"), "text/html") {
			if original := s.forwardedURL(r); original != "" {
				http.Redirect(w, r, s.cfg.PublicURL+"/login?return_to="+url.QueryEscape(original), http.StatusFound)
				return
			}
		}
		s.respond.jsonError(w, r, accounts.ErrUnauthenticated)
	})
}

// forwardedURL rebuilds the URL the user asked the proxy for, from the
// X-Forwarded-* headers, if its origin may be a return_to target.
func (s *Server) forwardedURL(r *http.Request) string {
	host := r.Header.Get("X-Forwarded-Host")
	if host == "" {
		return ""
	}
	proto := strings.ToLower(r.Header.Get("X-Forwarded-Proto"))
	if proto != "https" {
		proto = "http"
	}
	uri := r.Header.Get("X-Forwarded-Uri")
	if uri == "" || uri[0] != '/' {
		uri = "/"
	}
	u := proto + "://" + host + uri
	if returnTo(u, s.cfg.RedirectHosts) != u {
		return ""
	}
	return u
}
