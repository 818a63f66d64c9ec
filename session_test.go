package main

// Black-box tests of sessions and cookies (SE-1..4).

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

// TestSessionNewIDAtSignIn checks SE-1: every sign-in mints a new session id
// and ends the one the client held, and a cookie planted before sign-in
// never becomes authenticated.
func TestSessionNewIDAtSignIn(t *testing.T) {
	t.Parallel()
	g := sfStart(t, nil)

	login := map[string]func(tb testing.TB, c *testkit.Client, email string){
		"api": func(tb testing.TB, c *testkit.Client, email string) {
			tb.Helper()
			if r := c.Login(email, sfPassword); r.Status != http.StatusOK {
				tb.Fatalf("API login: got %d %s; want 200", r.Status, r.Body)
			}
		},
		"form": func(tb testing.TB, c *testkit.Client, email string) {
			tb.Helper()
			r := c.PostForm("/login", url.Values{"email": {email}, "password": {sfPassword}})
			testkit.WantRedirect(tb, "login form", r, http.StatusSeeOther, "/account")
		},
	}

	for mode, signIn := range login {
		t.Run(mode+"/login twice", func(t *testing.T) {
			t.Parallel()
			_, email := testkit.NewUser(t, g, sfPassword)
			c := g.Client(t)
			signIn(t, c, email)
			first, ck1 := sfWantSession(t, c, http.StatusOK, "first sign-in"), sfCookie(t, c)
			signIn(t, c, email)
			second, ck2 := sfWantSession(t, c, http.StatusOK, "second sign-in"), sfCookie(t, c)
			if first.SessionID == second.SessionID {
				t.Errorf("session id after second sign-in: got the same %s; want a new one", first.SessionID)
			}
			if ck1 == ck2 {
				t.Errorf("cookie after second sign-in: got the same value; want a new one")
			}
			sfWantSession(t, sfReplay(t, g, ck1), http.StatusUnauthorized, "cookie of the first sign-in")
		})
	}

	plants := map[string]func(tb testing.TB) string{
		"arbitrary": func(testing.TB) string { return "attacker-chosen-value" },
		"unsigned session shape": func(testing.TB) string {
			return base64.RawURLEncoding.EncodeToString(make([]byte, 16)) + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 32))
		},
		"logged-out cookie": func(tb testing.TB) string {
			a, _ := testkit.NewUser(tb, g, sfPassword)
			v := sfCookie(tb, a)
			if r := a.PostJSON("/api/v1/logout", nil); r.Status != http.StatusNoContent {
				tb.Fatalf("attacker logout: got %d; want 204", r.Status)
			}
			return v
		},
		"attacker's live cookie": func(tb testing.TB) string {
			a, _ := testkit.NewUser(tb, g, sfPassword)
			return sfCookie(tb, a)
		},
	}
	for mode, signIn := range login {
		for kind, plant := range plants {
			t.Run(mode+"/planted "+kind, func(t *testing.T) {
				t.Parallel()
				_, email := testkit.NewUser(t, g, sfPassword)
				planted := plant(t)
				c := sfReplay(t, g, planted)
				signIn(t, c, email)
				if got := sfCookie(t, c); got == planted {
					t.Fatalf("after sign-in the client still holds the planted cookie")
				}
				if info := sfWantSession(t, c, http.StatusOK, "victim after sign-in"); info.Email != email {
					t.Fatalf("victim signed in as %q; want %s", info.Email, email)
				}
				sfWantSession(t, sfReplay(t, g, planted), http.StatusUnauthorized, "planted cookie after the victim's sign-in")
			})
		}
	}

	t.Run("planted before verify", func(t *testing.T) {
		t.Parallel()
		attacker, attackerEmail := testkit.NewUser(t, g, sfPassword)
		planted := sfCookie(t, attacker)
		email := testkit.Email(t)
		m := g.Client(t).SignUp(g, email, sfPassword)
		c := sfReplay(t, g, planted)
		if r := c.Verify(m.Token(t), sfPassword); r.Status != http.StatusOK {
			t.Fatalf("verify: got %d %s; want 200", r.Status, r.Body)
		}
		if sfCookie(t, c) == planted {
			t.Fatalf("after verification the client still holds the planted cookie")
		}
		if info := sfWantSession(t, c, http.StatusOK, "victim after verify"); info.Email != email {
			t.Fatalf("victim signed in as %q; want %s", info.Email, email)
		}
		// Verification does not end the session the browser presented (the
		// attacker's own); what matters is that it never becomes the victim's.
		if status, info := sfSession(t, sfReplay(t, g, planted)); status == http.StatusOK && info.Email != attackerEmail {
			t.Fatalf("planted cookie after the victim's verification: signed in as %q; want the attacker %s or 401", info.Email, attackerEmail)
		}
	})
}

