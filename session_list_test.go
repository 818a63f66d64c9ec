package main

// Black-box tests of password change, the session list and /auth/check.

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

// TestPasswordChange checks PW-5 and SE-5 for a signed-in password change
// through the API and the account page: the current password is required
// (a wrong one changes nothing), every other session ends, the current one
// stays, and a reset link requested before the change is void.
func TestPasswordChange(t *testing.T) {
	t.Parallel()
	g := sfStart(t, nil)
	for _, mode := range []string{"api", "form"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			a, email := testkit.NewUser(t, g, sfPassword)
			before := sfWantSession(t, a, http.StatusOK, "current session")
			b := sfLogin(t, g, email, sfPassword, "b")
			c := sfLogin(t, g, email, sfPassword, "c")
			n := len(g.SMTP.Mails(email))
			resetLink := sfPath(t, sfForgot(t, g, a, email).Link(t))

			change := func(current, next string) *testkit.Response {
				if mode == "api" {
					return a.PostJSON("/api/v1/password/change", map[string]string{"current_password": current, "new_password": next})
				}
				return a.PostForm("/account/password", url.Values{"current_password": {current}, "new_password": {next}})
			}

			// PW-5: the wrong current password changes nothing.
			r := change("not my password at all", sfNewPassword)
			if mode == "api" {
				testkit.WantAPIError(t, "change with wrong current password", r, http.StatusUnauthorized, "invalid_credentials")
			} else {
				sfWantPage(t, "change form with wrong current password", r, http.StatusUnauthorized, "Your current password is not correct.", `action="/account/password"`)
			}
			r = change(sfPassword, sfWeak)
			if mode == "api" {
				testkit.WantAPIError(t, "change to a weak password", r, http.StatusBadRequest, "weak_password")
			} else {
				sfWantPage(t, "change form with weak password", r, http.StatusBadRequest, "Use at least 12 characters.")
			}
			sfWantSession(t, b, http.StatusOK, "other session after refused changes")
			sfWantSession(t, c, http.StatusOK, "other session after refused changes")
			sfWantPage(t, "reset link after refused changes", g.Client(t).Get(resetLink), http.StatusOK, "Choose a new password")
			sfWantLogin(t, g, email, sfNewPassword, http.StatusUnauthorized)
			d := sfLogin(t, g, email, sfPassword, "d")

			r = change(sfPassword, sfNewPassword)
			if mode == "api" {
				if r.Status != http.StatusNoContent {
					t.Fatalf("change: got %d %s; want 204", r.Status, r.Body)
				}
			} else {
				loc := testkit.WantRedirect(t, "change form", r, http.StatusSeeOther, "/account?notice=password_changed")
				sfWantPage(t, "account after change", a.Get(loc), http.StatusOK, "Your password was changed. Your other sessions were signed out.")
			}

			// SE-5: this session stays, every other one ends.
			if after := sfWantSession(t, a, http.StatusOK, "current session after change"); after.SessionID != before.SessionID {
				t.Errorf("current session id changed from %s to %s", before.SessionID, after.SessionID)
			}
			for name, x := range map[string]*testkit.Client{"b": b, "c": c, "d": d} {
				sfWantSession(t, x, http.StatusUnauthorized, "other session "+name+" after change")
			}

			// The pending reset link is void.
			sfWantPage(t, "reset link after change", g.Client(t).Get(resetLink), http.StatusBadRequest, "invalid or has expired")
			token := strings.TrimPrefix(resetLink, "/password/reset?token=")
			testkit.WantAPIError(t, "reset with a link from before the change",
				g.Client(t).PostJSON("/api/v1/password/reset", map[string]string{"token": token, "password": "an attacker's passphrase 9"}),
				http.StatusBadRequest, "invalid_token")

			sfWantLogin(t, g, email, sfPassword, http.StatusUnauthorized)
			sfWantLogin(t, g, email, sfNewPassword, http.StatusOK)
			sfWaitMail(t, g, email, n, "password was changed")
		})
	}

	t.Run("signed out", func(t *testing.T) {
		t.Parallel()
		x := g.Client(t)
		testkit.WantAPIError(t, "API change without a session",
			x.PostJSON("/api/v1/password/change", map[string]string{"current_password": sfPassword, "new_password": sfNewPassword}),
			http.StatusUnauthorized, "unauthenticated")
		testkit.WantRedirect(t, "change form without a session",
			x.PostForm("/account/password", url.Values{"current_password": {sfPassword}, "new_password": {sfNewPassword}}), http.StatusSeeOther, "/login")
	})
}

// sfListItem is one entry of GET /api/v1/sessions.
type sfListItem struct {
	ID         string    `json:"id"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	UserAgent  string    `json:"user_agent"`
	IP         string    `json:"ip"`
	Current    bool      `json:"current"`
}

func sfListSessions(tb testing.TB, c *testkit.Client) map[string]sfListItem {
	tb.Helper()
	r := c.Get("/api/v1/sessions")
	if r.Status != http.StatusOK {
		tb.Fatalf("GET /api/v1/sessions: got %d %s; want 200", r.Status, r.Body)
	}
	var body struct {
		Sessions []sfListItem `json:"sessions"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		tb.Fatalf("sessions answer: %v\n%s", err, r.Body)
	}
	byUA := map[string]sfListItem{}
	for _, s := range body.Sessions {
		if _, dup := byUA[s.UserAgent]; dup {
			tb.Fatalf("two sessions with User-Agent %q: %s", s.UserAgent, r.Body)
		}
		byUA[s.UserAgent] = s
	}
	return byUA
}

