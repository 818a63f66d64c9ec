package server

import (
	"context"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/internal/humantime"
)

// userJSON is the public view of a user (API.md): never a hash or token.
type userJSON struct {
	ID            string    `json:"id"`
	Email         string    `json:"email"`
	EmailVerified bool      `json:"email_verified"`
	HasPassword   bool      `json:"has_password"`
	Providers     []string  `json:"providers"`
	CreatedAt     time.Time `json:"created_at"`
}

func toUserJSON(u accounts.User, providers []string) userJSON {
	if providers == nil {
		providers = []string{}
	}
	return userJSON{ID: u.ID, Email: u.Email, EmailVerified: true, HasPassword: u.HasPassword(), Providers: providers, CreatedAt: u.CreatedAt}
}

type sessionJSON struct {
	ID         string    `json:"id"`
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
}

// sessionResponse answers GET /api/v1/session, the hottest API call.
type sessionResponse struct {
	Session sessionJSON `json:"session"`
	User    userJSON    `json:"user"`
}

type sessionListItem struct {
	ID         string    `json:"id"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	UserAgent  string    `json:"user_agent"`
	IP         string    `json:"ip"`
	Current    bool      `json:"current"`
}

type credentialsRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

type emailRequest struct {
	Email string `json:"email"`
}

type tokenPasswordRequest struct {
	Token    string `json:"token"`
	Password string `json:"password"`
}

type changePasswordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// apiAuth returns the caller's session or answers 401.
func (s *Server) apiAuth(w http.ResponseWriter, r *http.Request) (accounts.Auth, bool) {
	a, ok := authFrom(r.Context())
	if !ok {
		s.respond.jsonError(w, r, accounts.ErrUnauthenticated)
	}
	return a, ok
}

// decode reads the body into dst or answers the error.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, dst any) bool {
	if err := decodeJSON(r, dst); err != nil {
		s.respond.jsonError(w, r, err)
		return false
	}
	return true
}

func (s *Server) handleAPISignup() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req credentialsRequest
		if !s.decode(w, r, &req) {
			return
		}
		if err := s.svc.Signup(r.Context(), req.Email, req.Password, "", s.client(r)); err != nil {
			s.respond.jsonError(w, r, err)
			return
		}
		s.respond.json(w, http.StatusAccepted, s.mailRequested("verification_sent"))
	})
}

// signedIn sets the cookie of a new session and answers with the user.
func (s *Server) signedIn(w http.ResponseWriter, r *http.Request, u accounts.User, ns accounts.NewSession) {
	ids, err := s.svc.Identities(r.Context(), u.ID)
	if err != nil {
		s.respond.jsonError(w, r, err)
		return
	}
	providers := make([]string, len(ids))
	for i, id := range ids {
		providers[i] = id.Provider
	}
	if err := s.sessions.start(w, r, ns); err != nil {
		s.respond.jsonError(w, r, err)
		return
	}
	s.respond.json(w, http.StatusOK, map[string]any{"user": toUserJSON(u, providers)})
}

func (s *Server) handleAPIVerify() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req tokenPasswordRequest
		if !s.decode(w, r, &req) {
			return
		}
		u, ns, err := s.svc.Verify(r.Context(), req.Token, req.Password, s.sessions.previous(r), s.client(r))
		if err != nil {
			s.respond.jsonError(w, r, err)
			return
		}
		s.signedIn(w, r, u, ns)
	})
}

func (s *Server) handleAPIResend() http.Handler {
	return s.handleAPIMailRequest(s.svc.ResendVerification, "verification_sent")
}

// handleAPIMailRequest serves the endpoints that take an address and may
// send it a mail; the answer is the same whatever the address.
func (s *Server) handleAPIMailRequest(request func(context.Context, string, accounts.Client) error, status string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req emailRequest
		if !s.decode(w, r, &req) {
			return
		}
		if err := request(r.Context(), req.Email, s.client(r)); err != nil {
			s.respond.jsonError(w, r, err)
			return
		}
		s.respond.json(w, http.StatusAccepted, s.mailRequested(status))
	})
}

// mailRequestedJSON answers a request that may mail a link. Like the page,
// it states the mail quota, the same for every address.
type mailRequestedJSON struct {
	Status              string `json:"status"`
	MailIntervalSeconds int    `json:"mail_interval_seconds"`
	MailPerHour         int    `json:"mail_per_hour"`
	Message             string `json:"message"`
}

func (s *Server) mailRequested(status string) mailRequestedJSON {
	interval := humantime.Duration(s.cfg.MailInterval)
	return mailRequestedJSON{
		Status:              status,
		MailIntervalSeconds: int(s.cfg.MailInterval / time.Second),
		MailPerHour:         s.cfg.MailPerHour,
		Message: "If the address can receive it, a link is on its way. We send at most one every " + interval +
			" to an address: if we sent you one in the last " + interval + ", use that one.",
	}
}

func (s *Server) handleAPILogin() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req credentialsRequest
		if !s.decode(w, r, &req) {
			return
		}
		u, ns, err := s.svc.Login(r.Context(), req.Email, req.Password, s.sessions.previous(r), s.client(r))
		if err != nil {
			s.respond.jsonError(w, r, err)
			return
		}
		s.signedIn(w, r, u, ns)
	})
}

func (s *Server) handleAPILogout() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.sessions.end(w, r); err != nil {
			s.respond.jsonError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func (s *Server) handleAPISession() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := s.apiAuth(w, r)
		if !ok {
			return
		}
		s.respond.json(w, http.StatusOK, sessionResponse{
			User:    toUserJSON(a.User, a.Providers),
			Session: sessionJSON{ID: a.Session.ID, CreatedAt: a.Session.CreatedAt, ExpiresAt: a.Session.ExpiresAt, LastSeenAt: a.Session.LastSeenAt},
		})
	})
}

func (s *Server) handleAPIForgot() http.Handler {
	return s.handleAPIMailRequest(s.svc.ForgotPassword, "reset_sent")
}

func (s *Server) handleAPIReset() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req tokenPasswordRequest
		if !s.decode(w, r, &req) {
			return
		}
		if err := s.svc.ResetPassword(r.Context(), req.Token, req.Password, s.client(r)); err != nil {
			s.respond.jsonError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func (s *Server) handleAPIChangePassword() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := s.apiAuth(w, r)
		if !ok {
			return
		}
		var req changePasswordRequest
		if !s.decode(w, r, &req) {
			return
		}
		if err := s.svc.ChangePassword(r.Context(), a, req.CurrentPassword, req.NewPassword, s.client(r)); err != nil {
			s.respond.jsonError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func (s *Server) handleAPISessions() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := s.apiAuth(w, r)
		if !ok {
			return
		}
		list, err := s.svc.Sessions(r.Context(), a)
		if err != nil {
			s.respond.jsonError(w, r, err)
			return
		}
		out := make([]sessionListItem, len(list))
		for i, x := range list {
			out[i] = sessionListItem{ID: x.ID, CreatedAt: x.CreatedAt, LastSeenAt: x.LastSeenAt, UserAgent: x.UserAgent, IP: x.IP, Current: x.ID == a.Session.ID}
		}
		s.respond.json(w, http.StatusOK, map[string]any{"sessions": out})
	})
}

func (s *Server) handleAPIRevoke() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := s.apiAuth(w, r)
		if !ok {
			return
		}
		if err := s.svc.RevokeSession(r.Context(), a, mux.Vars(r)["id"]); err != nil {
			s.respond.jsonError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func (s *Server) handleAPIRevokeOthers() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := s.apiAuth(w, r)
		if !ok {
			return
		}
		if err := s.svc.RevokeOtherSessions(r.Context(), a); err != nil {
			s.respond.jsonError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

type identityJSON struct {
	Provider string    `json:"provider"`
	Email    string    `json:"email"`
	LinkedAt time.Time `json:"linked_at"`
}

func (s *Server) handleAPIIdentities() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := s.apiAuth(w, r)
		if !ok {
			return
		}
		ids, err := s.svc.Identities(r.Context(), a.User.ID)
		if err != nil {
			s.respond.jsonError(w, r, err)
			return
		}
		out := make([]identityJSON, len(ids))
		for i, id := range ids {
			out[i] = identityJSON{Provider: id.Provider, Email: id.Email, LinkedAt: id.LinkedAt}
		}
		s.respond.json(w, http.StatusOK, map[string]any{"identities": out})
	})
}

func (s *Server) handleAPIDisconnect() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := s.apiAuth(w, r)
		if !ok {
			return
		}
		if err := s.svc.DisconnectIdentity(r.Context(), a, mux.Vars(r)["provider"]); err != nil {
			s.respond.jsonError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