// sfSetCookie returns the one Set-Cookie of r named name, parsed.
func sfSetCookie(tb testing.TB, what string, r *testkit.Response, name string) *http.Cookie {
	tb.Helper()
	var found *http.Cookie
	for _, line := range r.Header.Values("Set-Cookie") {
		ck, err := http.ParseSetCookie(line)
		if err != nil {
			tb.Fatalf("%s: unparsable Set-Cookie %q: %v", what, line, err)
		}
		if ck.Name == name {
			if found != nil {
				tb.Fatalf("%s: two Set-Cookie headers for %s", what, name)
			}
			found = ck
		}
	}
	if found == nil {
		tb.Fatalf("%s: no Set-Cookie for %s; got %q", what, name, r.Header.Values("Set-Cookie"))
	}
	return found
}

// sfWithCookie sends a request carrying only the given cookie, as a
// same-origin fetch would.
func sfWithCookie(tb testing.TB, g *testkit.Gateway, method, path string, ck *http.Cookie) *testkit.Response {
	tb.Helper()
	c := g.Client(tb)
	req := c.NewRequest(method, path, nil)
	req.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return c.Do(req)
}

// TestSessionCookieAttributes checks SE-2 from the raw Set-Cookie headers:
// HttpOnly, SameSite=Lax, Path=/, Secure and the __Host- prefix on HTTPS,
// the configured Domain, a 128-bit session id, and a signature that
// refuses a tampered cookie.
func TestSessionCookieAttributes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		env        func(addr string) map[string]string
		wantName   string
		wantSecure bool
		wantDomain string
	}{
		{name: "plain HTTP", env: func(string) map[string]string { return nil }, wantName: "gatehouse"},
		{
			name: "HTTPS public URL",
			env: func(addr string) map[string]string {
				return map[string]string{"GATEHOUSE_SERVER_PUBLIC_URL": "https://" + addr}
			},
			wantName: "__Host-gatehouse", wantSecure: true,
		},
		{
			name: "cookie domain",
			env: func(string) map[string]string {
				return map[string]string{"GATEHOUSE_SESSION_COOKIE_DOMAIN": "example.com"}
			},
			wantName: "gatehouse", wantDomain: "example.com",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr := testkit.FreeAddr(t)
			g := testkit.Start(t, run, testkit.StartSMTP(t), testkit.Options{Addr: addr, Env: tt.env(addr)})
			testkit.NoServerErrors(t, g)

			email := testkit.Email(t)
			c := g.Client(t)
			m := c.SignUp(g, email, sfPassword)
			verified := c.Verify(m.Token(t), sfPassword)
			if verified.Status != http.StatusOK {
				t.Fatalf("verify: got %d %s; want 200", verified.Status, verified.Body)
			}
			loggedIn := g.Client(t).Login(email, sfPassword)
			if loggedIn.Status != http.StatusOK {
				t.Fatalf("login: got %d %s; want 200", loggedIn.Status, loggedIn.Body)
			}
			var ids []string
			for what, r := range map[string]*testkit.Response{"verify": verified, "login": loggedIn} {
				ck := sfSetCookie(t, what, r, tt.wantName)
				if !ck.HttpOnly {
					t.Errorf("%s cookie: not HttpOnly", what)
				}
				if ck.SameSite != http.SameSiteLaxMode {
					t.Errorf("%s cookie: SameSite %v; want Lax", what, ck.SameSite)
				}
				if ck.Path != "/" {
					t.Errorf("%s cookie: Path %q; want /", what, ck.Path)
				}
				if ck.Secure != tt.wantSecure {
					t.Errorf("%s cookie: Secure %v; want %v", what, ck.Secure, tt.wantSecure)
				}
				if got := strings.TrimPrefix(ck.Domain, "."); got != tt.wantDomain {
					t.Errorf("%s cookie: Domain %q; want %q", what, ck.Domain, tt.wantDomain)
				}

				// The cookie names a session whose public id carries 128 bits.
				s := sfWithCookie(t, g, http.MethodGet, "/api/v1/session", ck)
				if s.Status != http.StatusOK {
					t.Fatalf("%s cookie: GET /api/v1/session got %d; want 200", what, s.Status)
				}
				id, _ := s.JSON(t)["session"].(map[string]any)["id"].(string)
				if !sfSessionIDRE.MatchString(id) {
					t.Errorf("%s session id %q: want 22 base64url characters (128 bits)", what, id)
				}
				ids = append(ids, id)

				// One flipped character is refused.
				// (Positions inside the value, never its last base64 group,
				// whose spare bits a decoder may ignore.)
				for _, i := range []int{5, len(ck.Value) / 2} {
					b := []byte(ck.Value)
					if b[i] == 'A' {
						b[i] = 'B'
					} else {
						b[i] = 'A'
					}
					tampered := &http.Cookie{Name: ck.Name, Value: string(b)}
					if s := sfWithCookie(t, g, http.MethodGet, "/api/v1/session", tampered); s.Status != http.StatusUnauthorized {
						t.Errorf("%s cookie with char %d flipped: got %d; want 401", what, i, s.Status)
					}
				}
			}
			if ids[0] == ids[1] {
				t.Errorf("two sign-ins share session id %s", ids[0])
			}

			// Logout clears the cookie with the same attributes, so that the
			// browser drops it.
			ck := sfSetCookie(t, "login", loggedIn, tt.wantName)
			out := sfWithCookie(t, g, http.MethodPost, "/api/v1/logout", ck)
			if out.Status != http.StatusNoContent {
				t.Fatalf("logout: got %d; want 204", out.Status)
			}
			cleared := sfSetCookie(t, "logout", out, tt.wantName)
			if cleared.MaxAge >= 0 && (cleared.Expires.IsZero() || cleared.Expires.After(time.Now())) {
				t.Errorf("logout cookie: MaxAge %d, Expires %v; want it expired", cleared.MaxAge, cleared.Expires)
			}
			if cleared.Path != "/" || cleared.Secure != tt.wantSecure || strings.TrimPrefix(cleared.Domain, ".") != tt.wantDomain {
				t.Errorf("logout cookie: Path %q Secure %v Domain %q; want the session cookie's", cleared.Path, cleared.Secure, cleared.Domain)
			}
			if s := sfWithCookie(t, g, http.MethodGet, "/api/v1/session", ck); s.Status != http.StatusUnauthorized {
				t.Errorf("cookie after logout: got %d; want 401", s.Status)
			}
		})
	}
}

