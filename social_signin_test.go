package main

// Black-box tests of provider sign-in journeys.

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

// TestSocialButtons checks journey 1: the provider buttons on /login and
// /signup exist exactly for configured providers and carry return_to; the
// routes of an unconfigured provider answer 404.
func TestSocialButtons(t *testing.T) {
	t.Parallel()
	google := testkit.StartIdP(t, testkit.FakeGoogle)
	github := testkit.StartIdP(t, testkit.FakeGitHub)
	both := maps.Clone(google.Env())
	maps.Copy(both, github.Env())
	labels := map[string]string{"google": "Continue with Google", "github": "Continue with GitHub"}
	fakes := map[string]*testkit.FakeIdP{"google": google, "github": github}

	for _, tc := range []struct {
		name       string
		env        map[string]string
		configured []string
	}{
		{"both", both, []string{"google", "github"}},
		{"google only", google.Env(), []string{"google"}},
		{"github only", github.Env(), []string{"github"}},
		{"none", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := start(t, tc.env)
			testkit.NoServerErrors(t, g)
			c := g.Client(t)
			for _, page := range []string{"/login", "/signup"} {
				plain := c.Get(page)
				withTarget := c.Get(page + "?return_to=" + url.QueryEscape("/app/dash"))
				socialWantPage(t, page, plain, http.StatusOK)
				socialWantPage(t, page+"?return_to", withTarget, http.StatusOK)
				for _, p := range []string{"google", "github"} {
					on := slices.Contains(tc.configured, p)
					if got := strings.Contains(plain.Text(), labels[p]); got != on {
						t.Errorf("%s: shows %q: %v; want %v", page, labels[p], got, on)
					}
					if got := strings.Contains(plain.Text(), `href="/auth/`+p+`"`); got != on {
						t.Errorf("%s: links to /auth/%s: %v; want %v", page, p, got, on)
					}
					linked := `href="/auth/` + p + `?return_to=%2fapp%2fdash"`
					if got := strings.Contains(strings.ToLower(withTarget.Text()), linked); got != on {
						t.Errorf("%s?return_to=/app/dash: has %s: %v; want %v", page, linked, got, on)
					}
				}
			}
			for _, p := range []string{"google", "github"} {
				begin := c.Get("/auth/" + p)
				callback := c.Get("/auth/" + p + "/callback?code=abc&state=" + strings.Repeat("A", 43))
				if slices.Contains(tc.configured, p) {
					testkit.WantRedirect(t, "GET /auth/"+p, begin, http.StatusFound, fakes[p].URL+"/")
					continue
				}
				socialWantPage(t, "GET /auth/"+p+" (not configured)", begin, http.StatusNotFound)
				socialWantPage(t, "GET /auth/"+p+"/callback (not configured)", callback, http.StatusNotFound)
			}
			if r := c.Get("/auth/gitlab"); r.Status != http.StatusNotFound {
				t.Errorf("GET /auth/gitlab: got %d; want 404", r.Status)
			}
		})
	}
}

