package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

// The main journeys in a real browser (Debian's Chromium through chromedp):
// only the pages, typed into and clicked, with links taken from the mails
// the test SMTP server captured. Each test has its own gateway and its own
// browser context (its own cookie jar) in a Chromium process the tests share.

const (
	browserPassword    = "correct horse battery staple"
	browserNewPassword = "a brand new passphrase 2"
	browserLoginError  = "Email or password is incorrect."
	browserMailWait    = 15 * time.Second
)

// Selectors of the pages under test (web/templates).
const (
	selEmail          = "#email"
	selPassword       = "#password"
	selSignupButton   = `form[action="/signup"] button[type=submit]`
	selVerifyButton   = `form[action="/verify"] button[type=submit]`
	selLoginButton    = `form[action="/login"] button[type=submit]`
	selSignOutButton  = `header form[action="/logout"] button`
	selForgotLink     = `form[action="/login"] a[href="/password/forgot"]`
	selForgotButton   = `form[action="/password/forgot"] button[type=submit]`
	selResetButton    = `form[action="/password/reset"] button[type=submit]`
	selChangeButton   = `form[action="/account/password"] button[type=submit]`
	selNotice         = `main .alert-success`
	selFormError      = "#form-error"
	selNotVerified    = "#not-verified"
	selResendButton   = `#not-verified form[action="/verify/resend"] button`
	selAccountEmail   = `section[aria-labelledby="account-heading"] dd`
	selHeaderEmail    = "header .user-email"
	selSessionRows    = `section[aria-labelledby="sessions-heading"] li.row`
	selCurrentSession = `section[aria-labelledby="sessions-heading"] li.row .badge`
)

// startWithBrowser starts a gateway and a browser pointed at it (or skips
// the test first when there is no browser).
func startWithBrowser(t *testing.T, env map[string]string) (*testkit.Gateway, *testkit.Browser) {
	t.Helper()
	testkit.RequireChromium(t)
	g := start(t, env)
	return g, testkit.StartBrowser(t, testkit.BrowserOptions{BaseURL: g.URL})
}

// browserUser creates a verified account through the API (the journeys'
// starting point, not their subject) and ends the API's session.
func browserUser(t *testing.T, g *testkit.Gateway) string {
	t.Helper()
	c, email := testkit.NewUser(t, g, browserPassword)
	if r := c.PostJSON("/api/v1/logout", nil); r.Status != http.StatusNoContent {
		t.Fatalf("logout after setup: status %d; want 204", r.Status)
	}
	return email
}

// browserSignIn fills and submits the login form and returns the final status.
func browserSignIn(t *testing.T, b *testkit.Browser, email, password string) int {
	t.Helper()
	if b.URL().Path != "/login" {
		b.Navigate("/login")
	}
	b.Fill(selEmail, email)
	b.Fill(selPassword, password)
	return b.Submit(selLoginButton)
}

// wantBrowserPage checks the browser is on path with the given status.
func wantBrowserPage(t *testing.T, b *testkit.Browser, status, wantStatus int, path string) {
	t.Helper()
	if got := b.URL().Path; got != path || status != wantStatus {
		t.Fatalf("got page %s with status %d; want %s with %d", got, status, path, wantStatus)
	}
}

// wantBrowserText checks that the element's text contains want.
func wantBrowserText(t *testing.T, b *testkit.Browser, sel, want string) {
	t.Helper()
	if got := b.Text(sel); !strings.Contains(got, want) {
		t.Fatalf("text of %s = %q; want it to contain %q", sel, got, want)
	}
}

// wantSessionStatus checks what a copied cookie or a second device gets from
// the session endpoint.
func wantSessionStatus(t *testing.T, c *testkit.Client, want int) {
	t.Helper()
	if r := c.Get("/api/v1/session"); r.Status != want {
		t.Fatalf("GET /api/v1/session: status %d; want %d\n%s", r.Status, want, r.Body)
	}
}

