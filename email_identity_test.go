package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/idna"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

var idnSeq atomic.Int64

// TestEmailOneMailboxOneAccount: two spellings of one mailbox — the domain
// in Unicode or in punycode, in any case — reach one account, whichever
// was used to sign up, through the page form or the API.
func TestEmailOneMailboxOneAccount(t *testing.T) {
	t.Parallel()
	g := start(t, nil)
	const pw = "an internationalised passphrase"
	domain := fmt.Sprintf("b\u00fccher%d.example", idnSeq.Add(1))
	asciiDomain, err := idna.Lookup.ToASCII(domain)
	if err != nil || !strings.HasPrefix(asciiDomain, "xn--") {
		t.Fatalf("test setup: punycode of %s = %q, %v", domain, asciiDomain, err)
	}
	stored, mailbox := "user@"+domain, "user@"+asciiDomain

	c := g.Client(t)
	if r := c.PostForm("/signup", url.Values{"email": {"User@" + strings.ToUpper(domain)}, "password": {pw}}); r.Status != http.StatusOK {
		t.Fatalf("signup form with the Unicode domain: %d %s", r.Status, r.Body)
	}
	m := g.SMTP.WaitMail(t, mailbox, 1, 15*time.Second) // SMTP is given the punycode domain
	if r := c.Verify(m.Token(t), pw); r.Status != http.StatusOK {
		t.Fatalf("verify: %d %s", r.Status, r.Body)
	}
	for _, spelling := range []string{stored, "USER@" + strings.ToUpper(asciiDomain), mailbox} {
		r := g.Client(t).Login(spelling, pw)
		if r.Status != http.StatusOK {
			t.Errorf("login as %q: %d %s; want 200", spelling, r.Status, r.Body)
			continue
		}
		if got := r.JSON(t)["user"].(map[string]any)["email"]; got != stored {
			t.Errorf("login as %q: account %v; want %s", spelling, got, stored)
		}
	}
	// A reset asked for under the punycode spelling is the account's.
	if r := g.Client(t).PostJSON("/api/v1/password/forgot", map[string]string{"email": "USER@" + asciiDomain}); r.Status != http.StatusAccepted {
		t.Fatalf("forgot with the punycode domain: %d %s", r.Status, r.Body)
	}
	g.SMTP.WaitSubject(t, mailbox, "reset", 15*time.Second)
}

// TestEmailNoTwoMailboxesInOneAccount: a provider-verified address whose
// local part holds a KELVIN SIGN is not kevin's mailbox: it never signs in
// to kevin's account (it is refused as an address).
func TestEmailNoTwoMailboxesInOneAccount(t *testing.T) {
	t.Parallel()
	rig := socialStart(t, nil)
	domain := fmt.Sprintf("kelvin%d.example", idnSeq.Add(1))
	kevin := "kevin@" + domain
	owner := rig.g.Client(t)
	m := owner.SignUp(rig.g, kevin, socialPassword)
	if r := owner.Verify(m.Token(t), socialPassword); r.Status != http.StatusOK {
		t.Fatalf("verify kevin: %d %s", r.Status, r.Body)
	}
	kelvin := "\u212aevin@" + domain
	c := rig.g.Client(t)
	r := socialSignIn(t, c, rig.google, socialGoogleUser(kelvin), "/auth/google")
	socialWantRefused(t, c, "provider-verified Kelvin-sign address", r, http.StatusForbidden)
	rig.wantNoAccount(t, "Kelvin-sign address", kelvin)
	if n := rig.count(t, "identities", nil); n != 0 {
		t.Errorf("%d identities stored; want none", n)
	}
	// Nor through the page form or the API: both refuse it alike.
	for _, r := range []*testkit.Response{
		rig.g.Client(t).PostJSON("/api/v1/login", map[string]string{"email": kelvin, "password": socialPassword}),
		rig.g.Client(t).PostForm("/login", url.Values{"email": {kelvin}, "password": {socialPassword}}),
	} {
		if r.Status != http.StatusBadRequest {
			t.Errorf("sign-in as %+q: %d; want 400 (not an acceptable address)", kelvin, r.Status)
		}
	}
}

// TestEmailFormAndAPIAgree: the page form and the API accept and refuse
// the same addresses.
func TestEmailFormAndAPIAgree(t *testing.T) {
	t.Parallel()
	g := start(t, nil)
	n := idnSeq.Add(1)
	for _, addr := range []string{
		fmt.Sprintf("plain%d@example.com", n),
		fmt.Sprintf("\u00e9l\u00e8ve%d@\u00e9cole.example", n),
		fmt.Sprintf("user%d@XN--COLE-9OA.example", n),
		fmt.Sprintf("\u5c71\u7530%d@example.jp", n),
		fmt.Sprintf("\u212aevin%d@example.com", n),
		fmt.Sprintf("\u0130nci%d@example.com", n),
		fmt.Sprintf("user%d@xn--.example", n),
		fmt.Sprintf("Bob <bob%d@example.com>", n),
		fmt.Sprintf("user%d@localhost", n),
	} {
		api := g.Client(t).PostJSON("/api/v1/signup", map[string]string{"email": addr, "password": "a passphrase for both ways"})
		form := g.Client(t).PostForm("/signup", url.Values{"email": {addr}, "password": {"a passphrase for both ways"}})
		apiOK, formOK := api.Status == http.StatusAccepted, form.Status == http.StatusOK
		if apiOK != formOK {
			t.Errorf("%+q: API %d, form %d; want both accepted or both refused", addr, api.Status, form.Status)
		}
		if !apiOK && (api.Status != http.StatusBadRequest || form.Status != http.StatusBadRequest) {
			t.Errorf("%+q refused with API %d, form %d; want 400 both", addr, api.Status, form.Status)
		}
	}
}

// TestBrowserSignupInternationalAddress: the signup form in a real browser
// takes an address with a non-ASCII local part and domain, as the API does
// (an <input type="email"> would refuse it before it reached Gatehouse).
func TestBrowserSignupInternationalAddress(t *testing.T) {
	t.Parallel()
	g, b := startWithBrowser(t, nil)
	domain := fmt.Sprintf("\u00e9cole%d.example", idnSeq.Add(1))
	email := "\u00e9l\u00e8ve@" + domain
	asciiDomain, err := idna.Lookup.ToASCII(domain)
	if err != nil {
		t.Fatal(err)
	}
	b.Navigate("/signup")
	b.Fill(selEmail, email)
	b.Fill(selPassword, browserPassword)
	wantBrowserPage(t, b, b.Submit(selSignupButton), http.StatusOK, "/signup")
	wantBrowserText(t, b, "main h1", "Check your inbox")
	g.SMTP.WaitMail(t, "\u00e9l\u00e8ve@"+asciiDomain, 1, browserMailWait)
}
