package main

// Black-box tests of connecting and disconnecting providers (LK-4).

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

// TestSocialConnectDisconnect checks journey 5 and LK-4: connecting and
// disconnecting providers from /account and the API; the last way to sign
// in cannot be removed; an identity linked to one user cannot be connected
// by another; one account per provider per user.
func TestSocialConnectDisconnect(t *testing.T) {
	t.Parallel()

	t.Run("password user", func(t *testing.T) {
		t.Parallel()
		rig := socialStart(t, nil)
		c, email := testkit.NewUser(t, rig.g, socialPassword)
		me := socialWantMe(t, c, "user")
		page := c.Get("/account")
		socialWantPage(t, "GET /account", page, http.StatusOK)
		for _, p := range []string{"google", "github"} {
			if !strings.Contains(page.Text(), `action="/account/identities/`+p+`/connect"`) {
				t.Errorf("/account has no connect form for %s", p)
			}
		}

		// Connecting is a form POST answered by a redirect to the
		// provider; browsers apply form-action to that redirect.
		csp := page.Header.Get("Content-Security-Policy")
		for _, idp := range []*testkit.FakeIdP{rig.google, rig.github} {
			if !strings.Contains(csp, idp.URL) {
				t.Errorf("CSP %q: form-action does not allow %s's authorization page %s", csp, idp.Kind, idp.URL)
			}
		}

		gh := socialGitHubUser("gh-" + email)
		r := socialConnect(t, rig, c, "github", gh)
		testkit.WantRedirect(t, "connect callback", r, http.StatusSeeOther, "/account?notice=connected")
		ids := socialIdentities(t, c)
		if len(ids) != 1 || ids[0].Provider != "github" || ids[0].Email != "gh-"+email || time.Since(ids[0].LinkedAt) > time.Minute || ids[0].LinkedAt.After(time.Now().Add(time.Minute)) {
			t.Fatalf("identities after connecting %+v; want github with gh-%s linked just now", ids, email)
		}
		socialWantProviders(t, c, "after connecting", "github")
		if u := socialWantMe(t, c, "after connecting"); u.ID != me.ID {
			t.Errorf("connecting changed the signed-in user to %q; want %q", u.ID, me.ID)
		}
		other := rig.g.Client(t)
		if u := socialWantSignedIn(t, other, "GitHub sign-in after connecting", socialSignIn(t, other, rig.github, gh, "/auth/github"), "/account"); u.ID != me.ID {
			t.Errorf("GitHub sign-in after connecting: user %q; want %q", u.ID, me.ID)
		}

		r = c.PostForm("/account/identities/github/disconnect", nil)
		testkit.WantRedirect(t, "disconnect form", r, http.StatusSeeOther, "/account?notice=disconnected")
		socialWantProviders(t, c, "after disconnecting")

		r = socialConnect(t, rig, c, "google", socialGoogleUser("g-"+email))
		testkit.WantRedirect(t, "connect google", r, http.StatusSeeOther, "/account?notice=connected")
		socialWantProviders(t, c, "after connecting google", "google")
		if r := c.SendJSON(http.MethodDelete, "/api/v1/identities/google", nil); r.Status != http.StatusNoContent {
			t.Errorf("DELETE /api/v1/identities/google: got %d; want 204\n%s", r.Status, r.Body)
		}
		socialWantProviders(t, c, "after DELETE")
		testkit.WantAPIError(t, "DELETE an identity that is not linked", c.SendJSON(http.MethodDelete, "/api/v1/identities/google", nil), http.StatusNotFound, "not_found")
	})

	t.Run("last login method", func(t *testing.T) {
		t.Parallel()
		rig := socialStart(t, nil)
		email := testkit.Email(t)
		person := socialGoogleUser(email)
		c := rig.g.Client(t)
		me := socialWantSignedIn(t, c, "Google sign-up", socialSignIn(t, c, rig.google, person, "/auth/google"), "/account")

		testkit.WantAPIError(t, "DELETE the only identity", c.SendJSON(http.MethodDelete, "/api/v1/identities/google", nil), http.StatusConflict, "last_login_method")
		socialWantPage(t, "disconnect form for the only identity", c.PostForm("/account/identities/google/disconnect", nil), http.StatusConflict)
		socialWantProviders(t, c, "after refused disconnects", "google")

		r := socialConnect(t, rig, c, "github", socialGitHubUser("gh-"+email))
		testkit.WantRedirect(t, "connect github", r, http.StatusSeeOther, "/account?notice=connected")
		socialWantProviders(t, c, "with two identities", "github", "google")
		testkit.WantRedirect(t, "disconnect google with two identities", c.PostForm("/account/identities/google/disconnect", nil), http.StatusSeeOther, "/account?notice=disconnected")
		socialWantProviders(t, c, "after disconnecting google", "github")
		testkit.WantAPIError(t, "DELETE the remaining identity", c.SendJSON(http.MethodDelete, "/api/v1/identities/github", nil), http.StatusConflict, "last_login_method")
		socialWantProviders(t, c, "after refusing the last one", "github")
		if u := socialWantMe(t, c, "still signed in"); u.ID != me.ID {
			t.Errorf("user %q; want %q", u.ID, me.ID)
		}
		// The unlinked Google account no longer signs in this user: its
		// address is the account's, so the owner would have to prove it.
		socialPendingLink(t, rig, person, "/auth/google")
	})

	t.Run("identity of another user", func(t *testing.T) {
		t.Parallel()
		rig := socialStart(t, nil)
		gh := socialGitHubUser(testkit.Email(t))
		a := rig.g.Client(t)
		aID := socialWantSignedIn(t, a, "A signs up with GitHub", socialSignIn(t, a, rig.github, gh, "/auth/github"), "/account").ID

		b, _ := testkit.NewUser(t, rig.g, socialPassword)
		r := socialConnect(t, rig, b, "github", gh)
		socialWantPage(t, "B connects A's GitHub", r, http.StatusConflict, "already linked")
		socialWantProviders(t, b, "B after the refusal")
		socialWantProviders(t, a, "A after B's attempt", "github")
		x := rig.g.Client(t)
		if u := socialWantSignedIn(t, x, "GitHub sign-in after B's attempt", socialSignIn(t, x, rig.github, gh, "/auth/github"), "/account"); u.ID != aID {
			t.Errorf("GitHub sign-in after B's attempt: user %q; want A %q", u.ID, aID)
		}
	})

	t.Run("second account of a provider", func(t *testing.T) {
		t.Parallel()
		rig := socialStart(t, nil)
		c, email := testkit.NewUser(t, rig.g, socialPassword)
		me := socialWantMe(t, c, "user")
		first := socialGitHubUser("first-" + email)
		testkit.WantRedirect(t, "connect the first GitHub account", socialConnect(t, rig, c, "github", first), http.StatusSeeOther, "/account?notice=connected")

		second := socialGitHubUser("second-" + email)
		r := socialConnect(t, rig, c, "github", second)
		socialWantPage(t, "connect a second GitHub account", r, http.StatusConflict, "different GitHub account")
		ids := socialIdentities(t, c)
		if len(ids) != 1 || ids[0].Email != "first-"+email {
			t.Errorf("identities after the refusal %+v; want only the first GitHub account", ids)
		}
		x := rig.g.Client(t)
		if u := socialWantSignedIn(t, x, "first GitHub account", socialSignIn(t, x, rig.github, first, "/auth/github"), "/account"); u.ID != me.ID {
			t.Errorf("first GitHub account signs in %q; want %q", u.ID, me.ID)
		}
		y := rig.g.Client(t)
		if u := socialWantSignedIn(t, y, "second GitHub account", socialSignIn(t, y, rig.github, second, "/auth/github"), "/account"); u.ID == me.ID {
			t.Errorf("the refused second GitHub account signs in as the user %s", me.ID)
		}
	})
}

