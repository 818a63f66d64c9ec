package main

// Black-box tests of linking a provider to an existing account (LK-1..3, OA-5).

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

// TestSocialLinkWithPassword checks journey 4a and LK-2: a provider
// sign-in with the address of an existing verified account is not merged;
// the owner proves the account with its password, and then either way
// signs in the same user. A wrong password links nothing.
func TestSocialLinkWithPassword(t *testing.T) {
	t.Parallel()
	rig := socialStart(t, nil)
	owner, email := testkit.NewUser(t, rig.g, socialPassword)
	ownerID := socialWantMe(t, owner, "owner").ID
	person := socialGoogleUser(email)

	c := socialPendingLink(t, rig, person, "/auth/google?return_to="+url.QueryEscape("/app/linked"))
	socialWantProviders(t, owner, "owner before the proof")
	page := c.Get("/auth/link")
	socialWantPage(t, "GET /auth/link", page, http.StatusOK, email, "Google")
	if !strings.Contains(page.Text(), `action="/auth/link"`) {
		t.Errorf("link page of an account with a password has no password form")
	}

	r := c.PostForm("/auth/link", url.Values{"password": {socialWrongPW}})
	socialWantPage(t, "POST /auth/link with a wrong password", r, http.StatusUnauthorized)
	socialWantNoSession(t, c, "after a wrong password")
	socialWantProviders(t, owner, "owner after a wrong password")
	// Still not linked: signing in again asks for the proof again.
	socialPendingLinkIn(t, rig, c, "google", person, "/auth/google?return_to="+url.QueryEscape("/app/linked"))

	r = c.PostForm("/auth/link", url.Values{"password": {socialPassword}})
	me := socialWantSignedIn(t, c, "POST /auth/link with the password", r, "/app/linked")
	if me.ID != ownerID {
		t.Fatalf("linked sign-in: user %q; want the owner %q", me.ID, ownerID)
	}
	socialWantProviders(t, c, "after the proof", "google")
	if ck := socialSetCookie(r, socialLinkCookie); ck == nil || ck.MaxAge >= 0 {
		t.Errorf("the pending-link cookie was not cleared after linking: %+v", ck)
	}
	if r := c.PostForm("/auth/link", url.Values{"password": {socialPassword}}); r.Status != http.StatusBadRequest {
		t.Errorf("POST /auth/link again after linking: got %d; want 400", r.Status)
	}

	// From now on both ways sign in the owner.
	g2 := rig.g.Client(t)
	if u := socialWantSignedIn(t, g2, "Google after linking", socialSignIn(t, g2, rig.google, person, "/auth/google"), "/account"); u.ID != ownerID {
		t.Errorf("Google after linking: user %q; want %q", u.ID, ownerID)
	}
	if st, id := socialLogin(t, rig.g, email, socialPassword); st != http.StatusOK || id != ownerID {
		t.Errorf("password after linking: got %d user %q; want 200 user %q", st, id, ownerID)
	}
	ids := socialIdentities(t, owner)
	if len(ids) != 1 || ids[0].Provider != "google" || ids[0].Email != email {
		t.Errorf("owner's identities %+v; want google with %s", ids, email)
	}

	// The same for GitHub, on an account that already has Google.
	h := rig.g.Client(t)
	gh := socialGitHubUser(email)
	socialPendingLinkIn(t, rig, h, "github", gh, "/auth/github")
	socialWantPage(t, "GET /auth/link for GitHub", h.Get("/auth/link"), http.StatusOK, "GitHub")
	r = h.PostForm("/auth/link", url.Values{"password": {socialPassword}})
	if u := socialWantSignedIn(t, h, "link GitHub with the password", r, "/account"); u.ID != ownerID {
		t.Errorf("GitHub link: user %q; want %q", u.ID, ownerID)
	}
	socialWantProviders(t, owner, "owner after linking both", "github", "google")
}