// TestBrowserSignupVerify: signup → check your inbox → the mailed link →
// the confirm page asks for the signup password → /account, signed in, with
// this one session (LK-1's verify-with-password, SE-1, SE-2, TK-5).
func TestBrowserSignupVerify(t *testing.T) {
	t.Parallel()
	g, b := startWithBrowser(t, nil)
	email := testkit.Email(t)

	b.Navigate("/signup")
	b.Fill(selEmail, email)
	b.Fill(selPassword, browserPassword)
	wantBrowserPage(t, b, b.Submit(selSignupButton), http.StatusOK, "/signup")
	wantBrowserText(t, b, "main h1", "Check your inbox")
	wantBrowserText(t, b, "main strong", email)
	if c := b.Cookie(testkit.CookieName); c != nil {
		t.Fatalf("session cookie after signup, before verification: %v; want none", c)
	}

	m := g.SMTP.WaitMail(t, email, 1, browserMailWait)
	link := m.Link(t)
	if !strings.HasPrefix(link, g.URL+"/verify?") {
		t.Fatalf("verification link %s…; want it to start with %s/verify?", link[:min(len(link), len(g.URL)+8)], g.URL)
	}
	wantBrowserPage(t, b, b.Navigate(link), http.StatusOK, "/verify")
	wantBrowserText(t, b, "main h1", "Confirm your email address")
	b.Fill(selPassword, browserPassword)
	wantBrowserPage(t, b, b.Submit(selVerifyButton), http.StatusOK, "/account")

	wantBrowserText(t, b, selAccountEmail, email)
	wantBrowserText(t, b, selHeaderEmail, email)
	if n := b.Count(selSessionRows); n != 1 {
		t.Fatalf("active sessions listed: %d; want 1", n)
	}
	wantBrowserText(t, b, selCurrentSession, "This device")
	wantBrowserText(t, b, selSessionRows, "Chrome on Linux")

	ck := b.Cookie(testkit.CookieName)
	if ck == nil {
		t.Fatalf("no %q cookie after verification; cookies: %v", testkit.CookieName, b.Cookies())
	}
	if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" {
		t.Errorf("session cookie HttpOnly=%v SameSite=%v Path=%q; want true, Lax, /", ck.HttpOnly, ck.SameSite, ck.Path)
	}
	if got := testkit.BrowserEval[string](b, "document.cookie"); strings.Contains(got, testkit.CookieName+"=") {
		t.Errorf("document.cookie = %q; want the session cookie hidden from scripts", got)
	}

	// The link is spent: opening it again shows the expired-link page.
	wantBrowserPage(t, b, b.Navigate(link), http.StatusBadRequest, "/verify")
	wantBrowserText(t, b, "main h1", "invalid or has expired")
}

// TestBrowserSignOutSignIn: the header's Sign out button ends the session
// server-side (SE-3), the login page says so, /account sends the browser to
// /login and back after signing in again (RD-1, relative return_to).
func TestBrowserSignOutSignIn(t *testing.T) {
	t.Parallel()
	g, b := startWithBrowser(t, nil)
	email := browserUser(t, g)

	wantBrowserPage(t, b, browserSignIn(t, b, email, browserPassword), http.StatusOK, "/account")
	ck := b.Cookie(testkit.CookieName)
	if ck == nil {
		t.Fatalf("no %q cookie after sign-in", testkit.CookieName)
	}
	copied := g.Client(t)
	copied.SetCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
	wantSessionStatus(t, copied, http.StatusOK)

	wantBrowserPage(t, b, b.Submit(selSignOutButton), http.StatusOK, "/login")
	if got := b.URL().Query().Get("notice"); got != "signed_out" {
		t.Errorf("notice parameter after sign-out = %q; want signed_out", got)
	}
	wantBrowserText(t, b, selNotice, "You are signed out.")
	if n := b.Count(selSignOutButton); n != 0 {
		t.Errorf("Sign out buttons after signing out: %d; want 0", n)
	}
	if c := b.Cookie(testkit.CookieName); c != nil {
		t.Errorf("session cookie still in the browser after sign-out: %s=…", c.Name)
	}
	wantSessionStatus(t, copied, http.StatusUnauthorized)

	wantBrowserPage(t, b, b.Navigate("/account"), http.StatusOK, "/login")
	if got := b.URL().Query().Get("return_to"); got != "/account" {
		t.Errorf("return_to after the redirect from /account = %q; want /account", got)
	}
	wantBrowserPage(t, b, browserSignIn(t, b, email, browserPassword), http.StatusOK, "/account")
	wantBrowserText(t, b, selAccountEmail, email)
	wantBrowserText(t, b, selCurrentSession, "This device")
}