// TestSocialConnectCSRF checks LK-4: connecting and disconnecting are
// refused from another site and without a session.
func TestSocialConnectCSRF(t *testing.T) {
	t.Parallel()
	rig := socialStart(t, nil)
	c, _ := testkit.NewUser(t, rig.g, socialPassword)
	testkit.WantRedirect(t, "connect github", socialConnect(t, rig, c, "github", socialGitHubUser(testkit.Email(t))), http.StatusSeeOther, "/account?notice=connected")
	n := len(rig.google.Authorizations())

	for _, h := range []map[string]string{
		{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
		{"Sec-Fetch-Site": "same-site", "Origin": "http://sub.127.0.0.1.example"},
		{"Origin": "https://evil.example"},
	} {
		for _, path := range []string{"/account/identities/google/connect", "/account/identities/github/disconnect"} {
			req := c.NewRequest(http.MethodPost, path, strings.NewReader(""))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range h {
				req.Header.Set(k, v)
			}
			if r := c.Do(req); r.Status != http.StatusForbidden {
				t.Errorf("POST %s with %v: got %d Location %q; want 403", path, h, r.Status, r.Header.Get("Location"))
			}
		}
	}
	if got := len(rig.google.Authorizations()); got != n {
		t.Errorf("cross-site connects reached the provider %d times; want never", got-n)
	}
	socialWantProviders(t, c, "after cross-site requests", "github")

	anon := rig.g.Client(t)
	r := anon.PostForm("/account/identities/google/connect", nil)
	testkit.WantRedirect(t, "connect without a session", r, http.StatusSeeOther, "/login")
	if r := anon.SendJSON(http.MethodDelete, "/api/v1/identities/github", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("DELETE /api/v1/identities without a session: got %d; want 401", r.Status)
	}
	if r := anon.Get("/api/v1/identities"); r.Status != http.StatusUnauthorized {
		t.Errorf("GET /api/v1/identities without a session: got %d; want 401", r.Status)
	}
}

// TestSocialConnectNeedsSameSession checks that a connect flow finishes
// only in the session that started it: a callback that arrives after the
// user signed out (or in another session) links nothing.
func TestSocialConnectNeedsSameSession(t *testing.T) {
	t.Parallel()
	rig := socialStart(t, nil)
	c, email := testkit.NewUser(t, rig.g, socialPassword)
	rig.github.SetUser(socialGitHubUser(testkit.Email(t)))
	cb := c.CallbackFrom(c.PostForm("/account/identities/github/connect", nil))
	if r := c.PostJSON("/api/v1/logout", nil); r.Status != http.StatusNoContent {
		t.Fatalf("logout: got %d; want 204", r.Status)
	}
	if r := c.Login(email, socialPassword); r.Status != http.StatusOK {
		t.Fatalf("login: got %d; want 200", r.Status)
	}
	r := c.Get(cb)
	socialWantPage(t, "connect callback in a new session", r, http.StatusBadRequest)
	socialWantProviders(t, c, "after the stale connect")
}

// TestSocialRecentSignIn checks LK-4 and journey 2: connecting a provider
// and setting a first password need a recent sign-in. It waits out the
// smallest session.recent_sign_in (1m), so it is skipped with -short.
func TestSocialRecentSignIn(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock()
	rig := socialStartWith(t, runAt(clock), map[string]string{"GATEHOUSE_SESSION_RECENT_SIGN_IN": "1m"})
	email := testkit.Email(t)
	person := socialGoogleUser(email)
	social := rig.g.Client(t)
	socialWantSignedIn(t, social, "Google sign-up", socialSignIn(t, social, rig.google, person, "/auth/google"), "/account")
	local, _ := testkit.NewUser(t, rig.g, socialPassword)

	clock.Advance(61 * time.Second)
	n := len(rig.github.Authorizations())

	r := social.PostForm("/account/password", url.Values{"new_password": {socialPassword}})
	testkit.WantRedirect(t, "first password with an old sign-in", r, http.StatusSeeOther, "/login?notice=reauth")
	if u := socialWantMe(t, social, "after the refused password"); u.HasPassword {
		t.Errorf("a first password was set with an old sign-in")
	}
	if st, _ := socialLogin(t, rig.g, email, socialPassword); st != http.StatusUnauthorized {
		t.Errorf("login with the refused password: got %d; want 401", st)
	}
	for who, c := range map[string]*testkit.Client{"social user": social, "password user": local} {
		r := c.PostForm("/account/identities/github/connect", nil)
		testkit.WantRedirect(t, who+" connects with an old sign-in", r, http.StatusSeeOther, "/login?notice=reauth")
	}
	if got := len(rig.github.Authorizations()); got != n {
		t.Errorf("connects with an old sign-in reached the provider %d times; want never", got-n)
	}
	socialWantProviders(t, local, "password user after the refusal")

	// A fresh sign-in makes both possible again.
	socialWantSignedIn(t, social, "sign in again", socialSignIn(t, social, rig.google, person, "/auth/google"), "/account")
	r = social.PostForm("/account/password", url.Values{"new_password": {socialPassword}})
	testkit.WantRedirect(t, "first password after signing in again", r, http.StatusSeeOther, "/account?notice=password_set")
	r = socialConnect(t, rig, social, "github", socialGitHubUser("gh-"+email))
	testkit.WantRedirect(t, "connect after signing in again", r, http.StatusSeeOther, "/account?notice=connected")
}
