package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
)

type ctxKey int

const (
	ctxRequestID ctxKey = iota
	ctxClientIP
	ctxAuth
	ctxRoute
)

// routeName carries the matched route's template from the router back out
// to observe, for metric labels that do not explode with ids in paths.
type routeName struct{ name string }

// nameRoute is a mux middleware that records the matched route's template.
func nameRoute(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rn, ok := r.Context().Value(ctxRoute).(*routeName); ok {
			if cr := mux.CurrentRoute(r); cr != nil {
				if tpl, err := cr.GetPathTemplate(); err == nil {
					rn.name = tpl
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

func requestID(r *http.Request) string {
	id, _ := r.Context().Value(ctxRequestID).(string)
	return id
}

func clientIP(r *http.Request) string {
	ip, _ := r.Context().Value(ctxClientIP).(string)
	return ip
}

// statusWriter records the status for logs and metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// metrics holds the HTTP instruments.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// signins counts provider callbacks by provider and result.
	signins *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_http_requests_total",
			Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatehouse_http_request_duration_seconds",
			Help:    "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route"}),
		signins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_provider_signins_total",
			Help: "Provider sign-in callbacks by provider and result: succeeded, link_required, cancelled, refused, provider_unavailable, failed.",
		}, []string{"provider", "result"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.signins)
	}
	return m
}

// observe is the outermost middleware: request id, client IP, panic
// recovery, the access log and metrics. The log has the path but never the
// query string, which can carry tokens (IN-4).
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := newRequestID()
		route := &routeName{name: "other"}
		ctx := context.WithValue(r.Context(), ctxRequestID, id)
		ctx = context.WithValue(ctx, ctxClientIP, s.clientIP(r))
		ctx = context.WithValue(ctx, ctxRoute, route)
		r = r.WithContext(ctx)
		w.Header().Set("X-Request-Id", id)
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("panic", "request_id", id, "panic", p)
				if sw.status == 0 {
					s.respond.error(sw, r, errPanic)
				}
			}
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			elapsed := time.Since(start)
			s.metrics.requests.WithLabelValues(route.name, statusCode(status)).Inc()
			s.metrics.duration.WithLabelValues(route.name).Observe(elapsed.Seconds())
			if s.cfg.AccessLog {
				s.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
					slog.String("request_id", id), slog.String("method", r.Method),
					slog.String("path", r.URL.Path), slog.Int("status", status),
					slog.Duration("duration", elapsed), slog.String("ip", clientIP(r)))
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

var errPanic = &apiError{Status: http.StatusInternalServerError, Code: "internal_error", Message: "Something went wrong on our side."}

func statusCode(n int) string {
	const digits = "0123456789"
	if n < 100 || n > 999 {
		return "000"
	}
	return string([]byte{digits[n/100], digits[n/10%10], digits[n%10]})
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// clientIP is the peer address, or, when the peer is a trusted proxy, the
// right-most address in X-Forwarded-For that is not itself a trusted proxy
// (AB-3). Left-most entries are whatever the client chose to send.
func (s *Server) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	if !s.trusted(host) {
		return host
	}
	xff := r.Header.Values("X-Forwarded-For")
	for i := len(xff) - 1; i >= 0; i-- {
		parts := strings.Split(xff[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			ip := strings.TrimSpace(parts[j])
			if net.ParseIP(ip) == nil {
				return host
			}
			if !s.trusted(ip) {
				return ip
			}
			host = ip
		}
	}
	return host
}

func (s *Server) trusted(ip string) bool {
	p := net.ParseIP(ip)
	if p == nil {
		return false
	}
	for _, n := range s.cfg.TrustedProxies {
		if n.Contains(p) {
			return true
		}
	}
	return false
}

// isHTTPS reports whether the client reached us over HTTPS, believing
// X-Forwarded-Proto only from a trusted proxy.
func (s *Server) isHTTPS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	return s.trusted(host) && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// secure sets the headers every response carries, errors included (HD-1).
// Responses are not cacheable except static assets: pages show accounts
// and tokens, and API answers are per user.
func (s *Server) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", s.csp)
		h.Set("X-Content-Type-Options", "nosniff")
		// same-origin: no referrer ever leaves for another site. Not
		// no-referrer: with it, browsers that send no Fetch Metadata (plain
		// HTTP off loopback) send "Origin: null" on our own form posts,
		// which the cross-origin check must refuse. Pages whose URL holds
		// a token tighten this (tokenPage).
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if s.cfg.HTTPS || s.isHTTPS(r) {
			h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		}
		if strings.HasPrefix(r.URL.Path, "/static/") {
			// Page links to assets carry a content hash (?v=…), so they
			// never change under a URL.
			h.Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// limits bounds every request's body and its time.
func (s *Server) limits(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// cors answers /api/v1 for the exact configured origins only (CS-2). Other
// origins get no CORS headers, so browsers keep their answers from scripts;
// "null" is never an allowed origin. Preflights from allowed origins get 204.
func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || !strings.HasPrefix(r.URL.Path, "/api/") {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Add("Vary", "Origin")
		allowed := s.cfg.CORSOrigins[strings.ToLower(origin)]
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			if !allowed {
				s.respond.jsonError(w, r, requestError(http.StatusForbidden, "origin_not_allowed", "This origin may not call the API."))
				return
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE")
			h.Set("Access-Control-Allow-Headers", "Content-Type")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if allowed {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Set("Access-Control-Allow-Credentials", "true")
			w.Header().Set("Access-Control-Expose-Headers", "Retry-After, X-Request-Id")
		}
		next.ServeHTTP(w, r)
	})
}

// authenticate loads the session, if any, into the request context. A
// session that cannot be checked because the database is down is not
// treated as signed out: the request fails with 503 (RL-1), nothing is
// authenticated by mistake, and nothing is deleted.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/static/") || r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			next.ServeHTTP(w, r)
			return
		}
		a, err := s.sessions.auth(r)
		if err != nil {
			s.respond.error(w, r, err)
			return
		}
		if a != nil {
			r = r.WithContext(context.WithValue(r.Context(), ctxAuth, *a))
		}
		next.ServeHTTP(w, r)
	})
}