// TestBrowserLoginUnverifiedResend: the right password on an unverified
// signup shows "verify your email first" with a resend button; the button
// leads to the check-inbox page and a new mail whose link works while the
// old one no longer does (TK-4).
func TestBrowserLoginUnverifiedResend(t *testing.T) {
	t.Parallel()
	testkit.RequireChromium(t)
	clock := testkit.NewClock()
	g := testkit.Start(t, runAt(clock), testkit.StartSMTP(t), testkit.Options{})
	b := testkit.StartBrowser(t, testkit.BrowserOptions{BaseURL: g.URL})
	email := testkit.Email(t)
	first := g.Client(t).SignUp(g, email, browserPassword)

	wantBrowserPage(t, b, browserSignIn(t, b, email, browserPassword), http.StatusForbidden, "/login")
	wantBrowserText(t, b, selNotVerified, "Verify your email first")
	if n := b.Count(selFormError); n != 0 {
		t.Errorf("generic error shown with the not-verified notice: %q", b.Text(selFormError))
	}
	if got := b.Value(selEmail); got != email {
		t.Errorf("email field = %q; want %q kept", got, email)
	}

	clock.Advance(time.Minute) // past the per-address mail interval
	wantBrowserPage(t, b, b.Submit(selResendButton), http.StatusOK, "/verify/resend")
	wantBrowserText(t, b, "main h1", "Check your inbox")
	wantBrowserText(t, b, "main strong", email)
	second := g.SMTP.WaitMail(t, email, 2, browserMailWait)
	if second.Token(t) == first.Token(t) {
		t.Fatal("the resent mail carries the same token; want a new one")
	}

	wantBrowserPage(t, b, b.Navigate(first.Link(t)), http.StatusBadRequest, "/verify")
	wantBrowserText(t, b, "main h1", "invalid or has expired")
	wantBrowserPage(t, b, b.Navigate(second.Link(t)), http.StatusOK, "/verify")
	b.Fill(selPassword, browserPassword)
	wantBrowserPage(t, b, b.Submit(selVerifyButton), http.StatusOK, "/account")
	wantBrowserText(t, b, selAccountEmail, email)
}

// TestBrowserForgotReset: forgot password → mail → the reset page → a new
// password → /login with the "password changed" notice; the old password
// fails with the generic message, the new one signs in, and a session that
// was open elsewhere has ended (SE-5).
func TestBrowserForgotReset(t *testing.T) {
	t.Parallel()
	g, b := startWithBrowser(t, nil)
	email := browserUser(t, g)
	elsewhere := g.Client(t)
	if r := elsewhere.Login(email, browserPassword); r.Status != http.StatusOK {
		t.Fatalf("login elsewhere: status %d; want 200\n%s", r.Status, r.Body)
	}
	mails := len(g.SMTP.Mails(email))

	b.Navigate("/login")
	wantBrowserPage(t, b, b.Submit(selForgotLink), http.StatusOK, "/password/forgot")
	b.Fill(selEmail, email)
	wantBrowserPage(t, b, b.Submit(selForgotButton), http.StatusOK, "/password/forgot")
	wantBrowserText(t, b, "main h1", "Check your inbox")
	wantBrowserText(t, b, "main strong", email)

	m := g.SMTP.WaitMail(t, email, mails+1, browserMailWait)
	if !strings.HasPrefix(m.Link(t), g.URL+"/password/reset?") {
		t.Fatalf("reset mail %q: link does not lead to %s/password/reset", m.Subject, g.URL)
	}
	wantBrowserPage(t, b, b.Navigate(m.Link(t)), http.StatusOK, "/password/reset")
	wantBrowserText(t, b, "main h1", "Choose a new password")
	b.Fill(selPassword, browserNewPassword)
	wantBrowserPage(t, b, b.Submit(selResetButton), http.StatusOK, "/login")
	wantBrowserText(t, b, selNotice, "Your password was changed.")
	wantSessionStatus(t, elsewhere, http.StatusUnauthorized)

	wantBrowserPage(t, b, browserSignIn(t, b, email, browserPassword), http.StatusUnauthorized, "/login")
	wantBrowserText(t, b, selFormError, browserLoginError)
	wantBrowserPage(t, b, browserSignIn(t, b, email, browserNewPassword), http.StatusOK, "/account")
	wantBrowserText(t, b, selAccountEmail, email)
}

