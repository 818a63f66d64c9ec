package main

// Black-box tests of mailed tokens (TK-1, TK-3..6), sessions and cookies
// (SE-1..6), password reset and change (PW-5, issue 2 step 5) and the
// forward-auth contract of /auth/check. Every gateway runs the real wiring
// with a capturing SMTP server; tokens come from the captured mails only.
//
// Package-level helpers of this file start with "sf" (sessions flow) so that
// they cannot clash with the other test files of package main.

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

const (
	sfPassword    = "correct horse battery staple 1"
	sfNewPassword = "a completely different passphrase 2"
	sfWeak        = "short"
)

var (
	sfTokenRE     = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
	sfSessionIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`)
)

// sfStart runs a gateway and fails the test if it ever answered 5xx.
func sfStart(tb testing.TB, env map[string]string) *testkit.Gateway {
	tb.Helper()
	g := start(tb, env)
	testkit.NoServerErrors(tb, g)
	return g
}

// sfStartClocked is sfStart with a stopped clock that the test moves.
func sfStartClocked(tb testing.TB, env map[string]string) (*testkit.Gateway, *testkit.Clock) {
	tb.Helper()
	clock := testkit.NewClock()
	g := testkit.Start(tb, runAt(clock), testkit.StartSMTP(tb), testkit.Options{Env: env})
	testkit.NoServerErrors(tb, g)
	return g, clock
}

// sfSessionInfo is what /api/v1/session says about the caller.
type sfSessionInfo struct {
	UserID    string
	Email     string
	SessionID string
}

// sfSession asks /api/v1/session who c is; it returns the status and, on
// 200, the answer.
func sfSession(tb testing.TB, c *testkit.Client) (int, sfSessionInfo) {
	tb.Helper()
	r := c.Get("/api/v1/session")
	if r.Status != http.StatusOK {
		return r.Status, sfSessionInfo{}
	}
	var body struct {
		User struct {
			ID    string `json:"id"`
			Email string `json:"email"`
		} `json:"user"`
		Session struct {
			ID string `json:"id"`
		} `json:"session"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		tb.Fatalf("session answer is not JSON: %v\n%s", err, r.Body)
	}
	return r.Status, sfSessionInfo{UserID: body.User.ID, Email: body.User.Email, SessionID: body.Session.ID}
}

// sfWantSession checks the status of /api/v1/session for c.
func sfWantSession(tb testing.TB, c *testkit.Client, want int, who string) sfSessionInfo {
	tb.Helper()
	got, info := sfSession(tb, c)
	if got != want {
		tb.Fatalf("%s: GET /api/v1/session: got %d; want %d", who, got, want)
	}
	return info
}

// sfCookie returns the value of c's session cookie.
func sfCookie(tb testing.TB, c *testkit.Client) string {
	tb.Helper()
	ck := c.Cookie(testkit.CookieName)
	if ck == nil || ck.Value == "" {
		tb.Fatalf("client has no %s cookie", testkit.CookieName)
	}
	return ck.Value
}

// sfReplay returns a fresh client that presents a copied cookie value.
func sfReplay(tb testing.TB, g *testkit.Gateway, value string) *testkit.Client {
	tb.Helper()
	c := g.Client(tb)
	c.SetCookie(&http.Cookie{Name: testkit.CookieName, Value: value})
	return c
}

// sfLogin signs in a new client with the given User-Agent.
func sfLogin(tb testing.TB, g *testkit.Gateway, email, password, userAgent string) *testkit.Client {
	tb.Helper()
	c := g.Client(tb)
	if userAgent != "" {
		c.Header.Set("User-Agent", userAgent)
	}
	if r := c.Login(email, password); r.Status != http.StatusOK {
		tb.Fatalf("login %s: got %d; want 200\n%s", email, r.Status, r.Body)
	}
	return c
}

// sfWantLogin checks what a password sign-in of email answers.
func sfWantLogin(tb testing.TB, g *testkit.Gateway, email, password string, want int) {
	tb.Helper()
	if r := g.Client(tb).Login(email, password); r.Status != want {
		tb.Fatalf("login with %q: got %d %s; want %d", password, r.Status, r.Body, want)
	}
}