// TestSocialNewUser checks journey 2: a new person signs in with Google or
// GitHub and lands signed in with a verified account without a password;
// right after, they set a password from /account with only the new one,
// and then sign in either way as the same user.
func TestSocialNewUser(t *testing.T) {
	t.Parallel()
	rig := socialStart(t, nil)
	for _, provider := range []string{"google", "github"} {
		t.Run(provider, func(t *testing.T) {
			t.Parallel()
			idp := rig.idp(provider)
			email := testkit.Email(t)
			person := socialUserFor(provider, email)
			c := rig.g.Client(t)
			r := socialSignIn(t, c, idp, person, "/auth/"+provider+"?return_to="+url.QueryEscape("/app/welcome?tab=1"))
			me := socialWantSignedIn(t, c, "first sign-in", r, "/app/welcome?tab=1")
			if me.Email != email || !me.EmailVerified || me.HasPassword || !slices.Equal(me.Providers, []string{provider}) {
				t.Errorf("new user %+v; want email %s, email_verified, no password, providers [%s]", me, email, provider)
			}
			ids := socialIdentities(t, c)
			if len(ids) != 1 || ids[0].Provider != provider || ids[0].Email != email || time.Since(ids[0].LinkedAt) > time.Minute {
				t.Errorf("identities %+v; want one %s identity with %s linked just now", ids, provider, email)
			}
			if st, _ := socialLogin(t, rig.g, email, socialPassword); st != http.StatusUnauthorized {
				t.Errorf("password login before a password is set: got %d; want 401", st)
			}

			// Without return_to the person lands on /account.
			other := rig.g.Client(t)
			r = socialSignIn(t, other, idp, socialUserFor(provider, testkit.Email(t)), "/auth/"+provider)
			if u := socialWantSignedIn(t, other, "sign-in without return_to", r, "/account"); u.ID == me.ID {
				t.Errorf("a second person got the first person's user id %s", me.ID)
			}

			// A first password, with only the new one, right after signing in.
			r = c.PostForm("/account/password", url.Values{"new_password": {socialPassword}})
			testkit.WantRedirect(t, "set a first password", r, http.StatusSeeOther, "/account?notice=password_set")
			if u := socialWantMe(t, c, "after setting a password"); !u.HasPassword {
				t.Errorf("has_password after setting one: false; want true")
			}
			if st, id := socialLogin(t, rig.g, email, socialPassword); st != http.StatusOK || id != me.ID {
				t.Errorf("password login: got %d user %q; want 200 user %q", st, id, me.ID)
			}
			// From now on a change needs the current password (PW-5).
			r = c.PostForm("/account/password", url.Values{"new_password": {socialOtherPW}})
			if r.Status == http.StatusSeeOther || r.Status >= 500 {
				t.Errorf("second password without the current one: got %d Location %q; want a refusal", r.Status, r.Header.Get("Location"))
			}
			if st, _ := socialLogin(t, rig.g, email, socialOtherPW); st != http.StatusUnauthorized {
				t.Errorf("login with a password set without the current one: got %d; want 401", st)
			}
			// The provider still signs in the same user.
			again := rig.g.Client(t)
			r = socialSignIn(t, again, idp, person, "/auth/"+provider)
			if u := socialWantSignedIn(t, again, "provider sign-in after setting a password", r, "/account"); u.ID != me.ID {
				t.Errorf("provider sign-in: user %q; want %q", u.ID, me.ID)
			}
		})
	}
}

// TestSocialReturningBySubject checks journey 3 and OA-4: a returning
// person is recognised by the provider's subject (GitHub: the numeric id),
// never by email or login.
func TestSocialReturningBySubject(t *testing.T) {
	t.Parallel()
	rig := socialStart(t, nil)

	t.Run("google", func(t *testing.T) {
		t.Parallel()
		first, later := testkit.Email(t), testkit.Email(t)
		person := socialGoogleUser(first)
		c := rig.g.Client(t)
		me := socialWantSignedIn(t, c, "first sign-in", socialSignIn(t, c, rig.google, person, "/auth/google"), "/account")

		// Same sub, another address: the same user.
		moved := person
		moved.Email = later
		c2 := rig.g.Client(t)
		if u := socialWantSignedIn(t, c2, "same sub, new address", socialSignIn(t, c2, rig.google, moved, "/auth/google"), "/account"); u.ID != me.ID {
			t.Errorf("same sub with another address: user %q; want %q", u.ID, me.ID)
		}

		// Another sub with the first user's address: not that user; the
		// address belongs to an account, so its owner must prove it.
		socialPendingLink(t, rig, socialGoogleUser(first), "/auth/google")

		// Another sub with the address the first sub moved to (not an
		// account's address): a new, different user.
		c3 := rig.g.Client(t)
		if u := socialWantSignedIn(t, c3, "other sub", socialSignIn(t, c3, rig.google, socialGoogleUser(later), "/auth/google"), "/account"); u.ID == me.ID {
			t.Errorf("another sub with the address the first sub now has signed in as the first user %s", me.ID)
		}
	})

	t.Run("github", func(t *testing.T) {
		t.Parallel()
		person := socialGitHubUser(testkit.Email(t))
		c := rig.g.Client(t)
		me := socialWantSignedIn(t, c, "first sign-in", socialSignIn(t, c, rig.github, person, "/auth/github"), "/account")

		// Same numeric id, new login and address: the same user.
		renamed := person
		renamed.Login, renamed.Email = "renamed-"+person.Login, testkit.Email(t)
		c2 := rig.g.Client(t)
		if u := socialWantSignedIn(t, c2, "same id, new login", socialSignIn(t, c2, rig.github, renamed, "/auth/github"), "/account"); u.ID != me.ID {
			t.Errorf("same id with another login: user %q; want %q", u.ID, me.ID)
		}

		// Another id with the old login: someone else.
		impostor := socialGitHubUser(testkit.Email(t))
		impostor.Login = person.Login
		c3 := rig.g.Client(t)
		if u := socialWantSignedIn(t, c3, "other id, same login", socialSignIn(t, c3, rig.github, impostor, "/auth/github"), "/account"); u.ID == me.ID {
			t.Errorf("another GitHub id with the same login signed in as %s", me.ID)
		}
	})
}