// TestSocialLinkWithMail checks journey 4b and LK-2: the owner proves the
// account with a mailed link, which works only in the browser that holds
// the pending link; GET never uses it up; another browser is refused.
func TestSocialLinkWithMail(t *testing.T) {
	t.Parallel()
	rig := socialStart(t, nil)

	t.Run("password account", func(t *testing.T) {
		owner, email := testkit.NewUser(t, rig.g, socialPassword)
		ownerID := socialWantMe(t, owner, "owner").ID
		person := socialGoogleUser(email)
		c := socialPendingLink(t, rig, person, "/auth/google")

		n := len(rig.g.SMTP.Mails(email))
		r := c.PostForm("/auth/link/mail", nil)
		socialWantPage(t, "POST /auth/link/mail", r, http.StatusOK, "sent")
		m := rig.g.SMTP.WaitMail(t, email, n+1, socialMailWait)
		link := m.Link(t)
		if !strings.HasPrefix(link, rig.g.URL+"/auth/link/confirm?token=") {
			t.Fatalf("mailed link %s; want %s/auth/link/confirm?token=…", link, rig.g.URL)
		}
		token := m.Token(t)
		path := strings.TrimPrefix(link, rig.g.URL)

		// GET shows the page and uses nothing up.
		for i := range 2 {
			socialWantPage(t, fmt.Sprintf("GET the confirmation (#%d)", i+1), c.Get(path), http.StatusOK, email)
		}
		socialWantNoSession(t, c, "after GET of the confirmation")
		socialWantProviders(t, owner, "owner after GET of the confirmation")

		// Another browser (the owner's mail app, or someone who got the
		// mail) is refused and links nothing.
		victim := rig.g.Client(t)
		socialWantPage(t, "GET the confirmation in another browser", victim.Get(path), http.StatusBadRequest)
		r = victim.PostForm("/auth/link/confirm", url.Values{"token": {token}})
		socialWantRefused(t, victim, "POST the confirmation in another browser", r, http.StatusBadRequest)
		socialWantProviders(t, owner, "owner after the confirmation in another browser")

		// The browser holding the pending link confirms.
		r = c.PostForm("/auth/link/confirm", url.Values{"token": {token}})
		if u := socialWantSignedIn(t, c, "POST the confirmation", r, "/account"); u.ID != ownerID {
			t.Fatalf("confirmed link: user %q; want the owner %q", u.ID, ownerID)
		}
		socialWantProviders(t, c, "after the confirmation", "google")
		if r := c.PostForm("/auth/link/confirm", url.Values{"token": {token}}); r.Status != http.StatusBadRequest {
			t.Errorf("confirmation used twice: got %d; want 400", r.Status)
		}
		g2 := rig.g.Client(t)
		if u := socialWantSignedIn(t, g2, "Google after linking", socialSignIn(t, g2, rig.google, person, "/auth/google"), "/account"); u.ID != ownerID {
			t.Errorf("Google after linking: user %q; want %q", u.ID, ownerID)
		}
	})

	// An account made with GitHub has no password: the mail is its only
	// proof, and a password is never accepted for it.
	t.Run("account without password", func(t *testing.T) {
		email := testkit.Email(t)
		owner := rig.g.Client(t)
		ownerID := socialWantSignedIn(t, owner, "GitHub sign-up", socialSignIn(t, owner, rig.github, socialGitHubUser(email), "/auth/github"), "/account").ID
		c := socialPendingLink(t, rig, socialGoogleUser(email), "/auth/google")
		page := c.Get("/auth/link")
		socialWantPage(t, "GET /auth/link", page, http.StatusOK, email)
		if strings.Contains(page.Text(), `action="/auth/link"`) {
			t.Errorf("link page of an account without a password offers a password form")
		}
		for _, pw := range []string{"", socialPassword} {
			r := c.PostForm("/auth/link", url.Values{"password": {pw}})
			if r.Status != http.StatusUnauthorized && r.Status != http.StatusBadRequest {
				t.Errorf("POST /auth/link with password %q for an account without one: got %d; want 401 or 400", pw, r.Status)
			}
			socialWantNoSession(t, c, "password for an account without one")
		}
		socialWantProviders(t, owner, "owner after password attempts", "github")

		n := len(rig.g.SMTP.Mails(email))
		socialWantPage(t, "POST /auth/link/mail", c.PostForm("/auth/link/mail", nil), http.StatusOK)
		m := rig.g.SMTP.WaitMail(t, email, n+1, socialMailWait)
		r := c.PostForm("/auth/link/confirm", url.Values{"token": {m.Token(t)}})
		if u := socialWantSignedIn(t, c, "POST the confirmation", r, "/account"); u.ID != ownerID {
			t.Errorf("confirmed link: user %q; want %q", u.ID, ownerID)
		}
		socialWantProviders(t, c, "after the confirmation", "github", "google")
	})
}