// sfWaitMail waits for a mail to `to` beyond the first `after` whose subject
// contains subject.
func sfWaitMail(tb testing.TB, g *testkit.Gateway, to string, after int, subject string) testkit.Mail {
	tb.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ms := g.SMTP.Mails(to)
		for _, m := range ms[min(after, len(ms)):] {
			if strings.Contains(strings.ToLower(m.Subject), strings.ToLower(subject)) {
				return m
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("no mail to %s with subject %q after the first %d within 15s (got %d)", to, subject, after, len(ms))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sfForgot asks for a reset link through the API and returns the mail.
func sfForgot(tb testing.TB, g *testkit.Gateway, c *testkit.Client, email string) testkit.Mail {
	tb.Helper()
	n := len(g.SMTP.Mails(email))
	if r := c.PostJSON("/api/v1/password/forgot", map[string]string{"email": email}); r.Status != http.StatusAccepted {
		tb.Fatalf("forgot: got %d %s; want 202", r.Status, r.Body)
	}
	return sfWaitMail(tb, g, email, n, "reset")
}

// sfCheckTokenFormat checks that a mailed token carries 256 random bits.
func sfCheckTokenFormat(tb testing.TB, token string) {
	tb.Helper()
	if !sfTokenRE.MatchString(token) {
		tb.Fatalf("token %q: got %d chars; want 43 base64url characters (256 bits)", token, len(token))
	}
	if b, err := base64.RawURLEncoding.DecodeString(token); err != nil || len(b) != 32 {
		tb.Fatalf("token decodes to %d bytes (err %v); want 32", len(b), err)
	}
}

// sfWantPage checks a page's status and that its body contains every snippet.
func sfWantPage(tb testing.TB, what string, r *testkit.Response, status int, snippets ...string) {
	tb.Helper()
	if r.Status != status {
		tb.Fatalf("%s: got status %d; want %d\n%s", what, r.Status, status, r.Body)
	}
	for _, s := range snippets {
		if !strings.Contains(r.Text(), s) {
			tb.Fatalf("%s: body does not contain %q\n%s", what, s, r.Body)
		}
	}
}

// sfPath returns the path and query of a mailed link.
func sfPath(tb testing.TB, link string) string {
	tb.Helper()
	u, err := url.Parse(link)
	if err != nil {
		tb.Fatalf("parse link: %v", err)
	}
	return u.RequestURI()
}

// TestPasswordResetFlow is issue 2 step 5, through the pages and the API:
// forgot → mail → the link's page (not consumed by GETs) → a weak password
// is refused without burning the link → new password → every session ends
// → only the new password works → a "password changed" mail follows.
func TestPasswordResetFlow(t *testing.T) {
	t.Parallel()
	g := sfStart(t, nil)
	for _, mode := range []string{"api", "page"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			a, email := testkit.NewUser(t, g, sfPassword)
			b := sfLogin(t, g, email, sfPassword, "second device")
			n := len(g.SMTP.Mails(email))

			if mode == "api" {
				r := a.PostJSON("/api/v1/password/forgot", map[string]string{"email": email})
				if r.Status != http.StatusAccepted || r.JSON(t)["status"] != "reset_sent" {
					t.Fatalf("forgot: got %d %s; want 202 reset_sent", r.Status, r.Body)
				}
			} else {
				sfWantPage(t, "GET /password/forgot", a.Get("/password/forgot"), http.StatusOK, `action="/password/forgot"`)
				r := a.PostForm("/password/forgot", url.Values{"email": {email}})
				sfWantPage(t, "POST /password/forgot", r, http.StatusOK, "Check your inbox")
			}

			m := sfWaitMail(t, g, email, n, "reset")
			link := m.Link(t)
			if prefix := g.URL + "/password/reset?token="; !strings.HasPrefix(link, prefix) {
				t.Fatalf("reset link %s: want prefix %s", link, prefix)
			}
			if m.HTML == "" || !strings.Contains(m.HTML, link) {
				t.Fatalf("reset mail's HTML part lacks the link %s:\n%s", link, m.HTML)
			}
			token := m.Token(t)
			sfCheckTokenFormat(t, token)

			// Mail scanners prefetch links: GET shows the form and consumes nothing.
			for i := range 2 {
				r := g.Client(t).Get(sfPath(t, link))
				sfWantPage(t, "GET reset link", r, http.StatusOK, "Choose a new password", `name="token" value="`+token+`"`)
				if got := r.Header.Get("Referrer-Policy"); got != "no-referrer" {
					t.Errorf("GET #%d reset page: Referrer-Policy %q; want no-referrer", i+1, got)
				}
				if got := r.Header.Get("Cache-Control"); !strings.Contains(got, "no-store") {
					t.Errorf("GET #%d reset page: Cache-Control %q; want no-store", i+1, got)
				}
			}

			// A weak password is refused and does not burn the link.
			if mode == "api" {
				r := a.PostJSON("/api/v1/password/reset", map[string]string{"token": token, "password": sfWeak})
				testkit.WantAPIError(t, "reset with weak password", r, http.StatusBadRequest, "weak_password")
			} else {
				r := a.PostForm("/password/reset", url.Values{"token": {token}, "password": {sfWeak}})
				sfWantPage(t, "reset form with weak password", r, http.StatusBadRequest, "Use at least 12 characters.", `name="token" value="`+token+`"`)
			}
			sfWantSession(t, a, http.StatusOK, "first session after refused reset")
			sfWantSession(t, b, http.StatusOK, "second session after refused reset")

			if mode == "api" {
				r := a.PostJSON("/api/v1/password/reset", map[string]string{"token": token, "password": sfNewPassword})
				if r.Status != http.StatusNoContent {
					t.Fatalf("reset: got %d %s; want 204", r.Status, r.Body)
				}
			} else {
				r := a.PostForm("/password/reset", url.Values{"token": {token}, "password": {sfNewPassword}})
				loc := testkit.WantRedirect(t, "reset form", r, http.StatusSeeOther, "/login")
				sfWantPage(t, "login page after reset", g.Client(t).Get(loc), http.StatusOK, "Your password was changed. Sign in with the new one.")
			}

			// SE-5: every session of the user ended.
			sfWantSession(t, a, http.StatusUnauthorized, "first session after reset")
			sfWantSession(t, b, http.StatusUnauthorized, "second session after reset")

			// The link worked once.
			r := a.PostJSON("/api/v1/password/reset", map[string]string{"token": token, "password": "yet another passphrase 3"})
			testkit.WantAPIError(t, "second use of the reset link", r, http.StatusBadRequest, "invalid_token")
			sfWantPage(t, "GET used reset link", g.Client(t).Get(sfPath(t, link)), http.StatusBadRequest, "invalid or has expired")

			sfWantLogin(t, g, email, sfPassword, http.StatusUnauthorized)
			sfWantLogin(t, g, email, sfNewPassword, http.StatusOK)

			changed := sfWaitMail(t, g, email, n, "password was changed")
			if changed.Text == "" || changed.HTML == "" {
				t.Errorf("password-changed mail: want text and HTML parts; got text %d bytes, HTML %d bytes", len(changed.Text), len(changed.HTML))
			}
		})
	}
}

// TestTokenNotStoredRaw checks TK-1: mailed tokens carry 256 bits, and
// neither a raw token nor its link is anywhere in the database while both a
// verification and a reset are pending; the tokens are stored as SHA-256.
func TestTokenNotStoredRaw(t *testing.T) {
	t.Parallel()
	db := testkit.StartDB(t)
	g := testkit.Start(t, run, testkit.StartSMTP(t), testkit.Options{MongoURI: db.URI})
	testkit.NoServerErrors(t, g)

	c, email := testkit.NewUser(t, g, sfPassword)
	reset := sfForgot(t, g, c, email)
	verify := g.Client(t).SignUp(g, testkit.Email(t), sfPassword)
	cookie := sfCookie(t, c)

	docs := db.Documents(t, g.Database)
	if len(docs["tokens"]) == 0 {
		t.Fatalf("database %s: no documents in the tokens collection (collections found: %d)", g.Database, len(docs))
	}
	for _, m := range []testkit.Mail{reset, verify} {
		link, token := m.Link(t), m.Token(t)
		sfCheckTokenFormat(t, token)
		raw, _ := base64.RawURLEncoding.DecodeString(token)
		sum := sha256.Sum256([]byte(token))

		// The positive control: the dump is of the right database, and the
		// token is stored as its hash.
		hashed := false
		for _, d := range docs["tokens"] {
			hashed = hashed || bytes.Contains(d, []byte(hex.EncodeToString(sum[:])))
		}
		if !hashed {
			t.Errorf("%q token: its SHA-256 is not in the tokens collection", m.Subject)
		}

		secrets := map[string][]byte{
			"raw token":            []byte(token),
			"link":                 []byte(link),
			"token bytes":          raw,
			"token bytes (hex)":    []byte(hex.EncodeToString(raw)),
			"token bytes (base64)": []byte(base64.RawStdEncoding.EncodeToString(raw)),
			"session cookie value": []byte(cookie),
		}
		for coll, list := range docs {
			for i, d := range list {
				for what, s := range secrets {
					if bytes.Contains(d, s) {
						t.Errorf("%q mail: %s found in %s document #%d: %s", m.Subject, what, coll, i, d)
					}
				}
			}
		}
	}
}

// TestTokenExpiry checks TK-3: links past their TTL are refused by the code
// (the sweep runs only every 10 minutes), on the pages and the API.
func TestTokenExpiry(t *testing.T) {
	t.Parallel()
	g, clock := sfStartClocked(t, nil) // tokens.verify_ttl 24h, reset_ttl 1h
	c, email := testkit.NewUser(t, g, sfPassword)
	pending := testkit.Email(t)
	vm := g.Client(t).SignUp(g, pending, sfPassword)
	rm := sfForgot(t, g, c, email)
	vt, rt := vm.Token(t), rm.Token(t)

	// Live until the very end of their lifetime.
	clock.Advance(time.Hour - time.Millisecond)
	sfWantPage(t, "GET reset link a millisecond before it expires", g.Client(t).Get("/password/reset?token="+rt), http.StatusOK, "Choose a new password")
	clock.Advance(time.Millisecond)
	sfWantPage(t, "GET reset link when it expires", g.Client(t).Get("/password/reset?token="+rt), http.StatusBadRequest, "invalid or has expired")
	clock.Advance(23*time.Hour - time.Millisecond)
	sfWantPage(t, "GET verify link a millisecond before it expires", g.Client(t).Get("/verify?token="+vt), http.StatusOK, "Confirm your email address")
	clock.Advance(time.Millisecond)

	x := g.Client(t)
	sfWantPage(t, "GET expired verify link", x.Get("/verify?token="+vt), http.StatusBadRequest, "invalid or has expired")
	testkit.WantAPIError(t, "verify with expired token", x.Verify(vt, sfPassword), http.StatusBadRequest, "invalid_token")
	sfWantPage(t, "GET expired reset link", x.Get("/password/reset?token="+rt), http.StatusBadRequest, "invalid or has expired")
	testkit.WantAPIError(t, "API reset with expired token",
		x.PostJSON("/api/v1/password/reset", map[string]string{"token": rt, "password": sfNewPassword}),
		http.StatusBadRequest, "invalid_token")
	sfWantPage(t, "reset form with expired token",
		x.PostForm("/password/reset", url.Values{"token": {rt}, "password": {sfNewPassword}}),
		http.StatusBadRequest, "invalid or has expired")

	// Nothing changed.
	sfWantSession(t, c, http.StatusOK, "session of the user whose reset expired")
	sfWantLogin(t, g, email, sfPassword, http.StatusOK)
	sfWantLogin(t, g, email, sfNewPassword, http.StatusUnauthorized)
	if r := x.Login(pending, sfPassword); r.Status == http.StatusOK {
		t.Fatalf("login of the expired signup: got 200; want a refusal")
	}
}

// TestTokenNewerVoidsOlder checks TK-4: a second reset mail (or verification
// mail) voids the first link, and a token of one purpose never works for
// the other.
func TestTokenNewerVoidsOlder(t *testing.T) {
	t.Parallel()
	g, clock := sfStartClocked(t, nil)
	c, email := testkit.NewUser(t, g, sfPassword)
	pending := testkit.Email(t)
	v1 := g.Client(t).SignUp(g, pending, sfPassword).Token(t)
	r1 := sfForgot(t, g, c, email).Token(t)

	clock.Advance(time.Minute) // past the per-address mail interval
	r2 := sfForgot(t, g, c, email).Token(t)
	n := len(g.SMTP.Mails(pending))
	if r := g.Client(t).PostJSON("/api/v1/verify/resend", map[string]string{"email": pending}); r.Status != http.StatusAccepted {
		t.Fatalf("resend: got %d %s; want 202", r.Status, r.Body)
	}
	v2 := sfWaitMail(t, g, pending, n, "confirm").Token(t)
	if r1 == r2 || v1 == v2 {
		t.Fatal("a second mail carried the same token")
	}

	x := g.Client(t)
	// The older links are void.
	sfWantPage(t, "GET replaced reset link", x.Get("/password/reset?token="+r1), http.StatusBadRequest, "invalid or has expired")
	testkit.WantAPIError(t, "reset with replaced token",
		x.PostJSON("/api/v1/password/reset", map[string]string{"token": r1, "password": sfNewPassword}),
		http.StatusBadRequest, "invalid_token")
	sfWantPage(t, "GET replaced verify link", x.Get("/verify?token="+v1), http.StatusBadRequest, "invalid or has expired")
	testkit.WantAPIError(t, "verify with replaced token", x.Verify(v1, sfPassword), http.StatusBadRequest, "invalid_token")

	// Purposes never cross, even for live tokens.
	testkit.WantAPIError(t, "verify token posted to reset",
		x.PostJSON("/api/v1/password/reset", map[string]string{"token": v2, "password": sfNewPassword}),
		http.StatusBadRequest, "invalid_token")
	testkit.WantAPIError(t, "reset token posted to verify", x.Verify(r2, sfPassword), http.StatusBadRequest, "invalid_token")
	sfWantPage(t, "GET reset page with a verify token", x.Get("/password/reset?token="+v2), http.StatusBadRequest, "invalid or has expired")
	sfWantPage(t, "GET verify page with a reset token", x.Get("/verify?token="+r2), http.StatusBadRequest, "invalid or has expired")
	sfWantSession(t, x, http.StatusUnauthorized, "client after cross-purpose attempts")

	// The newest links still work for their own purpose.
	if r := x.PostJSON("/api/v1/password/reset", map[string]string{"token": r2, "password": sfNewPassword}); r.Status != http.StatusNoContent {
		t.Fatalf("reset with newest token: got %d %s; want 204", r.Status, r.Body)
	}
	sfWantLogin(t, g, email, sfNewPassword, http.StatusOK)
	if r := x.Verify(v2, sfPassword); r.Status != http.StatusOK {
		t.Fatalf("verify with newest token: got %d %s; want 200", r.Status, r.Body)
	}
	if _, info := sfSession(t, x); info.Email != pending {
		t.Fatalf("after verify: signed in as %q; want %s", info.Email, pending)
	}
}

// TestTokenLinksUsePublicURL checks TK-5: mailed links start with
// public_url whatever Host or X-Forwarded-Host the request carried, and
// GETs of a verification link consume nothing.
func TestTokenLinksUsePublicURL(t *testing.T) {
	t.Parallel()
	g := sfStart(t, nil)
	c, email := testkit.NewUser(t, g, sfPassword)

	forged := func(path string, body any) *testkit.Response {
		b, _ := json.Marshal(body)
		req := c.NewRequest(http.MethodPost, path, bytes.NewReader(b))
		req.Host = "evil.example"
		req.Header.Set("X-Forwarded-Host", "evil.example")
		req.Header.Set("X-Forwarded-Proto", "https")
		req.Header.Set("Forwarded", "host=evil.example;proto=https")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		return c.Do(req)
	}

	t.Run("reset", func(t *testing.T) {
		n := len(g.SMTP.Mails(email))
		if r := forged("/api/v1/password/forgot", map[string]string{"email": email}); r.Status != http.StatusAccepted {
			t.Fatalf("forgot with forged Host: got %d %s; want 202", r.Status, r.Body)
		}
		m := sfWaitMail(t, g, email, n, "reset")
		if link, want := m.Link(t), g.URL+"/password/reset?token="; !strings.HasPrefix(link, want) {
			t.Fatalf("reset link %s; want prefix %s", link, want)
		}
		if strings.Contains(m.Text+m.HTML, "evil.example") {
			t.Fatalf("reset mail mentions the forged host:\n%s", m.Text)
		}
	})

	t.Run("verify", func(t *testing.T) {
		other := testkit.Email(t)
		if r := forged("/api/v1/signup", map[string]string{"email": other, "password": sfPassword}); r.Status != http.StatusAccepted {
			t.Fatalf("signup with forged Host: got %d %s; want 202", r.Status, r.Body)
		}
		m := sfWaitMail(t, g, other, 0, "confirm")
		link := m.Link(t)
		if want := g.URL + "/verify?token="; !strings.HasPrefix(link, want) {
			t.Fatalf("verify link %s; want prefix %s", link, want)
		}
		if strings.Contains(m.Text+m.HTML, "evil.example") {
			t.Fatalf("verify mail mentions the forged host:\n%s", m.Text)
		}
		// GET never consumes.
		x := g.Client(t)
		for i := range 2 {
			sfWantPage(t, "GET verify link", x.Get(sfPath(t, link)), http.StatusOK, "Confirm your email address")
			sfWantSession(t, x, http.StatusUnauthorized, fmt.Sprintf("client after GET #%d", i+1))
		}
		if r := x.Verify(m.Token(t), sfPassword); r.Status != http.StatusOK {
			t.Fatalf("verify after two GETs: got %d %s; want 200", r.Status, r.Body)
		}
	})
}

// TestTokenEndpointsRateLimited checks TK-6 (and AB-1 for tokens): the
// endpoints that redeem tokens are limited per client IP.
func TestTokenEndpointsRateLimited(t *testing.T) {
	t.Parallel()
	g := sfStart(t, map[string]string{"GATEHOUSE_RATE_LIMITS_PER_IP": "3"})
	garbage := func() string {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	for _, path := range []string{"/api/v1/password/reset", "/api/v1/verify"} {
		t.Run(strings.TrimPrefix(path, "/api/v1/"), func(t *testing.T) {
			c := g.Client(t)
			for i := 1; i <= 3; i++ {
				r := c.PostJSON(path, map[string]string{"token": garbage(), "password": sfNewPassword})
				testkit.WantAPIError(t, fmt.Sprintf("garbage token #%d", i), r, http.StatusBadRequest, "invalid_token")
			}
			r := c.PostJSON(path, map[string]string{"token": garbage(), "password": sfNewPassword})
			testkit.WantAPIError(t, "garbage token #4", r, http.StatusTooManyRequests, "rate_limited")
			if r.Header.Get("Retry-After") == "" {
				t.Errorf("429 without Retry-After")
			}
		})
	}
	// The reset form shares the API's budget.
	r := g.Client(t).PostForm("/password/reset", url.Values{"token": {garbage()}, "password": {sfNewPassword}})
	if r.Status != http.StatusTooManyRequests {
		t.Fatalf("reset form after the API's budget: got %d; want 429", r.Status)
	}
}

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
