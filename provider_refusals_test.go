package main

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

// providerSignins reads gatehouse_provider_signins_total for a provider and
// result from the operations listener.
func providerSignins(tb testing.TB, g *testkit.Gateway, provider, result string) float64 {
	tb.Helper()
	return metricValue(tb, g, `gatehouse_provider_signins_total{provider="`+provider+`",result="`+result+`"}`)
}

// withCode returns the callback path with its code replaced.
func withCode(tb testing.TB, callback, code string) string {
	tb.Helper()
	u, err := url.Parse(callback)
	if err != nil {
		tb.Fatal(err)
	}
	q := u.Query()
	q.Set("code", code)
	u.RawQuery = q.Encode()
	return u.String()
}

// TestProviderRefusalsAre4xx: a provider answer that fails our checks — a
// code the provider refuses (replayed, injected, issued to another client),
// an id_token that fails validation, an API that refuses the token — ends on
// a 400 page and counts as a refused sign-in; only a provider that cannot
// be reached or answers 5xx gives 502. Nothing a callback carries produces a
// server error.
func TestProviderRefusalsAre4xx(t *testing.T) {
	t.Parallel()
	rig := socialStart(t, nil)
	g := rig.g

	// A code used once, to replay later.
	used := g.Client(t)
	rig.google.SetUser(socialGoogleUser(testkit.Email(t)))
	usedCallback := used.Callback("/auth/google")
	socialWantSignedIn(t, used, "the code's first use", used.Get(usedCallback), "/account")
	usedCode := func() string {
		u, _ := url.Parse(usedCallback)
		return u.Query().Get("code")
	}()

	cases := []struct {
		name     string
		provider string
		setup    func(t *testing.T) func()
		callback func(t *testing.T, c *testkit.Client) string // "" means the flow's own
		status   int
		result   string
	}{
		{name: "replayed code", provider: "google", status: http.StatusBadRequest, result: "refused",
			callback: func(t *testing.T, c *testkit.Client) string { return withCode(t, c.Callback("/auth/google"), usedCode) }},
		{name: "injected code", provider: "google", status: http.StatusBadRequest, result: "refused",
			callback: func(t *testing.T, c *testkit.Client) string {
				return withCode(t, c.Callback("/auth/google"), "an-injected-code-0123456789abcdef")
			}},
		{name: "code of another client", provider: "google", status: http.StatusBadRequest, result: "refused",
			callback: func(t *testing.T, c *testkit.Client) string {
				cb := c.Callback("/auth/google")
				return withCode(t, cb, rig.google.CodeForClient("another-app", g.URL+"/auth/google/callback"))
			}},
		{name: "id_token for another audience", provider: "google", status: http.StatusBadRequest, result: "refused",
			setup: func(t *testing.T) func() {
				rig.google.MutateIDToken(func(c map[string]any) { c["aud"] = "another-app" })
				return func() { rig.google.MutateIDToken(nil) }
			}},
		{name: "id_token from another issuer", provider: "google", status: http.StatusBadRequest, result: "refused",
			setup: func(t *testing.T) func() {
				rig.google.MutateIDToken(func(c map[string]any) { c["iss"] = "https://accounts.evil.example" })
				return func() { rig.google.MutateIDToken(nil) }
			}},
		{name: "expired id_token", provider: "google", status: http.StatusBadRequest, result: "refused",
			setup: func(t *testing.T) func() {
				rig.google.MutateIDToken(func(c map[string]any) {
					c["iat"] = time.Now().Add(-2 * time.Hour).Unix()
					c["exp"] = time.Now().Add(-time.Hour).Unix()
				})
				return func() { rig.google.MutateIDToken(nil) }
			}},
		{name: "id_token with another nonce", provider: "google", status: http.StatusBadRequest, result: "refused",
			setup: func(t *testing.T) func() {
				rig.google.MutateIDToken(func(c map[string]any) { c["nonce"] = "not-the-nonce-we-sent-0123456789" })
				return func() { rig.google.MutateIDToken(nil) }
			}},
		{name: "id_token with a bad signature", provider: "google", status: http.StatusBadRequest, result: "refused",
			setup: func(t *testing.T) func() {
				rig.google.SignIDTokens(false, true)
				return func() { rig.google.SignIDTokens(false, false) }
			}},
		{name: "id_token with alg none", provider: "google", status: http.StatusBadRequest, result: "refused",
			setup: func(t *testing.T) func() {
				rig.google.SignIDTokens(true, false)
				return func() { rig.google.SignIDTokens(false, false) }
			}},
		{name: "GitHub refuses the token at /user", provider: "github", status: http.StatusBadRequest, result: "refused",
			setup: func(t *testing.T) func() {
				rig.github.FailEndpoint("/api/v3/user", http.StatusUnauthorized)
				return func() { rig.github.FailEndpoint("/api/v3/user", 0) }
			}},
		{name: "GitHub refuses the token at /user/emails", provider: "github", status: http.StatusBadRequest, result: "refused",
			setup: func(t *testing.T) func() {
				rig.github.FailEndpoint("/api/v3/user/emails", http.StatusForbidden)
				return func() { rig.github.FailEndpoint("/api/v3/user/emails", 0) }
			}},
		{name: "token endpoint answers 500", provider: "google", status: http.StatusBadGateway, result: "provider_unavailable",
			setup: func(t *testing.T) func() {
				rig.google.FailEndpoint("/token", http.StatusInternalServerError)
				return func() { rig.google.FailEndpoint("/token", 0) }
			}},
		{name: "GitHub API answers 503", provider: "github", status: http.StatusBadGateway, result: "provider_unavailable",
			setup: func(t *testing.T) func() {
				rig.github.FailEndpoint("/api/v3/user", http.StatusServiceUnavailable)
				return func() { rig.github.FailEndpoint("/api/v3/user", 0) }
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				defer tc.setup(t)()
			}
			before := providerSignins(t, g, tc.provider, tc.result)
			c := g.Client(t)
			email := testkit.Email(t)
			var r *testkit.Response
			if tc.callback != nil {
				rig.idp(tc.provider).SetUser(socialUserFor(tc.provider, email))
				r = c.Get(tc.callback(t, c))
			} else {
				r = socialSignIn(t, c, rig.idp(tc.provider), socialUserFor(tc.provider, email), "/auth/"+tc.provider)
			}
			socialWantRefused(t, c, tc.name, r, tc.status)
			rig.wantNoAccount(t, tc.name, email)
			if after := providerSignins(t, g, tc.provider, tc.result); after != before+1 {
				t.Errorf("%s: gatehouse_provider_signins_total{result=%q} went %v -> %v; want +1", tc.name, tc.result, before, after)
			}
		})
	}
}

