package main

// Black-box tests of address validation and normalization (IN-2).

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

// TestAccountInvalidEmail is IN-2 for the address: control characters,
// over-long addresses, dotless domains and display names get 400 on every
// endpoint that takes an address, and no mail goes out.
func TestAccountInvalidEmail(t *testing.T) {
	t.Parallel()
	g := acctStart(t, nil)
	id := acctHex(4)
	long255 := strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 58) + ".com"
	if len(long255) != 255 {
		t.Fatalf("test data: %d bytes; want 255", len(long255))
	}
	bad := []struct{ name, email string }{
		{"CRLF header injection", "bob-" + id + "@example.com\r\nBcc: eve@evil.example"},
		{"LF", "bob\n-" + id + "@example.com"},
		{"CR", "bob-" + id + "@example.com\rX-Injected: 1"},
		{"NUL", "bob-" + id + "@exam\x00ple.com"},
		{"255 bytes", long255},
		{"over 1 KiB", strings.Repeat("a", 1100) + "@example.com"},
		{"dotless domain", "bob-" + id + "@localhost"},
		{"display name", "Bob <bob-" + id + "@example.com>"},
		{"quoted display name", `"Bob" <bob-` + id + `@example.com>`},
		{"two addresses", "bob-" + id + "@example.com, eve@evil.example"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := g.Client(t)
			for _, ep := range []struct {
				api, page string
				pw        bool
			}{
				{"/api/v1/signup", "/signup", true},
				{"/api/v1/login", "/login", true},
				{"/api/v1/password/forgot", "/password/forgot", false},
				{"/api/v1/verify/resend", "/verify/resend", false},
			} {
				body := map[string]string{"email": tc.email}
				kv := []string{"email", tc.email}
				if ep.pw {
					body["password"] = acctPassword
					kv = append(kv, "password", acctPassword)
				}
				testkit.WantAPIError(t, "POST "+ep.api, c.PostJSON(ep.api, body), http.StatusBadRequest, "invalid_email")
				r := acctForm(t, c, ep.page, kv...)
				acctWant(t, "POST "+ep.page, r, http.StatusBadRequest)
				acctWantText(t, "POST "+ep.page, r, "Enter a valid email address.")
			}
		})
	}
	t.Cleanup(func() {
		// After the subtests: nothing was mailed anywhere.
		g.NoMoreMail(t, "", 0)
	})
}

// TestAccountEmailNormalization: an address is trimmed and lower-cased, so
// any spelling of it signs in to one account; 254 bytes is still an address.
func TestAccountEmailNormalization(t *testing.T) {
	t.Parallel()
	g := acctStart(t, nil)
	id := acctHex(5)
	typed := "  Mixed.Case-" + strings.ToUpper(id) + "@Example.COM "
	norm := "mixed.case-" + id + "@example.com"

	c := g.Client(t)
	acctWant(t, "signup with a mixed-case address", c.PostJSON("/api/v1/signup", map[string]string{"email": typed, "password": acctPassword}), http.StatusAccepted)
	m := g.SMTP.WaitMail(t, norm, 1, acctMailWait)
	acctCheckVerifyMail(t, g, m, norm)
	r := c.Verify(m.Token(t), acctPassword)
	acctWant(t, "verify", r, http.StatusOK)
	if got := acctUser(t, "verify", r)["email"]; got != norm {
		t.Errorf("user email = %v; want %s", got, norm)
	}
	for _, spelling := range []string{norm, strings.ToUpper(norm), " " + norm + "\t"} {
		acctWant(t, fmt.Sprintf("login as %q", spelling), g.Client(t).Login(spelling, acctPassword), http.StatusOK)
	}
	r = acctForm(t, g.Client(t), "/login", "email", strings.ToUpper(norm), "password", acctPassword)
	testkit.WantRedirect(t, "POST /login with the upper-case address", r, http.StatusSeeOther, "/account")

	// Through the form, and at the 254-byte limit.
	local := acctHex(5) + strings.Repeat("a", 54)
	long254 := local + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 57) + ".com"
	if len(long254) != 254 {
		t.Fatalf("test data: %d bytes; want 254", len(long254))
	}
	p := acctForm(t, c, "/signup", "email", " "+strings.ToUpper(long254), "password", acctPassword)
	acctWant(t, "POST /signup with a 254-byte upper-case address", p, http.StatusOK)
	acctCheckVerifyMail(t, g, g.SMTP.WaitMail(t, long254, 1, acctMailWait), long254)
}
