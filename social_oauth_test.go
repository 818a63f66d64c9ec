package main

// Black-box tests of the OAuth/OIDC protocol properties (OA-1..4, IN-4).

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

// TestSocialStateOA1 checks OA-1: the state is 32 random bytes, different
// for every flow, never taken from the caller, single use, and bound to
// the provider: Google's callback delivered to GitHub's fails.
func TestSocialStateOA1(t *testing.T) {
	t.Parallel()
	rig := socialStart(t, nil)

	t.Run("random and unique", func(t *testing.T) {
		rig.google.SetUser(socialGoogleUser(testkit.Email(t)))
		rig.github.SetUser(socialGitHubUser(testkit.Email(t)))
		seen := map[string]bool{}
		a := rig.g.Client(t)
		for _, start := range []string{"/auth/google", "/auth/google", "/auth/github"} {
			for _, c := range []*testkit.Client{a, rig.g.Client(t)} {
				state := socialCallbackQuery(t, c.Callback(start)).Get("state")
				raw, err := base64.RawURLEncoding.DecodeString(state)
				if err != nil || len(raw) < 32 || !socialB64URL.MatchString(state) {
					t.Errorf("state %q: %d bytes (err %v); want ≥ 32 random bytes, base64url", state, len(raw), err)
				}
				if seen[state] {
					t.Errorf("state %q used by two flows", state)
				}
				seen[state] = true
			}
		}
	})

	t.Run("caller's state ignored", func(t *testing.T) {
		c := rig.g.Client(t)
		rig.google.SetUser(socialGoogleUser(testkit.Email(t)))
		n := len(rig.google.Authorizations())
		cb := c.Callback("/auth/google?state=evil&return_to=%2Fx")
		auths := rig.google.Authorizations()
		if len(auths) != n+1 {
			t.Fatalf("authorizations: %d; want %d", len(auths), n+1)
		}
		if s := auths[n].Query.Get("state"); s == "evil" || len(s) < 43 {
			t.Errorf("state sent to the provider %q; want our own, not the caller's", s)
		}
		socialWantRefused(t, c, "callback with the caller's state", c.Get("/auth/google/callback?code=abc&state=evil"), http.StatusBadRequest)
		socialWantSignedIn(t, c, "the real callback", c.Get(cb), "/x")
	})

	for _, tc := range []struct{ from, to string }{{"google", "github"}, {"github", "google"}} {
		t.Run(tc.from+" state at "+tc.to, func(t *testing.T) {
			c := rig.g.Client(t)
			rig.idp(tc.from).SetUser(socialUserFor(tc.from, testkit.Email(t)))
			rig.idp(tc.to).SetUser(socialUserFor(tc.to, testkit.Email(t)))
			before := len(rig.google.TokenRequests()) + len(rig.github.TokenRequests())
			cb := c.Callback("/auth/" + tc.from)
			moved := strings.Replace(cb, "/auth/"+tc.from+"/callback", "/auth/"+tc.to+"/callback", 1)
			if moved == cb {
				t.Fatalf("callback %q is not /auth/%s/callback", cb, tc.from)
			}
			socialWantRefused(t, c, tc.from+"'s callback at "+tc.to, c.Get(moved), http.StatusBadRequest)
			if after := len(rig.google.TokenRequests()) + len(rig.github.TokenRequests()); after != before {
				t.Errorf("a code was exchanged (%d token requests) for a state of the wrong provider; want none", after-before)
			}
		})
	}
}