// TestSocialVerifiedEmailOA5 checks OA-5: only an address the provider
// verified counts: GitHub's primary and verified one from /user/emails,
// Google's email_verified.
func TestSocialVerifiedEmailOA5(t *testing.T) {
	t.Parallel()
	rig := socialStart(t, nil)

	t.Run("github primary unverified, other verified", func(t *testing.T) {
		primary, other := testkit.Email(t), testkit.Email(t)
		u := socialGitHubUser(primary)
		u.Emails = []testkit.GitHubEmail{{Email: other, Verified: true}, {Email: primary, Primary: true, Verified: false}}
		c := rig.g.Client(t)
		socialWantRefused(t, c, "primary unverified", socialSignIn(t, c, rig.github, u, "/auth/github"), http.StatusForbidden, "no verified email")
		rig.wantNoAccount(t, "primary", primary)
		rig.wantNoAccount(t, "verified secondary", other)
	})

	t.Run("github primary verified among several", func(t *testing.T) {
		primary, other := testkit.Email(t), testkit.Email(t)
		u := socialGitHubUser(primary)
		u.Emails = []testkit.GitHubEmail{{Email: other, Verified: true}, {Email: primary, Primary: true, Verified: true}}
		c := rig.g.Client(t)
		me := socialWantSignedIn(t, c, "primary verified", socialSignIn(t, c, rig.github, u, "/auth/github"), "/account")
		if me.Email != primary {
			t.Errorf("account address %q; want the primary %q", me.Email, primary)
		}
		rig.wantNoAccount(t, "secondary", other)
	})

	t.Run("github no addresses", func(t *testing.T) {
		u := socialGitHubUser("")
		c := rig.g.Client(t)
		socialWantRefused(t, c, "no addresses", socialSignIn(t, c, rig.github, u, "/auth/github"), http.StatusForbidden, "no verified email")
	})

	t.Run("google verified but malformed address", func(t *testing.T) {
		for _, bad := range []string{"not-an-address", "a@b", "x@example.com\r\nBcc: y@example.com", strings.Repeat("a", 250) + "@example.com"} {
			c := rig.g.Client(t)
			socialWantRefused(t, c, fmt.Sprintf("address %q", bad), socialSignIn(t, c, rig.google, socialGoogleUser(bad), "/auth/google"), http.StatusForbidden)
		}
	})

	for name, mutate := range map[string]func(map[string]any){
		"google email_verified false":   nil,
		"google email_verified missing": func(c map[string]any) { delete(c, "email_verified") },
		"google email_verified \"no\"":  func(c map[string]any) { c["email_verified"] = "no" },
	} {
		t.Run(name, func(t *testing.T) {
			email := testkit.Email(t)
			u := socialGoogleUser(email)
			u.EmailVerified = mutate != nil
			rig.google.MutateIDToken(mutate)
			t.Cleanup(func() { rig.google.MutateIDToken(nil) })
			c := rig.g.Client(t)
			socialWantRefused(t, c, name, socialSignIn(t, c, rig.google, u, "/auth/google"), http.StatusForbidden, "no verified email")
			rig.wantNoAccount(t, name, email)
		})
	}
}

