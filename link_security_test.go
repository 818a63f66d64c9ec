package main

import (
	"net/http"
	"net/url"
	"runtime"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

// TestLinkPagesRefuseCrossOrigin: the pages that finish a pending link —
// the account's password (/auth/link), "mail me a confirmation"
// (/auth/link/mail) and the mailed confirmation (/auth/link/confirm) —
// refuse a request from another origin with 403 and change nothing: no
// link, no session, no mail (CS-1, LK-4).
func TestLinkPagesRefuseCrossOrigin(t *testing.T) {
	t.Parallel()
	rig := socialStart(t, nil)
	owner, email := testkit.NewUser(t, rig.g, socialPassword)
	c := socialPendingLink(t, rig, socialGoogleUser(email), "/auth/google")
	mails := len(rig.g.SMTP.Mails(email))

	for _, f := range webForeign {
		for _, post := range []struct {
			path string
			form url.Values
		}{
			{"/auth/link", url.Values{"password": {socialPassword}}},
			{"/auth/link/mail", nil},
		} {
			r := webForm(t, c, post.path, post.form, f.header)
			if r.Status != http.StatusForbidden {
				t.Errorf("%s POST %s: %d; want 403", f.name, post.path, r.Status)
			}
		}
	}
	socialWantNoSession(t, c, "after cross-origin link attempts")
	socialWantProviders(t, owner, "owner after cross-origin link attempts")
	rig.g.NoMoreMail(t, email, mails) // no confirmation was mailed

	// A real confirmation, posted from another origin, links nothing either.
	if r := c.PostForm("/auth/link/mail", nil); r.Status != http.StatusOK {
		t.Fatalf("POST /auth/link/mail: %d", r.Status)
	}
	token := rig.g.SMTP.WaitMail(t, email, mails+1, socialMailWait).Token(t)
	for _, f := range webForeign {
		if r := webForm(t, c, "/auth/link/confirm", url.Values{"token": {token}}, f.header); r.Status != http.StatusForbidden {
			t.Errorf("%s POST /auth/link/confirm: %d; want 403", f.name, r.Status)
		}
	}
	socialWantNoSession(t, c, "after cross-origin confirmations")
	socialWantProviders(t, owner, "owner after cross-origin confirmations")

	// The same confirmation from the page itself works: it was not used up.
	r := c.PostForm("/auth/link/confirm", url.Values{"token": {token}})
	socialWantSignedIn(t, c, "same-origin confirmation", r, "/account")
	socialWantProviders(t, c, "after the confirmation", "google")
}

// TestLinkConfirmationForAnotherPendingLink: a mailed confirmation works
// only with the pending link it was mailed for. Presented from a browser
// that holds another live pending link (to another account), it is refused
// and links nothing anywhere; its own browser can still use it.
func TestLinkConfirmationForAnotherPendingLink(t *testing.T) {
	t.Parallel()
	rig := socialStart(t, nil)
	ownerA, emailA := testkit.NewUser(t, rig.g, socialPassword)
	ownerB, emailB := testkit.NewUser(t, rig.g, socialPassword)
	toA := socialPendingLink(t, rig, socialGoogleUser(emailA), "/auth/google")
	toB := socialPendingLink(t, rig, socialGoogleUser(emailB), "/auth/google")
	mails := len(rig.g.SMTP.Mails(emailB))
	if r := toB.PostForm("/auth/link/mail", nil); r.Status != http.StatusOK {
		t.Fatalf("POST /auth/link/mail: %d", r.Status)
	}
	token := rig.g.SMTP.WaitMail(t, emailB, mails+1, socialMailWait).Token(t)

	socialWantPage(t, "GET B's confirmation with A's pending link", toA.Get("/auth/link/confirm?token="+url.QueryEscape(token)), http.StatusBadRequest)
	r := toA.PostForm("/auth/link/confirm", url.Values{"token": {token}})
	socialWantRefused(t, toA, "POST B's confirmation with A's pending link", r, http.StatusBadRequest)
	socialWantProviders(t, ownerA, "account A after the mismatched confirmation")
	socialWantProviders(t, ownerB, "account B after the mismatched confirmation")

	r = toB.PostForm("/auth/link/confirm", url.Values{"token": {token}})
	socialWantSignedIn(t, toB, "B's confirmation in its own browser", r, "/account")
	socialWantProviders(t, ownerB, "account B after its confirmation", "google")
}

// TestLoginUnknownAddressHashes: a login for an unknown address does the
// same password-hashing work as one for a known address with a wrong
// password (EN-1): measured as memory allocated, since every argon2id hash
// allocates its memory_kib (19 MiB) afresh. Not parallel: parallel tests
// are paused while it runs, so the allocations are the gateway's.
func TestLoginUnknownAddressHashes(t *testing.T) {
	g := start(t, map[string]string{"GATEHOUSE_RATE_LIMITS_LOCKOUT_AFTER": "1000"})
	_, known := testkit.NewUser(t, g, "the right long passphrase")
	const n = 6
	allocated := func(email func(i int) string) uint64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for i := range n {
			if r := g.Client(t).Login(email(i), "a wrong long passphrase"); r.Status != http.StatusUnauthorized {
				t.Fatalf("login: %d %s; want 401", r.Status, r.Body)
			}
		}
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	knownBytes := allocated(func(int) string { return known })
	unknownBytes := allocated(func(i int) string { return testkit.Email(t) })
	const hash = 19 << 20
	t.Logf("allocated for %d logins: known address %d MiB, unknown address %d MiB", n, knownBytes>>20, unknownBytes>>20)
	if knownBytes < n*hash || unknownBytes < n*hash {
		t.Errorf("allocated %d MiB (known) and %d MiB (unknown) for %d logins; want at least one 19 MiB hash each", knownBytes>>20, unknownBytes>>20, n)
	}
}