// TestProviderMisconfiguredClient: a token endpoint that refuses our own
// client credentials (invalid_client) is a configuration error, not the
// request's: 502, counted as provider_unavailable.
func TestProviderMisconfiguredClient(t *testing.T) {
	t.Parallel()
	google := testkit.StartIdP(t, testkit.FakeGoogle)
	env := google.Env()
	env["GATEHOUSE_PROVIDERS_GOOGLE_CLIENT_SECRET"] = "not-the-registered-secret"
	g := testkit.Start(t, run, testkit.StartSMTP(t), testkit.Options{Env: env})
	c := g.Client(t)
	r := socialSignIn(t, c, google, socialGoogleUser(testkit.Email(t)), "/auth/google")
	socialWantRefused(t, c, "client secret refused", r, http.StatusBadGateway)
	if n := providerSignins(t, g, "google", "provider_unavailable"); n != 1 {
		t.Errorf("provider_unavailable sign-ins: %v; want 1", n)
	}
}

// TestProviderUnreachable: a token endpoint that cannot be reached gives a
// 502 page with Retry-After, counted as provider_unavailable.
func TestProviderUnreachable(t *testing.T) {
	t.Parallel()
	google := testkit.StartIdP(t, testkit.FakeGoogle)
	env := google.Env()
	env["GATEHOUSE_PROVIDERS_GOOGLE_TOKEN_URL"] = "http://" + testkit.FreeAddr(t) + "/token" // nothing listens
	g := testkit.Start(t, run, testkit.StartSMTP(t), testkit.Options{Env: env})
	c := g.Client(t)
	r := socialSignIn(t, c, google, socialGoogleUser(testkit.Email(t)), "/auth/google")
	socialWantRefused(t, c, "unreachable token endpoint", r, http.StatusBadGateway)
	if r.Header.Get("Retry-After") == "" {
		t.Errorf("502 without Retry-After")
	}
	if n := providerSignins(t, g, "google", "provider_unavailable"); n != 1 {
		t.Errorf("provider_unavailable sign-ins: %v; want 1", n)
	}
}