// TestSocialAutoLink checks the opt-in auto_link_verified_email: a verified
// provider address links to the existing account at once; an unverified
// one still never does (LK-3).
func TestSocialAutoLink(t *testing.T) {
	t.Parallel()
	rig := socialStart(t, map[string]string{"GATEHOUSE_PROVIDERS_AUTO_LINK_VERIFIED_EMAIL": "true"})
	owner, email := testkit.NewUser(t, rig.g, socialPassword)
	ownerID := socialWantMe(t, owner, "owner").ID

	unverified := socialGoogleUser(email)
	unverified.EmailVerified = false
	c := rig.g.Client(t)
	socialWantRefused(t, c, "unverified address with auto-link", socialSignIn(t, c, rig.google, unverified, "/auth/google"), http.StatusForbidden)
	socialWantProviders(t, owner, "owner after an unverified sign-in")

	c = rig.g.Client(t)
	r := socialSignIn(t, c, rig.google, socialGoogleUser(email), "/auth/google?return_to=%2Fapp")
	if u := socialWantSignedIn(t, c, "verified address with auto-link", r, "/app"); u.ID != ownerID {
		t.Errorf("auto-linked sign-in: user %q; want %q", u.ID, ownerID)
	}
	socialWantProviders(t, owner, "owner after auto-link", "google")
}

// TestSocialSPA checks journey 7: an SPA starts the flow with a plain link
// and return_to on an allowed origin, and gets the session cookie; other
// targets fall back to /account (RD-1).
func TestSocialSPA(t *testing.T) {
	t.Parallel()
	rig := socialStart(t, map[string]string{"GATEHOUSE_REDIRECTS_ALLOWED_HOSTS": socialSPA})
	for _, p := range []string{"google", "github"} {
		t.Run(p, func(t *testing.T) {
			t.Parallel()
			for _, tc := range []struct{ target, want string }{
				{socialSPA + "/after?x=1", socialSPA + "/after?x=1"},
				{"http://evil.example:5173/after", "/account"},
				{"http://spa.example:5174/after", "/account"},
				{"//evil.example/after", "/account"},
				{"/\\evil.example", "/account"},
				{"javascript:alert(1)", "/account"},
			} {
				c := rig.g.Client(t)
				r := socialSignIn(t, c, rig.idp(p), socialUserFor(p, testkit.Email(t)), "/auth/"+p+"?return_to="+url.QueryEscape(tc.target))
				socialWantSignedIn(t, c, "return_to="+tc.target, r, tc.want)
			}
		})
	}
}

// TestSocialRestartMidFlow checks RL-5: a restart of Gatehouse between the
// redirect to the provider and the callback loses neither a sign-in nor a
// connect flow.
func TestSocialRestartMidFlow(t *testing.T) {
	t.Parallel()
	rig := socialStart(t, nil)
	signIn := rig.g.Client(t)
	rig.google.SetUser(socialGoogleUser(testkit.Email(t)))
	cbSignIn := signIn.Callback("/auth/google?return_to=%2Fapp%2Fafter")

	connector, _ := testkit.NewUser(t, rig.g, socialPassword)
	rig.github.SetUser(socialGitHubUser(testkit.Email(t)))
	cbConnect := connector.CallbackFrom(connector.PostForm("/account/identities/github/connect", nil))

	rig.restart(t)

	socialWantSignedIn(t, signIn, "sign-in callback after a restart", signIn.Get(cbSignIn), "/app/after")
	testkit.WantRedirect(t, "connect callback after a restart", connector.Get(cbConnect), http.StatusSeeOther, "/account?notice=connected")
	socialWantProviders(t, connector, "after the restart", "github")
}