// TestSessionLogoutEndsServerSide checks SE-3: a cookie copied before logout
// is refused afterwards everywhere, on the same instance, within the
// session cache's lifetime.
func TestSessionLogoutEndsServerSide(t *testing.T) {
	t.Parallel()
	g := sfStart(t, nil)
	for _, mode := range []string{"api", "form"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			c, _ := testkit.NewUser(t, g, sfPassword)
			copied := sfCookie(t, c)
			thief := sfReplay(t, g, copied)
			// The copy works before logout (and is now in the session cache).
			sfWantSession(t, thief, http.StatusOK, "copied cookie before logout")
			if r := thief.Get("/auth/check"); r.Status != http.StatusOK {
				t.Fatalf("auth check with copied cookie before logout: got %d; want 200", r.Status)
			}

			if mode == "api" {
				if r := c.PostJSON("/api/v1/logout", nil); r.Status != http.StatusNoContent {
					t.Fatalf("logout: got %d; want 204", r.Status)
				}
			} else {
				testkit.WantRedirect(t, "logout form", c.PostForm("/logout", url.Values{}), http.StatusSeeOther, "/login")
			}

			sfWantSession(t, c, http.StatusUnauthorized, "client after its logout")
			if c.Cookie(testkit.CookieName) != nil {
				t.Errorf("client still holds a session cookie after logout")
			}
			sfWantSession(t, thief, http.StatusUnauthorized, "copied cookie after logout")
			if r := thief.Get("/auth/check"); r.Status != http.StatusUnauthorized {
				t.Errorf("auth check with copied cookie after logout: got %d; want 401", r.Status)
			}
			testkit.WantRedirect(t, "account page with copied cookie after logout", thief.Get("/account"), http.StatusSeeOther, "/login")
			testkit.WantRedirect(t, "account page with copied cookie after logout", sfReplay(t, g, copied).Get("/account"), http.StatusSeeOther, "/login")
		})
	}
}

// TestSessionTimeouts checks SE-4: the idle and absolute timeouts are
// enforced by the server. A session used every 0.5 s outlives the 2 s idle
// timeout but not the 4 s absolute one; an unused session ends after 2 s.
// The gateway's clock is moved, not waited for. It runs with the default
// session cache and with the cache off.
func TestSessionTimeouts(t *testing.T) {
	t.Parallel()
	for _, cache := range []string{"default cache", "cache off"} {
		t.Run(cache, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{
				"GATEHOUSE_SESSION_IDLE_TIMEOUT":     "2s",
				"GATEHOUSE_SESSION_ABSOLUTE_TIMEOUT": "4s",
			}
			if cache == "cache off" {
				env["GATEHOUSE_SESSION_CACHE_TTL"] = "0s"
			}
			g, clock := sfStartClocked(t, env)
			_, email := testkit.NewUser(t, g, sfPassword)
			// The cookies are replayed without their Max-Age, so that only
			// the server can end the sessions.
			used := sfReplay(t, g, sfCookie(t, sfLogin(t, g, email, sfPassword, "used")))
			idle := sfReplay(t, g, sfCookie(t, sfLogin(t, g, email, sfPassword, "idle")))
			sfWantSession(t, used, http.StatusOK, "busy session at once")
			sfWantSession(t, idle, http.StatusOK, "idle session at once")
			for step := 1; step <= 7; step++ { // 0.5 s to 3.5 s after sign-in
				clock.Advance(500 * time.Millisecond)
				sfWantSession(t, used, http.StatusOK, fmt.Sprintf("session used every 0.5 s, %.1f s after sign-in", float64(step)/2))
				if step == 5 {
					sfWantSession(t, idle, http.StatusUnauthorized, "session unused for 2.5 s (idle timeout 2 s)")
				}
			}
			clock.Advance(500 * time.Millisecond)
			sfWantSession(t, used, http.StatusUnauthorized, "busy session 4 s after sign-in (absolute timeout 4 s)")
			if r := used.Get("/auth/check"); r.Status != http.StatusUnauthorized {
				t.Errorf("auth check with the expired session: got %d; want 401", r.Status)
			}
		})
	}
}