// TestSocialPKCEOA2 checks OA-2: both providers get an S256 PKCE challenge,
// the token request carries the matching verifier and the client's
// credentials, and Google gets a fresh nonce.
func TestSocialPKCEOA2(t *testing.T) {
	t.Parallel()
	rig := socialStart(t, nil)
	for _, p := range []string{"google", "github"} {
		t.Run(p, func(t *testing.T) {
			t.Parallel()
			idp := rig.idp(p)
			nonces := map[string]bool{}
			for i := range 2 {
				c := rig.g.Client(t)
				socialWantSignedIn(t, c, "sign-in", socialSignIn(t, c, idp, socialUserFor(p, testkit.Email(t)), "/auth/"+p), "/account")
				auths, toks := idp.Authorizations(), idp.TokenRequests()
				if len(auths) != i+1 || len(toks) != i+1 {
					t.Fatalf("flow %d: %d authorizations, %d token requests; want %d each", i+1, len(auths), len(toks), i+1)
				}
				q, tr := auths[i].Query, toks[i]
				challenge := q.Get("code_challenge")
				if q.Get("code_challenge_method") != "S256" || len(challenge) != 43 || !socialB64URL.MatchString(challenge) {
					t.Errorf("authorize: code_challenge_method %q, code_challenge %q; want S256 and 43 base64url characters", q.Get("code_challenge_method"), challenge)
				}
				if want := rig.g.URL + "/auth/" + p + "/callback"; q.Get("redirect_uri") != want || tr.Form.Get("redirect_uri") != want {
					t.Errorf("redirect_uri: authorize %q, token %q; want %q", q.Get("redirect_uri"), tr.Form.Get("redirect_uri"), want)
				}
				verifier := tr.Form.Get("code_verifier")
				if !tr.Authorized || len(verifier) < 43 || len(verifier) > 128 || socialS256(verifier) != challenge {
					t.Errorf("token request: authorized %v (%s), verifier of %d chars, S256(verifier)==challenge %v; want an authorized request whose verifier matches",
						tr.Authorized, tr.Failure, len(verifier), socialS256(verifier) == challenge)
				}
				if strings.Contains(auths[i].Query.Encode(), verifier) {
					t.Errorf("the PKCE verifier was sent to the authorization endpoint")
				}
				if tr.ClientID != idp.ClientID || tr.Secret != idp.ClientSecret {
					t.Errorf("token request client %q; want the configured client and secret", tr.ClientID)
				}
				scope := q.Get("scope")
				if p == "github" && !strings.Contains(scope, "user:email") {
					t.Errorf("GitHub scope %q; want user:email", scope)
				}
				if p == "google" {
					if !strings.Contains(scope, "openid") || !strings.Contains(scope, "email") {
						t.Errorf("Google scope %q; want openid and email", scope)
					}
					nonce := q.Get("nonce")
					if len(nonce) < 22 || nonces[nonce] {
						t.Errorf("Google nonce %q; want a fresh one of ≥ 128 bits", nonce)
					}
					nonces[nonce] = true
				}
			}
		})
	}
}

// TestSocialIDTokenOA3 checks OA-2 (nonce) and OA-3: an id_token with a
// wrong audience, issuer, nonce, signature, algorithm, or expired, is
// refused: no session, no user, a page that is not a 500.
func TestSocialIDTokenOA3(t *testing.T) {
	t.Parallel()
	rig := socialStart(t, nil)
	for _, tc := range []struct {
		name    string
		mutate  func(map[string]any)
		algNone bool
		badSig  bool
	}{
		{name: "wrong aud", mutate: func(c map[string]any) { c["aud"] = "someone-else.apps.example" }},
		{name: "aud of another client only", mutate: func(c map[string]any) { c["aud"] = []string{"someone-else.apps.example"} }},
		{name: "wrong iss", mutate: func(c map[string]any) { c["iss"] = "https://accounts.evil.example" }},
		{name: "expired", mutate: func(c map[string]any) {
			c["iat"] = time.Now().Add(-2 * time.Hour).Unix()
			c["exp"] = time.Now().Add(-time.Hour).Unix()
		}},
		{name: "wrong nonce", mutate: func(c map[string]any) { c["nonce"] = "not-the-nonce-we-sent-0123456789" }},
		{name: "no nonce", mutate: func(c map[string]any) { delete(c, "nonce") }},
		{name: "no sub", mutate: func(c map[string]any) { delete(c, "sub") }},
		{name: "alg none", algNone: true},
		{name: "bad signature", badSig: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			email := testkit.Email(t)
			person := socialGoogleUser(email)
			rig.google.MutateIDToken(tc.mutate)
			rig.google.SignIDTokens(tc.algNone, tc.badSig)
			t.Cleanup(func() {
				rig.google.MutateIDToken(nil)
				rig.google.SignIDTokens(false, false)
			})
			c := rig.g.Client(t)
			r := socialSignIn(t, c, rig.google, person, "/auth/google")
			socialWantRefused(t, c, tc.name, r, http.StatusBadRequest, "start again")
			rig.wantNoAccount(t, tc.name, email)
			if _, ok := rig.identityDoc(t, "google:"+person.Subject); ok {
				t.Errorf("%s: an identity was stored", tc.name)
			}
		})
	}
	// The control: the same fake, left alone, signs in.
	c := rig.g.Client(t)
	socialWantSignedIn(t, c, "valid id_token", socialSignIn(t, c, rig.google, socialGoogleUser(testkit.Email(t)), "/auth/google"), "/account")
}

