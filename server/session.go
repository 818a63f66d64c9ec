package server

import (
	"context"
	"errors"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"

	"github.com/gatehouse/gatehouse/accounts"
)

// sessionStore is a gorilla/sessions Store whose sessions live in the
// database, not in the cookie (a cookie-only session cannot be revoked).
// The cookie carries only the session token, "<id>.<secret>", signed with
// HMAC so that forged or truncated cookies are refused without a database
// round trip. Session.ID is that token; Save with MaxAge < 0 ends the
// session server-side and clears the cookie.
type sessionStore struct {
	name    string
	codecs  []securecookie.Codec
	options sessions.Options
	svc     *accounts.Service
	// verified remembers cookie values whose signature was checked, so
	// that a busy session's checks skip the HMAC. An identical value
	// verifies identically; the session itself is still checked each time.
	verified struct {
		sync.RWMutex
		m map[string]string // cookie value → token
	}
}

// maxVerifiedCookies bounds the verified-cookie memo; past it, it starts over.
const maxVerifiedCookies = 50_000

var _ sessions.Store = (*sessionStore)(nil)

func newSessionStore(name string, hashKey []byte, opts sessions.Options, svc *accounts.Service) *sessionStore {
	sc := securecookie.New(hashKey, nil)
	sc.SetSerializer(securecookie.NopEncoder{})
	sc.MaxAge(opts.MaxAge)
	return &sessionStore{name: name, codecs: []securecookie.Codec{sc}, options: opts, svc: svc}
}

// Get implements sessions.Store: one session per request, cached in the
// request's registry.
func (st *sessionStore) Get(r *http.Request, name string) (*sessions.Session, error) {
	return sessions.GetRegistry(r).Get(st, name)
}

// New implements sessions.Store. It returns the session named by the
// request's cookie, with ID set to the (not yet checked) token, or a new
// empty session. A cookie that fails the signature check is ignored.
func (st *sessionStore) New(r *http.Request, name string) (*sessions.Session, error) {
	s := sessions.NewSession(st, name)
	opts := st.options
	s.Options = &opts
	s.IsNew = true
	if token := st.token(r); token != "" {
		s.ID = token
		s.IsNew = false
	}
	return s, nil
}

// Save implements sessions.Store. The server-side record is created by the
// sign-in that minted the token; Save writes the cookie, or, for a session
// being deleted (MaxAge < 0), ends the record and expires the cookie.
func (st *sessionStore) Save(r *http.Request, w http.ResponseWriter, s *sessions.Session) error {
	if s.Options.MaxAge < 0 {
		if s.ID != "" {
			if err := st.svc.Logout(r.Context(), s.ID); err != nil {
				return err
			}
		}
		http.SetCookie(w, sessions.NewCookie(s.Name(), "", s.Options))
		return nil
	}
	encoded, err := securecookie.EncodeMulti(s.Name(), []byte(s.ID), st.codecs...)
	if err != nil {
		return err
	}
	http.SetCookie(w, sessions.NewCookie(s.Name(), encoded, s.Options))
	return nil
}

// token returns the verified-signature token of the request's cookie, or "".
func (st *sessionStore) token(r *http.Request) string {
	c, err := r.Cookie(st.name)
	if err != nil || c.Value == "" || len(c.Value) > 1024 {
		return ""
	}
	st.verified.RLock()
	token, ok := st.verified.m[c.Value]
	st.verified.RUnlock()
	if ok {
		return token
	}
	var raw []byte
	if err := securecookie.DecodeMulti(st.name, c.Value, &raw, st.codecs...); err != nil {
		return ""
	}
	token = string(raw)
	st.verified.Lock()
	if st.verified.m == nil || len(st.verified.m) >= maxVerifiedCookies {
		st.verified.m = make(map[string]string)
	}
	st.verified.m[c.Value] = token
	st.verified.Unlock()
	return token
}

// auth checks the request's session. It returns nil (and no error) when
// there is none or it is no longer valid; an error only when the check
// itself failed.
func (st *sessionStore) auth(r *http.Request) (*accounts.Auth, error) {
	token := st.token(r)
	if token == "" {
		return nil, nil
	}
	a, err := st.svc.Authenticate(r.Context(), token)
	if errors.Is(err, accounts.ErrUnauthenticated) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// start sets the cookie of a session that a sign-in just created.
func (st *sessionStore) start(w http.ResponseWriter, r *http.Request, ns accounts.NewSession) error {
	s, err := st.Get(r, st.name)
	if err != nil {
		return err
	}
	s.ID = ns.Token
	s.Options.MaxAge = int(math.Ceil(time.Until(ns.Session.ExpiresAt).Seconds()))
	return s.Save(r, w)
}

// end ends the request's session server-side and clears the cookie.
func (st *sessionStore) end(w http.ResponseWriter, r *http.Request) error {
	s, err := st.Get(r, st.name)
	if err != nil {
		return err
	}
	s.Options.MaxAge = -1
	return s.Save(r, w)
}

// previous is the token the client holds, ended at the next sign-in.
func (st *sessionStore) previous(r *http.Request) string { return st.token(r) }

func authFrom(ctx context.Context) (accounts.Auth, bool) {
	a, ok := ctx.Value(ctxAuth).(accounts.Auth)
	return a, ok
}
