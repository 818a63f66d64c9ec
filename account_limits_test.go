package main

// Black-box tests of rate limits, the lockout and the mail quota (AB-1..3).

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

// acctSessionIPs lists the ip of each session of the client's user.
func acctSessionIPs(tb testing.TB, c *testkit.Client) []string {
	tb.Helper()
	r := c.Get("/api/v1/sessions")
	acctWant(tb, "GET /api/v1/sessions", r, http.StatusOK)
	var body struct {
		Sessions []struct {
			IP      string `json:"ip"`
			Current bool   `json:"current"`
		} `json:"sessions"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		tb.Fatalf("sessions: %v\n%s", err, r.Body)
	}
	var ips []string
	for _, s := range body.Sessions {
		ips = append(ips, s.IP)
	}
	return ips
}

// acctLoginXFF signs in through the API with an X-Forwarded-For header.
func acctLoginXFF(tb testing.TB, c *testkit.Client, email, password, xff string) *testkit.Response {
	tb.Helper()
	return acctSendJSON(tb, c, "/api/v1/login", map[string]string{"email": email, "password": password},
		http.Header{"X-Forwarded-For": {xff}})
}

// TestAccountRateLimitPerIP is AB-1 per client IP: every endpoint that
// checks a password or sends mail allows 3 a minute here, API and form
// counted together, then 429 with Retry-After.
func TestAccountRateLimitPerIP(t *testing.T) {
	t.Parallel()
	g := acctStart(t, map[string]string{"GATEHOUSE_RATE_LIMITS_PER_IP": "3"})
	fakeToken := strings.Repeat("A", 43)
	cases := []struct {
		name, api, page string
		body            func() map[string]string
	}{
		{"login", "/api/v1/login", "/login", func() map[string]string {
			return map[string]string{"email": acctEmail("ip"), "password": acctWrongPW}
		}},
		{"signup", "/api/v1/signup", "/signup", func() map[string]string {
			return map[string]string{"email": acctEmail("ip"), "password": acctPassword}
		}},
		{"forgot", "/api/v1/password/forgot", "/password/forgot", func() map[string]string {
			return map[string]string{"email": acctEmail("ip")}
		}},
		{"resend", "/api/v1/verify/resend", "/verify/resend", func() map[string]string {
			return map[string]string{"email": acctEmail("ip")}
		}},
		{"verify", "/api/v1/verify", "/verify", func() map[string]string {
			return map[string]string{"token": fakeToken, "password": acctPassword}
		}},
		{"reset", "/api/v1/password/reset", "/password/reset", func() map[string]string {
			return map[string]string{"token": fakeToken, "password": acctPassword}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := g.Client(t)
			for i := range 3 {
				if r := c.PostJSON(tc.api, tc.body()); r.Status == http.StatusTooManyRequests || r.Status >= 500 {
					t.Fatalf("request %d: got %d; want it within the limit\n%s", i+1, r.Status, r.Body)
				}
			}
			r := c.PostJSON(tc.api, tc.body())
			testkit.WantAPIError(t, "4th request from one IP", r, http.StatusTooManyRequests, "rate_limited")
			if ra := acctRetryAfter(t, "4th request", r); ra > 60 {
				t.Errorf("Retry-After %d; want at most 60 for a per-minute limit", ra)
			}
			var kv []string
			for k, v := range tc.body() {
				kv = append(kv, k, v)
			}
			p := acctForm(t, g.Client(t), tc.page, kv...)
			acctWant(t, "form over the limit", p, http.StatusTooManyRequests)
			acctRetryAfter(t, "form over the limit", p)
		})
	}
}

// TestAccountRateLimitPerAddress is AB-1 per address: the limit of one
// address does not touch another's.
func TestAccountRateLimitPerAddress(t *testing.T) {
	t.Parallel()
	g := acctStart(t, map[string]string{"GATEHOUSE_RATE_LIMITS_PER_ADDRESS": "2"})
	c := g.Client(t)
	cases := []struct {
		name, path string
		body       func(email string) map[string]string
		first      int
	}{
		{"login", "/api/v1/login", func(e string) map[string]string { return map[string]string{"email": e, "password": acctWrongPW} }, http.StatusUnauthorized},
		{"forgot", "/api/v1/password/forgot", func(e string) map[string]string { return map[string]string{"email": e} }, http.StatusAccepted},
		{"signup", "/api/v1/signup", func(e string) map[string]string {
			return map[string]string{"email": e, "password": acctPassword}
		}, http.StatusAccepted},
	}
	for _, tc := range cases {
		a, b := acctEmail("addr"), acctEmail("addr")
		for i := range 2 {
			acctWant(t, fmt.Sprintf("%s #%d for one address", tc.name, i+1), c.PostJSON(tc.path, tc.body(a)), tc.first)
		}
		r := c.PostJSON(tc.path, tc.body(a))
		testkit.WantAPIError(t, tc.name+" #3 for one address", r, http.StatusTooManyRequests, "rate_limited")
		acctRetryAfter(t, tc.name+" #3", r)
		acctWant(t, tc.name+" for another address", c.PostJSON(tc.path, tc.body(b)), tc.first)
	}
}

// TestAccountLockout is AB-1's lockout: after 3 failures even the right
// password waits, the wait doubles with each further failure, the answer is
// the same for an unknown address (EN-4), forgot-password is not blocked,
// and a reset ends the lockout.
func TestAccountLockout(t *testing.T) {
	t.Parallel()
	g, clock := acctStartClocked(t, map[string]string{"GATEHOUSE_RATE_LIMITS_LOCKOUT_AFTER": "3"})
	email, unknown := acctEmail("lock"), acctEmail("unkn")
	acctNewUser(t, g, email, acctPassword)

	// One after the other: both move the one clock.
	known := acctLockoutSequence(t, g, clock, email, acctPassword)
	other := acctLockoutSequence(t, g, clock, unknown, acctPassword)
	acctSameAnswer(t, "lockout: account vs unknown address", known, other, "", "")

	// The reset mailed during the lockout lifts it.
	c := g.Client(t)
	m := g.SMTP.WaitSubject(t, email, "reset", acctMailWait)
	const newPW = "a brand new passphrase 9"
	acctWant(t, "reset", c.PostJSON("/api/v1/password/reset", map[string]string{"token": m.Token(t), "password": newPW}), http.StatusNoContent)
	// Had the reset kept the failures, this one would be refused.
	testkit.WantAPIError(t, "wrong password after the reset", c.Login(email, acctWrongPW), http.StatusUnauthorized, "invalid_credentials")
	acctWant(t, "login after the reset", c.Login(email, newPW), http.StatusOK)
}

// acctLockoutSequence fails sign-ins for email (lockout_after 3) and checks
// lockouts of 1, 2 and 4 seconds, moving the gateway's clock through each;
// during the last one the right password and the form are refused while
// forgot-password is not. It returns the last API answer of the lockout.
// (The back-off's arithmetic is tested in accounts' TestLockoutBackoff.)
func acctLockoutSequence(t *testing.T, g *testkit.Gateway, clock *testkit.Clock, email, right string) *testkit.Response {
	t.Helper()
	c := g.Client(t)
	for i := range 3 {
		testkit.WantAPIError(t, fmt.Sprintf("wrong password #%d", i+1), c.Login(email, acctWrongPW), http.StatusUnauthorized, "invalid_credentials")
	}
	var locked *testkit.Response
	for _, want := range []int{1, 2, 4} {
		locked = c.Login(email, acctWrongPW)
		acctWant(t, fmt.Sprintf("wrong password during the %d s lockout", want), locked, http.StatusTooManyRequests)
		if ra := acctRetryAfter(t, "lockout", locked); ra != want {
			t.Errorf("Retry-After = %d; want %d", ra, want)
		}
		if want < 4 {
			clock.Advance(time.Duration(want) * time.Second)
			testkit.WantAPIError(t, fmt.Sprintf("wrong password after the %d s lockout", want), c.Login(email, acctWrongPW), http.StatusUnauthorized, "invalid_credentials")
		}
	}

	// During the 4 s lockout: the right password and the form are refused,
	// forgot-password is answered and mails.
	acctWant(t, "right password during the lockout", c.Login(email, right), http.StatusTooManyRequests)
	p := acctForm(t, g.Client(t), "/login", "email", email, "password", right)
	acctWant(t, "POST /login during the lockout", p, http.StatusTooManyRequests)
	acctRetryAfter(t, "POST /login during the lockout", p)
	f := acctForm(t, g.Client(t), "/password/forgot", "email", email)
	acctWant(t, "POST /password/forgot during the lockout", f, http.StatusOK)
	acctWant(t, "API forgot during the lockout", c.PostJSON("/api/v1/password/forgot", map[string]string{"email": email}), http.StatusAccepted)
	clock.Advance(4 * time.Second) // end the lockout for the next sequence
	return locked
}

// TestAccountMailQuota is AB-2: repeated requests within a minute send one
// mail per kind, answer unchanged, and the mailed link keeps working with
// its own password.
func TestAccountMailQuota(t *testing.T) {
	t.Parallel()
	g := acctStart(t, nil)
	c := g.Client(t)
	email := acctEmail("quota")
	const other = "a different passphrase 2"

	r1 := c.PostJSON("/api/v1/signup", map[string]string{"email": email, "password": acctPassword})
	acctWant(t, "first signup", r1, http.StatusAccepted)
	m := g.SMTP.WaitMail(t, email, 1, acctMailWait)
	acctSameAnswer(t, "signup: first vs second within a minute", r1, c.PostJSON("/api/v1/signup", map[string]string{"email": email, "password": other}), "", "")
	acctWant(t, "resend within a minute", c.PostJSON("/api/v1/verify/resend", map[string]string{"email": email}), http.StatusAccepted)
	acctWant(t, "form signup within a minute", acctForm(t, c, "/signup", "email", email, "password", other), http.StatusOK)

	user := acctEmail("quota")
	acctNewUser(t, g, user, acctPassword)
	for i := range 3 {
		acctWant(t, fmt.Sprintf("forgot #%d", i+1), c.PostJSON("/api/v1/password/forgot", map[string]string{"email": user}), http.StatusAccepted)
	}

	g.MailBarrier(t)
	if got := len(g.SMTP.Mails(email)); got != 1 {
		t.Errorf("signup mails after 2 signups, a resend and a form signup: %d; want 1", got)
	}
	if got := len(g.SMTP.Mails(user)); got != 2 {
		t.Errorf("mails to a user after 3 forgot requests: %d; want 2 (verification, one reset)", got)
	}
	testkit.WantAPIError(t, "verify with the suppressed signup's password", c.Verify(m.Token(t), other), http.StatusUnauthorized, "invalid_credentials")
	acctWant(t, "verify with the mailed signup's password", c.Verify(m.Token(t), acctPassword), http.StatusOK)
}

// TestAccountForwardedFor is AB-3: X-Forwarded-For names the client only
// when the peer is a trusted proxy.
func TestAccountForwardedFor(t *testing.T) {
	t.Parallel()

	t.Run("untrusted peer", func(t *testing.T) {
		t.Parallel()
		g := acctStart(t, map[string]string{"GATEHOUSE_RATE_LIMITS_PER_IP": "3"})
		email := acctEmail("xff")
		c := acctNewUser(t, g, email, acctPassword)
		acctWant(t, "login with X-Forwarded-For", acctLoginXFF(t, c, email, acctPassword, "203.0.113.9"), http.StatusOK)
		if ips := acctSessionIPs(t, c); !slices.Equal(ips, []string{"127.0.0.1"}) {
			t.Errorf("session ips = %v; want [127.0.0.1], the peer", ips)
		}
		for _, xff := range []string{"198.51.100.1", "198.51.100.2"} {
			acctWant(t, "login as "+xff, acctLoginXFF(t, g.Client(t), acctEmail("xff"), acctWrongPW, xff), http.StatusUnauthorized)
		}
		r := acctLoginXFF(t, g.Client(t), acctEmail("xff"), acctWrongPW, "198.51.100.3")
		testkit.WantAPIError(t, "4th login from one peer with a new X-Forwarded-For", r, http.StatusTooManyRequests, "rate_limited")
	})

	t.Run("trusted proxy", func(t *testing.T) {
		t.Parallel()
		g := acctStart(t, map[string]string{
			"GATEHOUSE_RATE_LIMITS_PER_IP":     "3",
			"GATEHOUSE_SERVER_TRUSTED_PROXIES": "127.0.0.1/32",
		})
		email := acctEmail("xff")
		c := acctNewUser(t, g, email, acctPassword)
		acctWant(t, "login via the proxy", acctLoginXFF(t, c, email, acctPassword, "203.0.113.9"), http.StatusOK)
		if ips := acctSessionIPs(t, c); !slices.Equal(ips, []string{"203.0.113.9"}) {
			t.Errorf("session ips = %v; want [203.0.113.9], the forwarded client", ips)
		}
		acctWantText(t, "GET /account", c.Get("/account"), "203.0.113.9")

		for i := range 3 {
			acctWant(t, fmt.Sprintf("login #%d as 198.51.100.1", i+1), acctLoginXFF(t, g.Client(t), acctEmail("xff"), acctWrongPW, "198.51.100.1"), http.StatusUnauthorized)
		}
		r := acctLoginXFF(t, g.Client(t), acctEmail("xff"), acctWrongPW, "198.51.100.1")
		testkit.WantAPIError(t, "4th login as 198.51.100.1", r, http.StatusTooManyRequests, "rate_limited")
		acctWant(t, "login as another client", acctLoginXFF(t, g.Client(t), acctEmail("xff"), acctWrongPW, "198.51.100.2"), http.StatusUnauthorized)
		r = acctLoginXFF(t, g.Client(t), acctEmail("xff"), acctWrongPW, "192.0.2.66, 198.51.100.1")
		testkit.WantAPIError(t, "limited client prepending a spoofed address", r, http.StatusTooManyRequests, "rate_limited")
	})
}
