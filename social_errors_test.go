package main

// Black-box tests of provider flow errors (OA-6).

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

// TestSocialProviderErrors checks journey 6 and OA-6: a refusal at the
// provider, a GitHub account without a verified address, a stale, forged or
// foreign callback each end on a clear page, never a 500, and sign no one in.
func TestSocialProviderErrors(t *testing.T) {
	t.Parallel()
	rig := socialStart(t, nil)

	t.Run("access denied", func(t *testing.T) {
		email := testkit.Email(t)
		for _, p := range []string{"google", "github"} {
			idp := rig.idp(p)
			idp.Deny("access_denied")
			c := rig.g.Client(t)
			r := socialSignIn(t, c, idp, socialUserFor(p, email), "/auth/"+p)
			idp.Deny("")
			socialWantRefused(t, c, p+" access_denied", r, http.StatusBadRequest, "cancelled")
			if n := len(idp.TokenRequests()); n != 0 {
				t.Errorf("%s: %d token requests after a denial; want none", p, n)
			}
		}
		rig.wantNoAccount(t, "after denials", email)
	})

	t.Run("github without verified email", func(t *testing.T) {
		primary, other := testkit.Email(t), testkit.Email(t)
		u := socialGitHubUser(primary)
		u.Emails = []testkit.GitHubEmail{{Email: primary, Primary: true, Verified: false}, {Email: other, Verified: false}}
		c := rig.g.Client(t)
		socialWantRefused(t, c, "all addresses unverified", socialSignIn(t, c, rig.github, u, "/auth/github"), http.StatusForbidden, "no verified email")
		rig.wantNoAccount(t, "primary", primary)
		rig.wantNoAccount(t, "other", other)
		if _, ok := rig.identityDoc(t, fmt.Sprintf("github:%d", u.ID)); ok {
			t.Errorf("an identity was stored for a GitHub account without a verified address")
		}
	})

	t.Run("replayed callback", func(t *testing.T) {
		c := rig.g.Client(t)
		rig.google.SetUser(socialGoogleUser(testkit.Email(t)))
		cb := c.Callback("/auth/google")
		first := c.Get(cb)
		me := socialWantSignedIn(t, c, "first use of the callback", first, "/account")
		again := c.Get(cb)
		socialWantPage(t, "second use of the callback", again, http.StatusBadRequest, "start again")
		if ck := socialSetCookie(again, testkit.CookieName); ck != nil && ck.Value != "" {
			t.Errorf("the replayed callback set a session cookie")
		}
		if u := socialWantMe(t, c, "after the replay"); u.ID != me.ID {
			t.Errorf("after the replay: user %q; want %q", u.ID, me.ID)
		}
	})

	t.Run("parallel replays", func(t *testing.T) {
		c := rig.g.Client(t)
		rig.google.SetUser(socialGoogleUser(testkit.Email(t)))
		cb := c.Callback("/auth/google")
		const n = 10
		statuses := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				resp, err := c.HTTP.Get(c.Base + cb)
				if err != nil {
					return // status 0 fails the tally below
				}
				resp.Body.Close()
				statuses[i] = resp.StatusCode
			})
		}
		wg.Wait()
		won, refused := 0, 0
		for _, st := range statuses {
			switch st {
			case http.StatusSeeOther:
				won++
			case http.StatusBadRequest:
				refused++
			}
		}
		if won != 1 || refused != n-1 {
			t.Errorf("%d parallel uses of one callback: statuses %v; want exactly one 303 and the rest 400", n, statuses)
		}
	})

	t.Run("link pages without a pending link", func(t *testing.T) {
		c := rig.g.Client(t)
		c.SetCookie(&http.Cookie{Name: socialLinkCookie, Value: base64.RawURLEncoding.EncodeToString([]byte(socialDigits(32)))})
		for _, x := range []*testkit.Client{rig.g.Client(t), c} {
			socialWantRefused(t, x, "GET /auth/link", x.Get("/auth/link"), http.StatusBadRequest)
			socialWantRefused(t, x, "POST /auth/link", x.PostForm("/auth/link", url.Values{"password": {socialPassword}}), http.StatusBadRequest)
			socialWantRefused(t, x, "POST /auth/link/mail", x.PostForm("/auth/link/mail", nil), http.StatusBadRequest)
			socialWantRefused(t, x, "GET /auth/link/confirm", x.Get("/auth/link/confirm?token=abc"), http.StatusBadRequest)
			socialWantRefused(t, x, "POST /auth/link/confirm", x.PostForm("/auth/link/confirm", url.Values{"token": {"abc"}}), http.StatusBadRequest)
		}
	})

	t.Run("forged and incomplete callbacks", func(t *testing.T) {
		c := rig.g.Client(t)
		rig.google.SetUser(socialGoogleUser(testkit.Email(t)))
		_ = c.Callback("/auth/google") // c has a binding cookie and a flow under way
		tokens := len(rig.google.TokenRequests())
		forged := base64.RawURLEncoding.EncodeToString([]byte(socialDigits(32)))
		for name, path := range map[string]string{
			"random state":     "/auth/google/callback?code=abc&state=" + forged,
			"missing state":    "/auth/google/callback?code=abc",
			"empty state":      "/auth/google/callback?code=abc&state=",
			"huge state":       "/auth/google/callback?code=abc&state=" + strings.Repeat("A", 4000),
			"no query":         "/auth/google/callback",
			"error, no state":  "/auth/google/callback?error=access_denied",
			"two states":       "/auth/google/callback?code=abc&state=" + forged + "&state=x",
			"non-UTF-8 state":  "/auth/google/callback?code=abc&state=%ff%fe",
			"github, no state": "/auth/github/callback?code=abc",
		} {
			socialWantRefused(t, c, name, c.Get(path), http.StatusBadRequest)
		}
		if n := len(rig.google.TokenRequests()); n != tokens {
			t.Errorf("forged callbacks caused %d token requests; want none", n-tokens)
		}
	})

	t.Run("callback in another browser", func(t *testing.T) {
		attacker := rig.g.Client(t)
		rig.google.SetUser(socialGoogleUser(testkit.Email(t)))
		cb := attacker.Callback("/auth/google")
		// The victim's browser has a binding cookie of its own.
		victim := rig.g.Client(t)
		_ = victim.Callback("/auth/google")
		socialWantRefused(t, victim, "attacker's callback in the victim's browser", victim.Get(cb), http.StatusBadRequest)
		fresh := rig.g.Client(t)
		socialWantRefused(t, fresh, "callback without a binding cookie", fresh.Get(cb), http.StatusBadRequest)
	})
}
