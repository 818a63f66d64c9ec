package main

// Black-box tests of mailed tokens (TK-1..6) and the password reset flow.

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
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

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