// TestSessionList checks SE-6: users list their sessions and end one or all
// others, through the API and the account page; nobody ends another user's
// session.
func TestSessionList(t *testing.T) {
	t.Parallel()
	g := sfStart(t, nil)

	t.Run("api", func(t *testing.T) {
		t.Parallel()
		first, email := testkit.NewUser(t, g, sfPassword)
		a := sfLogin(t, g, email, sfPassword, "agent-a")
		b := sfLogin(t, g, email, sfPassword, "agent-b")
		c := sfLogin(t, g, email, sfPassword, "agent-c")
		other, _ := testkit.NewUser(t, g, sfPassword)
		otherID := sfWantSession(t, other, http.StatusOK, "other user").SessionID

		list := sfListSessions(t, a)
		if len(list) != 4 {
			t.Fatalf("sessions: got %d; want 4 (verify, a, b, c): %v", len(list), list)
		}
		for ua, want := range map[string]bool{"agent-a": true, "agent-b": false, "agent-c": false} {
			s, ok := list[ua]
			if !ok {
				t.Fatalf("no session with User-Agent %s: %v", ua, list)
			}
			if s.Current != want {
				t.Errorf("session %s: current %v; want %v", ua, s.Current, want)
			}
			if s.IP != "127.0.0.1" {
				t.Errorf("session %s: ip %q; want 127.0.0.1", ua, s.IP)
			}
			if !sfSessionIDRE.MatchString(s.ID) || s.CreatedAt.IsZero() || s.LastSeenAt.IsZero() {
				t.Errorf("session %s: got %+v; want a 22-char id and times", ua, s)
			}
		}
		for _, s := range list {
			if s.ID == otherID {
				t.Fatalf("another user's session is in the list")
			}
		}
		if got := sfWantSession(t, a, http.StatusOK, "a").SessionID; got != list["agent-a"].ID {
			t.Errorf("current session in list %s; /api/v1/session says %s", list["agent-a"].ID, got)
		}

		// End one.
		if r := a.SendJSON(http.MethodDelete, "/api/v1/sessions/"+list["agent-b"].ID, nil); r.Status != http.StatusNoContent {
			t.Fatalf("DELETE b's session: got %d %s; want 204", r.Status, r.Body)
		}
		sfWantSession(t, b, http.StatusUnauthorized, "b after DELETE")
		sfWantSession(t, a, http.StatusOK, "a after DELETE of b")
		sfWantSession(t, c, http.StatusOK, "c after DELETE of b")
		if _, ok := sfListSessions(t, a)["agent-b"]; ok {
			t.Errorf("b's session still listed after DELETE")
		}

		// Unknown ids and other users' sessions are not found.
		for what, id := range map[string]string{
			"unknown id":             base64.RawURLEncoding.EncodeToString(make([]byte, 16)),
			"garbage id":             "not-an-id",
			"already ended":          list["agent-b"].ID,
			"another user's session": otherID,
		} {
			r := a.SendJSON(http.MethodDelete, "/api/v1/sessions/"+id, nil)
			testkit.WantAPIError(t, "DELETE "+what, r, http.StatusNotFound, "not_found")
		}
		sfWantSession(t, other, http.StatusOK, "other user after a DELETE of their session id")

		// End all others.
		if r := a.SendJSON(http.MethodDelete, "/api/v1/sessions", nil); r.Status != http.StatusNoContent {
			t.Fatalf("DELETE /api/v1/sessions: got %d %s; want 204", r.Status, r.Body)
		}
		sfWantSession(t, a, http.StatusOK, "a after ending the others")
		sfWantSession(t, c, http.StatusUnauthorized, "c after ending the others")
		sfWantSession(t, first, http.StatusUnauthorized, "verify session after ending the others")
		sfWantSession(t, other, http.StatusOK, "other user after ending the others")
		if list := sfListSessions(t, a); len(list) != 1 || !list["agent-a"].Current {
			t.Errorf("after ending the others: got %v; want only the current session", list)
		}

		// Signed out, the list is refused.
		testkit.WantAPIError(t, "list without a session", g.Client(t).Get("/api/v1/sessions"), http.StatusUnauthorized, "unauthenticated")
	})

	t.Run("account page", func(t *testing.T) {
		t.Parallel()
		_, email := testkit.NewUser(t, g, sfPassword)
		const firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
		a := sfLogin(t, g, email, sfPassword, firefox)
		b := sfLogin(t, g, email, sfPassword, "agent-b")
		c := sfLogin(t, g, email, sfPassword, "agent-c")
		other, _ := testkit.NewUser(t, g, sfPassword)
		aID := sfWantSession(t, a, http.StatusOK, "a").SessionID
		bID := sfWantSession(t, b, http.StatusOK, "b").SessionID
		cID := sfWantSession(t, c, http.StatusOK, "c").SessionID
		otherID := sfWantSession(t, other, http.StatusOK, "other").SessionID
		revoke := func(id string) string { return "/account/sessions/" + id + "/revoke" }

		page := a.Get("/account")
		sfWantPage(t, "account page", page, http.StatusOK, email, "Active sessions", "This device",
			`action="`+revoke(bID)+`"`, `action="`+revoke(cID)+`"`, `action="/account/sessions/revoke-others"`)
		if strings.Contains(page.Text(), revoke(aID)) {
			t.Errorf("account page offers to revoke the current session")
		}
		if strings.Contains(page.Text(), otherID) {
			t.Errorf("account page shows another user's session")
		}

		loc := testkit.WantRedirect(t, "revoke form", a.PostForm(revoke(bID), url.Values{}), http.StatusSeeOther, "/account?notice=session_revoked")
		sfWantPage(t, "account after revoke", a.Get(loc), http.StatusOK, "That session was signed out.")
		sfWantSession(t, b, http.StatusUnauthorized, "b after revoke form")
		sfWantSession(t, c, http.StatusOK, "c after revoke of b")

		if r := a.PostForm(revoke(otherID), url.Values{}); r.Status != http.StatusNotFound {
			t.Errorf("revoke form with another user's session: got %d; want 404", r.Status)
		}
		sfWantSession(t, other, http.StatusOK, "other user after a revoke of their session id")

		loc = testkit.WantRedirect(t, "revoke-others form", a.PostForm("/account/sessions/revoke-others", url.Values{}), http.StatusSeeOther, "/account?notice=sessions_revoked")
		after := a.Get(loc)
		sfWantPage(t, "account after revoke-others", after, http.StatusOK, "All your other sessions were signed out.")
		if strings.Contains(after.Text(), revoke(cID)) {
			t.Errorf("account page still lists c after revoke-others")
		}
		sfWantSession(t, c, http.StatusUnauthorized, "c after revoke-others")
		sfWantSession(t, a, http.StatusOK, "a after revoke-others")

		// Signed out, the forms lead to the login page and end nothing.
		x := sfReplay(t, g, "garbage")
		testkit.WantRedirect(t, "revoke form signed out", x.PostForm(revoke(aID), url.Values{}), http.StatusSeeOther, "/login")
		testkit.WantRedirect(t, "account page signed out", x.Get("/account"), http.StatusSeeOther, "/login")
		sfWantSession(t, a, http.StatusOK, "a after a signed-out revoke")
	})
}