// TestSocialIdentityKeyOA4 checks OA-4 in the database: identities are
// stored under "<provider>:<subject>", GitHub's subject is the numeric id,
// and two GitHub accounts with one login are two users.
func TestSocialIdentityKeyOA4(t *testing.T) {
	t.Parallel()
	rig := socialStart(t, nil)
	a := socialGitHubUser(testkit.Email(t))
	b := socialGitHubUser(testkit.Email(t))
	b.Login = a.Login
	gu := socialGoogleUser(testkit.Email(t))

	users := map[string]string{}
	for _, x := range []struct {
		key, provider string
		u             testkit.IdPUser
	}{{"github a", "github", a}, {"github b", "github", b}, {"google", "google", gu}} {
		c := rig.g.Client(t)
		users[x.key] = socialWantSignedIn(t, c, x.key, socialSignIn(t, c, rig.idp(x.provider), x.u, "/auth/"+x.provider), "/account").ID
	}
	if users["github a"] == users["github b"] {
		t.Errorf("two GitHub accounts with login %q are one user %s; want two", a.Login, users["github a"])
	}
	for _, x := range []struct {
		key, provider string
		u             testkit.IdPUser
	}{{"github a", "github", a}, {"github b", "github", b}, {"google", "google", gu}} {
		sub := socialSubject(x.provider, x.u)
		doc, ok := rig.identityDoc(t, x.provider+":"+sub)
		if !ok {
			t.Errorf("%s: no identity with _id %q", x.key, x.provider+":"+sub)
			continue
		}
		if doc["subject"] != sub || doc["provider"] != x.provider || doc["user_id"] != users[x.key] || doc["email"] != x.u.Email {
			t.Errorf("%s: identity %v; want subject %s, provider %s, user %s, email %s", x.key, doc, sub, x.provider, users[x.key], x.u.Email)
		}
	}
	if n := rig.count(t, "identities", bson.M{"_id": "github:" + a.Login}); n != 0 {
		t.Errorf("an identity is keyed by the GitHub login")
	}
	if n := rig.count(t, "identities", bson.M{"provider": "github"}); n != 2 {
		t.Errorf("GitHub identities: %d; want 2", n)
	}
}

