package main

// Black-box tests of mailed tokens (TK-1, TK-3..6), sessions and cookies
// (SE-1..6), password reset and change (PW-5, issue 2 step 5) and the
// forward-auth contract of /auth/check. Every gateway runs the real wiring
// with a capturing SMTP server; tokens come from the captured mails only.
//
// Package-level helpers of this file start with "sf" (sessions flow) so that
// they cannot clash with the other test files of package main.

import (
	"encoding/base64"
	"encoding/json"
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