// TestSocialPreHijackLK1 checks LK-1: an attacker signs up with the
// victim's address and a password of their own and never verifies; the
// victim then signs in with Google or GitHub. The account is the victim's:
// the attacker's password never signs in, and the attacker's verification
// link is dead.
func TestSocialPreHijackLK1(t *testing.T) {
	t.Parallel()
	rig := socialStart(t, nil)
	for _, p := range []string{"google", "github"} {
		t.Run(p, func(t *testing.T) {
			t.Parallel()
			victim := testkit.Email(t)
			attacker := rig.g.Client(t)
			planted := attacker.SignUp(rig.g, victim, socialPassword)

			c := rig.g.Client(t)
			me := socialWantSignedIn(t, c, "victim's provider sign-in", socialSignIn(t, c, rig.idp(p), socialUserFor(p, victim), "/auth/"+p), "/account")
			if me.Email != victim || me.HasPassword {
				t.Errorf("victim's account %+v; want %s without a password", me, victim)
			}
			if st, id := socialLogin(t, rig.g, victim, socialPassword); st == http.StatusOK || id != "" {
				t.Errorf("attacker's password: got %d user %q; want a refusal", st, id)
			}
			r := attacker.Verify(planted.Token(t), socialPassword)
			testkit.WantAPIError(t, "attacker's verification link", r, http.StatusBadRequest, "invalid_token")
			socialWantNoSession(t, attacker, "attacker after the verification attempt")
			if st, id := socialLogin(t, rig.g, victim, socialPassword); st == http.StatusOK || id != "" {
				t.Errorf("attacker's password after the verification attempt: got %d user %q; want a refusal", st, id)
			}
			if u := socialWantMe(t, c, "victim afterwards"); u.ID != me.ID || u.HasPassword {
				t.Errorf("victim afterwards %+v; want user %s without a password", u, me.ID)
			}
		})
	}
}

// TestSocialUnverifiedNoLinkLK3 checks LK-3: a provider sign-in with an
// unverified address that an existing account has links nothing, creates
// no pending link, and leaves the account as it was.
func TestSocialUnverifiedNoLinkLK3(t *testing.T) {
	t.Parallel()
	rig := socialStart(t, nil)
	owner, email := testkit.NewUser(t, rig.g, socialPassword)
	ownerID := socialWantMe(t, owner, "owner").ID

	gu := socialGoogleUser(email)
	gu.EmailVerified = false
	gh := socialGitHubUser(email)
	gh.EmailVerified = false
	for _, x := range []struct {
		provider string
		u        testkit.IdPUser
	}{{"google", gu}, {"github", gh}} {
		c := rig.g.Client(t)
		socialWantRefused(t, c, x.provider+" unverified", socialSignIn(t, c, rig.idp(x.provider), x.u, "/auth/"+x.provider), http.StatusForbidden)
		if r := c.Get("/auth/link"); r.Status == http.StatusOK {
			t.Errorf("%s unverified: a link page is offered", x.provider)
		}
		if _, ok := rig.identityDoc(t, x.provider+":"+socialSubject(x.provider, x.u)); ok {
			t.Errorf("%s unverified: an identity was stored", x.provider)
		}
	}
	socialWantProviders(t, owner, "owner")
	if st, id := socialLogin(t, rig.g, email, socialPassword); st != http.StatusOK || id != ownerID {
		t.Errorf("owner's password: got %d user %q; want 200 user %q", st, id, ownerID)
	}
}

// TestSocialLinkLockout checks AB-1 for the password proof of a link: wrong
// passwords at /auth/link count as failed sign-ins of the account, so
// guessing there backs off like the login form, and a right password
// waits too.
func TestSocialLinkLockout(t *testing.T) {
	t.Parallel()
	rig := socialStart(t, map[string]string{"GATEHOUSE_RATE_LIMITS_LOCKOUT_AFTER": "3"})
	_, email := testkit.NewUser(t, rig.g, socialPassword)
	c := socialPendingLink(t, rig, socialGoogleUser(email), "/auth/google")
	for i := range 3 {
		r := c.PostForm("/auth/link", url.Values{"password": {fmt.Sprintf("%s %d", socialWrongPW, i)}})
		socialWantPage(t, fmt.Sprintf("wrong password #%d", i+1), r, http.StatusUnauthorized)
	}
	r := c.PostForm("/auth/link", url.Values{"password": {socialPassword}})
	socialWantPage(t, "right password during the back-off", r, http.StatusTooManyRequests)
	if r.Header.Get("Retry-After") == "" {
		t.Errorf("429 without Retry-After")
	}
	socialWantNoSession(t, c, "during the back-off")
	if st, _ := socialLogin(t, rig.g, email, socialPassword); st != http.StatusTooManyRequests {
		t.Errorf("password login during the back-off started at /auth/link: got %d; want 429", st)
	}
}
