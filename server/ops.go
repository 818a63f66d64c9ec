package server

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/web"
)

// handleHealthz says the process is alive; it checks no dependency.
func (s *Server) handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
}

// handleReadyz says whether the database answers (RL-1).
func (s *Server) handleReadyz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := s.ready(ctx); err != nil {
			s.log.Warn("not ready", "error", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("database unavailable\n"))
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
}

// handleDevMailbox lists the development mailbox. It exists only in dev
// mode without SMTP, and answers only a browser on this machine: the mails
// carry live sign-in and reset links.
func (s *Server) handleDevMailbox() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !fromThisMachine(r, clientIP(r)) {
			s.respond.htmlError(w, r, accounts.ErrNotFound)
			return
		}
		s.respond.page(w, r, http.StatusOK, web.MailboxPage{Base: s.pageBase(r, ""), Mails: s.mailbox.Rows()})
	})
}

// forwardingHeaders are set by proxies to say whom they forward for.
var forwardingHeaders = []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Real-Ip", "X-Client-Ip", "True-Client-Ip", "Cf-Connecting-Ip"}

// fromThisMachine reports whether a request comes from a client on this
// host itself. A loopback peer is not enough: a reverse proxy on the same
// host connects from loopback on behalf of anyone, so a request that names
// a forwarded client, or whose client IP resolved through trusted_proxies
// is not loopback, is not from this machine.
func fromThisMachine(r *http.Request, resolvedIP string) bool {
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return false
	}
	if ip := net.ParseIP(resolvedIP); ip == nil || !ip.IsLoopback() {
		return false
	}
	for _, h := range forwardingHeaders {
		if _, ok := r.Header[h]; ok {
			return false
		}
	}
	return true
}