// TestSessionAuthCheck checks the forward-auth contract of /auth/check for
// the methods proxies send: 200 with the user's id and email for a valid
// session, 401 JSON otherwise.
func TestSessionAuthCheck(t *testing.T) {
	t.Parallel()
	g := sfStart(t, nil)
	c, email := testkit.NewUser(t, g, sfPassword)
	me := sfWantSession(t, c, http.StatusOK, "user")
	anon := g.Client(t)
	forged := sfReplay(t, g, "not-a-session")

	for _, method := range []string{http.MethodGet, http.MethodHead, http.MethodPost} {
		t.Run(method, func(t *testing.T) {
			req := c.NewRequest(method, "/auth/check", nil)
			// Proxies forward the guarded request's headers, even those of
			// a cross-site form post.
			req.Header.Set("X-Forwarded-Method", method)
			req.Header.Set("X-Forwarded-Uri", "/app/page")
			if method == http.MethodPost {
				req.Header.Set("Origin", "https://app.example")
				req.Header.Set("Sec-Fetch-Site", "cross-site")
			}
			r := c.Do(req)
			if r.Status != http.StatusOK {
				t.Fatalf("signed in: got %d %s; want 200", r.Status, r.Body)
			}
			if got := r.Header.Get("X-Auth-Request-User"); got != me.UserID || got == "" {
				t.Errorf("X-Auth-Request-User %q; want %q", got, me.UserID)
			}
			if got := r.Header.Get("X-Auth-Request-Email"); got != email {
				t.Errorf("X-Auth-Request-Email %q; want %q", got, email)
			}

			for who, x := range map[string]*testkit.Client{"no cookie": anon, "forged cookie": forged} {
				r := x.Do(x.NewRequest(method, "/auth/check", nil))
				if r.Status != http.StatusUnauthorized {
					t.Fatalf("%s: got %d; want 401", who, r.Status)
				}
				if r.Header.Get("X-Auth-Request-User") != "" || r.Header.Get("X-Auth-Request-Email") != "" {
					t.Errorf("%s: 401 carries X-Auth-Request-* headers", who)
				}
				if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
					t.Errorf("%s: Content-Type %q; want application/json", who, ct)
				}
				if method != http.MethodHead && r.ErrorCode() != "unauthenticated" {
					t.Errorf("%s: body %s; want error code unauthenticated", who, r.Body)
				}
			}
		})
	}
}