// TestSocialNewSessionSE1 checks SE-1 for provider sign-ins and links:
// each gives a new session id; the session the browser had before ends,
// and a planted cookie never becomes a signed-in one.
func TestSocialNewSessionSE1(t *testing.T) {
	t.Parallel()
	rig := socialStart(t, nil)
	replay := func(value string) int {
		x := rig.g.Client(t)
		x.SetCookie(&http.Cookie{Name: testkit.CookieName, Value: value})
		st, _ := socialMe(t, x)
		return st
	}

	c, _ := testkit.NewUser(t, rig.g, socialPassword)
	before := c.Cookie(testkit.CookieName).Value
	me := socialWantSignedIn(t, c, "Google sign-in while signed in", socialSignIn(t, c, rig.google, socialGoogleUser(testkit.Email(t)), "/auth/google"), "/account")
	if after := c.Cookie(testkit.CookieName).Value; after == before {
		t.Errorf("the session cookie is unchanged by a provider sign-in")
	}
	if st := replay(before); st != http.StatusUnauthorized {
		t.Errorf("the session before the provider sign-in: got %d; want 401 (ended)", st)
	}
	if u := socialWantMe(t, c, "after"); u.ID != me.ID {
		t.Errorf("after: user %q; want %q", u.ID, me.ID)
	}

	// A cookie planted before the flow is replaced, at the callback and at
	// the link.
	const planted = "planted-session-value"
	p := rig.g.Client(t)
	p.SetCookie(&http.Cookie{Name: testkit.CookieName, Value: planted})
	socialWantSignedIn(t, p, "sign-in with a planted cookie", socialSignIn(t, p, rig.github, socialGitHubUser(testkit.Email(t)), "/auth/github"), "/account")
	if v := p.Cookie(testkit.CookieName).Value; v == planted {
		t.Errorf("the planted cookie survived a provider sign-in")
	}
	_, email := testkit.NewUser(t, rig.g, socialPassword)
	l := rig.g.Client(t)
	l.SetCookie(&http.Cookie{Name: testkit.CookieName, Value: planted})
	socialPendingLinkIn(t, rig, l, "google", socialGoogleUser(email), "/auth/google")
	socialWantSignedIn(t, l, "link with a planted cookie", l.PostForm("/auth/link", url.Values{"password": {socialPassword}}), "/account")
	if v := l.Cookie(testkit.CookieName).Value; v == planted {
		t.Errorf("the planted cookie survived a link")
	}
	if st := replay(planted); st != http.StatusUnauthorized {
		t.Errorf("the planted cookie: got %d; want 401", st)
	}
}

// TestSocialBeginRateLimited checks that starting provider sign-ins is
// limited per client IP (each start stores a flow state): over the limit,
// a 429 page with Retry-After and no redirect to the provider.
func TestSocialBeginRateLimited(t *testing.T) {
	t.Parallel()
	rig := socialStart(t, map[string]string{"GATEHOUSE_RATE_LIMITS_PER_IP": "3"})
	c := rig.g.Client(t)
	for i := range 3 {
		testkit.WantRedirect(t, fmt.Sprintf("start %d", i+1), c.Get("/auth/google"), http.StatusFound, rig.google.URL)
	}
	r := c.Get("/auth/google")
	socialWantPage(t, "start over the limit", r, http.StatusTooManyRequests)
	if r.Header.Get("Retry-After") == "" {
		t.Errorf("start over the limit: no Retry-After header")
	}
	if auths := len(rig.google.Authorizations()); auths != 0 {
		t.Errorf("the provider saw %d authorization requests; want 0 (the client never followed)", auths)
	}
}