// TestBrowserChangePassword: changing the password on /account (current +
// new) shows the notice and ends the other device's session, which the
// list showed before and not after (PW-5, SE-5, SE-6).
func TestBrowserChangePassword(t *testing.T) {
	t.Parallel()
	g, b := startWithBrowser(t, nil)
	email := browserUser(t, g)
	phone := g.Client(t)
	phone.Header.Set("User-Agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")
	if r := phone.Login(email, browserPassword); r.Status != http.StatusOK {
		t.Fatalf("login on the phone: status %d; want 200\n%s", r.Status, r.Body)
	}

	wantBrowserPage(t, b, browserSignIn(t, b, email, browserPassword), http.StatusOK, "/account")
	if n := b.Count(selSessionRows); n != 2 {
		t.Fatalf("sessions listed with the phone signed in: %d; want 2", n)
	}
	if n := b.Count(selCurrentSession); n != 1 {
		t.Errorf("sessions marked This device: %d; want 1", n)
	}
	wantBrowserText(t, b, `section[aria-labelledby="sessions-heading"]`, "Safari on iOS")

	b.Fill("#current_password", browserPassword)
	b.Fill("#new_password", browserNewPassword)
	wantBrowserPage(t, b, b.Submit(selChangeButton), http.StatusOK, "/account")
	wantBrowserText(t, b, selNotice, "Your password was changed.")
	if n := b.Count(selSessionRows); n != 1 {
		t.Errorf("sessions listed after the change: %d; want 1", n)
	}
	if got := b.Text(`section[aria-labelledby="sessions-heading"]`); strings.Contains(got, "Safari on iOS") {
		t.Errorf("the phone is still listed after the change:\n%s", got)
	}
	wantBrowserText(t, b, selCurrentSession, "This device")
	wantSessionStatus(t, phone, http.StatusUnauthorized)

	if r := phone.Login(email, browserPassword); r.Status != http.StatusUnauthorized {
		t.Errorf("login with the old password: status %d; want 401", r.Status)
	}
	if r := phone.Login(email, browserNewPassword); r.Status != http.StatusOK {
		t.Errorf("login with the new password: status %d; want 200", r.Status)
	}
}

// TestBrowserWrongPassword: a wrong password and an unknown address get the
// same generic error on the login page, which keeps the typed email and
// not the password (EN-1).
func TestBrowserWrongPassword(t *testing.T) {
	t.Parallel()
	g, b := startWithBrowser(t, nil)
	email := browserUser(t, g)

	for _, tc := range []struct{ name, email, password string }{
		{"wrong password", email, "not the right passphrase"},
		{"unknown address", "nobody-" + email, browserPassword},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b.Navigate("/login")
			wantBrowserPage(t, b, browserSignIn(t, b, tc.email, tc.password), http.StatusUnauthorized, "/login")
			if got := b.Text(selFormError); got != browserLoginError {
				t.Errorf("error = %q; want %q", got, browserLoginError)
			}
			if got := b.Value(selEmail); got != tc.email {
				t.Errorf("email field = %q; want %q kept", got, tc.email)
			}
			if got := b.Value(selPassword); got != "" {
				t.Errorf("password field kept %d characters; want it empty", len(got))
			}
			if n := b.Count(selNotVerified); n != 0 {
				t.Errorf("not-verified notice shown for a failed login")
			}
			if c := b.Cookie(testkit.CookieName); c != nil {
				t.Errorf("session cookie set by a failed login")
			}
		})
	}
}

// TestBrowserPageLayout: /login and /account at 390 px wide (a phone) fit
// without sideways scrolling, and every link on them leads to a page
// (nothing answers 404). Screenshots of both go to the artifacts.
func TestBrowserPageLayout(t *testing.T) {
	t.Parallel()
	g, b := startWithBrowser(t, nil)
	email := browserUser(t, g)
	b.SetViewport(390, 844, true)

	check := func(page string) {
		t.Helper()
		w := testkit.BrowserEval[[]int](b, "[document.documentElement.scrollWidth, window.innerWidth]")
		if len(w) != 2 || w[1] != 390 {
			t.Fatalf("%s: [scrollWidth, innerWidth] = %v; want innerWidth 390", page, w)
		}
		if w[0] > w[1] {
			t.Errorf("%s: scrollWidth %d > innerWidth %d: the page scrolls sideways on a phone", page, w[0], w[1])
		}
		b.Screenshot("mobile" + page)

		// Follow the links as this browser would, with its cookie.
		c := g.Client(t)
		if ck := b.Cookie(testkit.CookieName); ck != nil {
			c.SetCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
		}
		hrefs := testkit.BrowserEval[[]string](b, "Array.from(document.querySelectorAll('a[href]'), a => a.href)")
		seen := map[string]bool{}
		for _, href := range hrefs {
			href, _, _ = strings.Cut(href, "#")
			if !strings.HasPrefix(href, g.URL+"/") || seen[href] {
				continue
			}
			seen[href] = true
			if r := c.Get(href); r.Status >= 400 {
				t.Errorf("%s: link %s answers %d; want a page", page, strings.TrimPrefix(href, g.URL), r.Status)
			}
		}
		if len(seen) == 0 {
			t.Errorf("%s: no links found", page)
		}
	}

	b.Navigate("/login")
	check("/login")
	wantBrowserPage(t, b, browserSignIn(t, b, email, browserPassword), http.StatusOK, "/account")
	check("/account")
}