// TestSocialNoSecretsInLogs checks IN-4 for whole provider flows, refusals
// and a link by mail: client secrets, codes, PKCE verifiers, nonces,
// access tokens, id_tokens, states, and cookie and link values never appear
// in the gateway's (debug-level) logs.
func TestSocialNoSecretsInLogs(t *testing.T) {
	t.Parallel()
	rig := socialStart(t, nil)
	secrets := map[string]string{
		"google client secret": rig.google.ClientSecret,
		"github client secret": rig.github.ClientSecret,
	}
	var mu sync.Mutex
	var idPayloads []string
	// The fake signs exactly these claims; their encoding is the id_token's
	// middle part, which any logged id_token contains.
	rig.google.MutateIDToken(func(c map[string]any) {
		b, _ := json.Marshal(c)
		mu.Lock()
		idPayloads = append(idPayloads, base64.RawURLEncoding.EncodeToString(b))
		mu.Unlock()
	})
	collectCookies := func(what string, c *testkit.Client) {
		for _, name := range []string{testkit.CookieName, socialBindCookie, socialLinkCookie} {
			if ck := c.Cookie(name); ck != nil && ck.Value != "" {
				secrets[what+" cookie "+name] = ck.Value
			}
		}
	}
	flow := func(what string, c *testkit.Client, start string) *testkit.Response {
		cb := c.Callback(start)
		q := socialCallbackQuery(t, cb)
		secrets[what+" code"], secrets[what+" state"] = q.Get("code"), q.Get("state")
		r := c.Get(cb)
		collectCookies(what, c)
		return r
	}

	// New users, both providers.
	for _, p := range []string{"google", "github"} {
		c := rig.g.Client(t)
		rig.idp(p).SetUser(socialUserFor(p, testkit.Email(t)))
		socialWantSignedIn(t, c, p+" sign-in", flow(p+" sign-in", c, "/auth/"+p), "/account")
	}
	// A refused id_token and a denial.
	rig.google.SignIDTokens(false, true)
	c := rig.g.Client(t)
	rig.google.SetUser(socialGoogleUser(testkit.Email(t)))
	socialWantRefused(t, c, "bad signature", flow("bad signature", c, "/auth/google"), http.StatusBadRequest)
	rig.google.SignIDTokens(false, false)
	rig.github.Deny("access_denied")
	c = rig.g.Client(t)
	socialWantRefused(t, c, "denied", flow("denied", c, "/auth/github"), http.StatusBadRequest)
	rig.github.Deny("")
	// A link proved by mail.
	owner, email := testkit.NewUser(t, rig.g, socialPassword)
	collectCookies("owner", owner)
	rig.google.SetUser(socialGoogleUser(email))
	linker := rig.g.Client(t)
	r := flow("link", linker, "/auth/google")
	testkit.WantRedirect(t, "link", r, http.StatusSeeOther, "/auth/link")
	collectCookies("link", linker)
	n := len(rig.g.SMTP.Mails(email))
	socialWantPage(t, "link mail", linker.PostForm("/auth/link/mail", nil), http.StatusOK)
	m := rig.g.SMTP.WaitMail(t, email, n+1, socialMailWait)
	secrets["link confirmation token"] = m.Token(t)
	socialWantSignedIn(t, linker, "confirm", linker.PostForm("/auth/link/confirm", url.Values{"token": {m.Token(t)}}), "/account")
	collectCookies("linked", linker)

	for _, idp := range []*testkit.FakeIdP{rig.google, rig.github} {
		for i, tr := range idp.TokenRequests() {
			secrets[fmt.Sprintf("%s code_verifier %d", idp.Kind, i)] = tr.Form.Get("code_verifier")
		}
		for i, a := range idp.Authorizations() {
			if nonce := a.Query.Get("nonce"); nonce != "" {
				secrets[fmt.Sprintf("%s nonce %d", idp.Kind, i)] = nonce
			}
		}
		for i, tok := range idp.AccessTokens() {
			secrets[fmt.Sprintf("%s access token %d", idp.Kind, i)] = tok
		}
	}
	mu.Lock()
	for i, p := range idPayloads {
		secrets[fmt.Sprintf("id_token %d", i)] = p
	}
	mu.Unlock()
	if len(idPayloads) < 3 || len(rig.github.AccessTokens()) < 1 {
		t.Fatalf("collected %d id_tokens and %d GitHub access tokens; want ≥ 3 and ≥ 1", len(idPayloads), len(rig.github.AccessTokens()))
	}

	logs := rig.g.Logs()
	if !strings.Contains(logs, "login_succeeded") {
		t.Fatalf("the logs have no login_succeeded event; is this the gateway's log?")
	}
	for what, s := range secrets {
		if len(s) < 12 {
			if what != "denied code" { // a denial has no code
				t.Errorf("%s: %q is too short to look for; the test collected the wrong value", what, s)
			}
			continue
		}
		if strings.Contains(logs, s) {
			t.Errorf("the logs contain the %s", what)
		}
	}
}
