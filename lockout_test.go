package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

// TestLockoutCountsPasswordChange: a wrong current password on password
// change counts toward the address's login lockout like a failed sign-in,
// and a locked-out address cannot try one there either: a stolen session
// must not become a password-guessing oracle (PW-5, AB-1).
func TestLockoutCountsPasswordChange(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock() // stopped: the back-off never ends by itself
	g := testkit.Start(t, runAt(clock), testkit.StartSMTP(t), testkit.Options{})
	const pw, lockoutAfter = "the right long passphrase", 5
	c, email := testkit.NewUser(t, g, pw)

	for i := range lockoutAfter {
		var r *testkit.Response
		if i%2 == 0 {
			r = c.PostJSON("/api/v1/password/change", map[string]string{"current_password": "a wrong guess number " + string(rune('a'+i)), "new_password": "a brand new passphrase"})
		} else {
			r = c.PostForm("/account/password", url.Values{"current_password": {"a wrong guess number " + string(rune('a'+i))}, "new_password": {"a brand new passphrase"}})
		}
		if r.Status != http.StatusUnauthorized {
			t.Fatalf("wrong current password #%d: %d; want it refused as incorrect", i+1, r.Status)
		}
	}
	r := c.PostJSON("/api/v1/password/change", map[string]string{"current_password": pw, "new_password": "a brand new passphrase"})
	if r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("password change after %d wrong current passwords: %d %s; want 429 with Retry-After", lockoutAfter, r.Status, r.Body)
	}
	if r := g.Client(t).Login(email, pw); r.Status != http.StatusTooManyRequests {
		t.Fatalf("login after %d wrong current passwords: %d; want 429 (the same lockout)", lockoutAfter, r.Status)
	}

	// Once the back-off has passed, the right password works and clears
	// the failures.
	clock.Advance(2 * time.Second)
	if r := g.Client(t).Login(email, pw); r.Status != http.StatusOK {
		t.Fatalf("login after the back-off: %d %s; want 200", r.Status, r.Body)
	}
	if r := c.PostJSON("/api/v1/password/change", map[string]string{"current_password": pw, "new_password": "a brand new passphrase"}); r.Status != http.StatusNoContent {
		t.Fatalf("password change with the right password: %d %s; want 204", r.Status, r.Body)
	}
}

// TestLimitIPv6ByPrefix: the per-IP limits count an IPv6 client by its /64
// (rate_limits.ipv6_prefix): a host that spreads 35 logins over addresses
// of its /64 is limited as one client, and another /64 is not.
func TestLimitIPv6ByPrefix(t *testing.T) {
	t.Parallel()
	g := start(t, map[string]string{
		"GATEHOUSE_SERVER_TRUSTED_PROXIES": "127.0.0.1",
		"GATEHOUSE_RATE_LIMITS_PER_IP":     "30",
	})
	login := func(ip string, i int) int {
		c := g.Client(t)
		req := c.NewRequest(http.MethodPost, "/api/v1/login", strings.NewReader(fmt.Sprintf(`{"email":"nobody-%d@example.com","password":"some long passphrase"}`, i)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", ip)
		return c.Do(req).Status
	}
	limited := 0
	for i := range 35 {
		ip := fmt.Sprintf("2001:db8:7:9:%x:%x::%x", i, i*7, i+1) // one /64, 35 addresses
		if login(ip, i) == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited != 5 {
		t.Errorf("%d of 35 logins from one /64 were limited; want 5 (per_ip 30)", limited)
	}
	if s := login("2001:db8:7:a::1", 99); s != http.StatusUnauthorized {
		t.Errorf("login from another /64: %d; want 401 (not limited)", s)
	}
}
