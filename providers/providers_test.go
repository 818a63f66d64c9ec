package providers

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/internal/testkit"
)

// Unit tests of the provider flows: the authorization URL (OA-1, OA-2), the
// state checks at the callback (OA-1), and what a provider's answer becomes
// (OA-3, OA-5), against an in-memory state store and the fake providers.

const testPublicURL = "https://gatehouse.example"

// memStates is an in-memory StateStore.
type memStates struct {
	mu sync.Mutex
	m  map[string]Flow
}

func newMemStates() *memStates { return &memStates{m: map[string]Flow{}} }

func (s *memStates) InsertOAuthState(_ context.Context, key string, f Flow) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.m[key]; dup {
		return accounts.ErrConflict
	}
	s.m[key] = f
	return nil
}

func (s *memStates) TakeOAuthState(_ context.Context, key string) (Flow, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.m[key]
	if !ok {
		return Flow{}, accounts.ErrNotFound
	}
	delete(s.m, key)
	return f, nil
}

func (s *memStates) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// testKey is the flow key of the tests' registries.
var testKey = []byte("0123456789abcdef0123456789abcdef")

// newTestRegistry builds a registry over cfgs and fails the test on error.
func newTestRegistry(tb testing.TB, states StateStore, cfgs ...Config) *Registry {
	tb.Helper()
	r, err := NewRegistry(context.Background(), testPublicURL, cfgs, states, testKey, &http.Client{Timeout: 10 * time.Second}, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatalf("NewRegistry: %v", err)
	}
	return r
}

// tripwire is a server that fails the test if anything calls it: a
// provider endpoint that must not be reached.
func tripwire(tb testing.TB) string {
	tb.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tb.Errorf("provider endpoint %s %s called; want no call", r.Method, r.URL.Path)
		http.Error(w, "no", http.StatusTeapot)
	}))
	tb.Cleanup(srv.Close)
	return srv.URL
}

// offlineConfigs are Google and GitHub whose every endpoint is a tripwire.
func offlineConfigs(tb testing.TB) []Config {
	tb.Helper()
	u := tripwire(tb)
	return []Config{
		{ID: "google", Label: "Google", Kind: KindGoogle, ClientID: "gid", ClientSecret: "gsecret",
			AuthURL: u + "/auth", TokenURL: u + "/token", UserinfoURL: u + "/userinfo", JWKSURL: u + "/jwks", Issuer: u},
		{ID: "github", Label: "GitHub", Kind: KindGitHub, ClientID: "hid", ClientSecret: "hsecret",
			AuthURL: u + "/login/oauth/authorize", TokenURL: u + "/login/oauth/access_token", APIURL: u + "/api/v3"},
	}
}

// fakeConfig points a provider config at a fake provider.
func fakeConfig(f *testkit.FakeIdP) Config {
	switch f.Kind {
	case testkit.FakeGitHub:
		return Config{ID: "github", Label: "GitHub", Kind: KindGitHub, ClientID: f.ClientID, ClientSecret: f.ClientSecret,
			AuthURL: f.URL + "/login/oauth/authorize", TokenURL: f.URL + "/login/oauth/access_token", APIURL: f.URL + "/api/v3"}
	default:
		return Config{ID: "google", Label: "Google", Kind: KindGoogle, ClientID: f.ClientID, ClientSecret: f.ClientSecret,
			AuthURL: f.URL + "/o/oauth2/v2/auth", TokenURL: f.URL + "/token", UserinfoURL: f.URL + "/v1/userinfo",
			JWKSURL: f.URL + "/oauth2/v3/certs", Issuer: f.URL}
	}
}

// authorize sends a browser to authURL and returns the query the provider
// redirected back with.
func authorize(tb testing.TB, authURL string) url.Values {
	tb.Helper()
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(authURL)
	if err != nil {
		tb.Fatalf("authorize: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		tb.Fatalf("authorize: status %d; want 302", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		tb.Fatalf("authorize: Location: %v", err)
	}
	return loc.Query()
}

// run runs a whole flow for u at f and returns Complete's result.
func run(tb testing.TB, r *Registry, f *testkit.FakeIdP, id string, u testkit.IdPUser) (Flow, accounts.Profile, error) {
	tb.Helper()
	f.SetUser(u)
	dest, err := r.Begin(context.Background(), id, Flow{Intent: IntentSignIn, ReturnTo: "/x"}, "browser-1")
	if err != nil {
		tb.Fatalf("Begin: %v", err)
	}
	return r.Complete(context.Background(), id, authorize(tb, dest), "browser-1")
}

func TestFlexBool(t *testing.T) {
	for _, tc := range []struct {
		json string
		want bool
	}{
		{`true`, true},
		{`false`, false},
		{`"true"`, true},
		{`"false"`, false},
		{`"TRUE"`, false},
		{`"yes"`, false},
		{`"1"`, false},
		{`1`, false},
		{`null`, false},
		{`{}`, false},
		{`["true"]`, false},
	} {
		t.Run(tc.json, func(t *testing.T) {
			var v struct {
				B flexBool `json:"email_verified"`
			}
			if err := json.Unmarshal([]byte(`{"email_verified":`+tc.json+`}`), &v); err != nil {
				t.Fatalf("unmarshal %s: %v", tc.json, err)
			}
			if bool(v.B) != tc.want {
				t.Errorf("email_verified %s: got %v; want %v", tc.json, v.B, tc.want)
			}
		})
	}
	var v struct {
		B flexBool `json:"email_verified"`
	}
	if err := json.Unmarshal([]byte(`{"email_verified":tru}`), &v); err == nil {
		t.Errorf("invalid JSON: got no error; want one")
	}
}

func TestNewRegistry(t *testing.T) {
	cfgs := offlineConfigs(t)
	t.Run("unconfigured providers are left out", func(t *testing.T) {
		off := cfgs[1]
		off.ClientID = ""
		r := newTestRegistry(t, newMemStates(), cfgs[0], off)
		var ids []string
		for _, p := range r.Providers() {
			ids = append(ids, p.ID)
		}
		if !slices.Equal(ids, []string{"google"}) {
			t.Errorf("providers %v; want [google]", ids)
		}
		if _, ok := r.Get("github"); ok {
			t.Errorf("Get(github) found a provider without a client id")
		}
		if _, err := r.Begin(context.Background(), "github", Flow{}, "b"); !errors.Is(err, ErrUnknownProvider) {
			t.Errorf("Begin(github): %v; want ErrUnknownProvider", err)
		}
	})
	t.Run("configuration order", func(t *testing.T) {
		r := newTestRegistry(t, newMemStates(), cfgs[1], cfgs[0])
		var ids []string
		for _, p := range r.Providers() {
			ids = append(ids, p.ID)
		}
		if !slices.Equal(ids, []string{"github", "google"}) {
			t.Errorf("providers %v; want [github google]", ids)
		}
	})
	t.Run("duplicate", func(t *testing.T) {
		_, err := NewRegistry(context.Background(), testPublicURL, []Config{cfgs[0], cfgs[0]}, newMemStates(), testKey, http.DefaultClient, slog.New(slog.DiscardHandler))
		if err == nil {
			t.Errorf("two providers with one id: got no error; want one")
		}
	})
	t.Run("unknown kind", func(t *testing.T) {
		c := cfgs[0]
		c.Kind = "saml"
		if _, err := NewRegistry(context.Background(), testPublicURL, []Config{c}, newMemStates(), testKey, http.DefaultClient, slog.New(slog.DiscardHandler)); err == nil {
			t.Errorf("unknown kind: got no error; want one")
		}
	})
}

func TestAuthOrigins(t *testing.T) {
	google := Config{ID: "google", Kind: KindGoogle, ClientID: "g", ClientSecret: "s"}
	ghe := Config{ID: "github", Kind: KindGitHub, ClientID: "h", ClientSecret: "s",
		AuthURL: "https://ghe.example:8443/login/oauth/authorize", TokenURL: "https://ghe.example:8443/login/oauth/access_token", APIURL: "https://ghe.example:8443/api/v3/"}
	off := Config{ID: "other", Kind: KindGitHub, AuthURL: "https://unused.example/auth"}
	r := newTestRegistry(t, newMemStates(), google, ghe, off)
	want := []string{"https://accounts.google.com", "https://ghe.example:8443"}
	if got := r.AuthOrigins(); !slices.Equal(got, want) {
		t.Errorf("AuthOrigins() = %v; want %v", got, want)
	}
	if got := newTestRegistry(t, newMemStates()).AuthOrigins(); len(got) != 0 {
		t.Errorf("AuthOrigins() without providers = %v; want none", got)
	}
}

func TestBegin(t *testing.T) {
	for _, tc := range []struct {
		id        string
		scopes    []string
		wantNonce bool
	}{
		{"google", []string{"openid", "email"}, true},
		{"github", []string{"user:email"}, false},
	} {
		t.Run(tc.id, func(t *testing.T) {
			states := newMemStates()
			r := newTestRegistry(t, states, offlineConfigs(t)...)
			now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
			r.now = func() time.Time { return now }
			flow := Flow{Intent: IntentConnect, UserID: "u1", SessionID: "s1", ReturnTo: "/account", Provider: "evil", Browser: "evil"}
			seen := map[string]bool{}
			for i := range 3 {
				dest, err := r.Begin(context.Background(), tc.id, flow, "browser-value")
				if err != nil {
					t.Fatalf("Begin: %v", err)
				}
				u, err := url.Parse(dest)
				if err != nil {
					t.Fatalf("parse %q: %v", dest, err)
				}
				q := u.Query()
				state := q.Get("state")
				raw, err := base64.RawURLEncoding.DecodeString(state)
				if err != nil || len(raw) != 32 {
					t.Errorf("state %q: %d bytes, %v; want 32 bytes base64url", state, len(raw), err)
				}
				if seen[state] {
					t.Errorf("state %q repeated", state)
				}
				seen[state] = true
				for k, want := range map[string]string{
					"response_type":         "code",
					"redirect_uri":          testPublicURL + "/auth/" + tc.id + "/callback",
					"code_challenge_method": "S256",
					"code_challenge":        oauth2.S256ChallengeFromVerifier(r.derive("pkce", state)),
				} {
					if got := q.Get(k); got != want {
						t.Errorf("%s = %q; want %q", k, got, want)
					}
				}
				if got := q.Get("client_id"); got == "" || strings.Contains(dest, "secret") {
					t.Errorf("client_id %q in %s; want the client id and no secret", got, dest)
				}
				for _, s := range tc.scopes {
					if !slices.Contains(strings.Fields(strings.ReplaceAll(q.Get("scope"), ",", " ")), s) {
						t.Errorf("scope %q; want it to include %s", q.Get("scope"), s)
					}
				}
				nonce := q.Get("nonce")
				if tc.wantNonce && (nonce == "" || nonce != r.derive("nonce", state)) {
					t.Errorf("nonce %q; want the one derived from the state", nonce)
				}
				if strings.Contains(dest, r.derive("pkce", state)) {
					t.Errorf("the PKCE verifier is in the authorization URL")
				}
				if states.len() != i+1 {
					t.Fatalf("stored flows: %d; want %d", states.len(), i+1)
				}
				states.mu.Lock()
				got, ok := states.m[hashHex(state)]
				_, rawKey := states.m[state]
				states.mu.Unlock()
				if !ok || rawKey {
					t.Fatalf("flow stored under the state's hash: %v, under the raw state: %v; want only the hash", ok, rawKey)
				}
				want := Flow{Provider: tc.id, Intent: IntentConnect, UserID: "u1", SessionID: "s1", ReturnTo: "/account",
					Browser: hashHex("browser-value"), CreatedAt: now, ExpiresAt: now.Add(flowTTL)}
				if got != want {
					t.Errorf("stored flow %+v; want %+v", got, want)
				}
			}
		})
	}
}

func TestCompleteStateChecks(t *testing.T) {
	ctx := context.Background()
	begin := func(t *testing.T, r *Registry, id, browser string) string {
		t.Helper()
		dest, err := r.Begin(ctx, id, Flow{Intent: IntentSignIn}, browser)
		if err != nil {
			t.Fatalf("Begin: %v", err)
		}
		u, _ := url.Parse(dest)
		return u.Query().Get("state")
	}
	withState := func(s string) url.Values { return url.Values{"code": {"c"}, "state": {s}} }
	for _, tc := range []struct {
		name    string
		id      string // the callback's provider
		query   func(state string) url.Values
		browser string // "" is the browser that began; "-" none
		later   time.Duration
		want    error
		// presented: the callback carries the real state, which must be
		// used up whatever the outcome (single use).
		presented bool
	}{
		{name: "no state", id: "google", query: func(string) url.Values { return url.Values{"code": {"c"}} }, want: ErrState},
		{name: "unknown state", id: "google", query: func(string) url.Values {
			return withState(base64.RawURLEncoding.EncodeToString(make([]byte, 32)))
		}, want: ErrState},
		{name: "huge state", id: "google", query: func(s string) url.Values { return withState(s + strings.Repeat("A", 300)) }, want: ErrState},
		{name: "other provider", id: "github", query: withState, want: ErrState, presented: true},
		{name: "other browser", id: "google", browser: "browser-2", query: withState, want: ErrState, presented: true},
		{name: "no browser cookie", id: "google", browser: "-", query: withState, want: ErrState, presented: true},
		{name: "expired", id: "google", later: flowTTL + time.Second, query: withState, want: ErrState, presented: true},
		{name: "no code", id: "google", query: func(s string) url.Values { return url.Values{"state": {s}} }, want: ErrState, presented: true},
		{name: "denied", id: "google", query: func(s string) url.Values {
			return url.Values{"state": {s}, "error": {"access_denied"}, "code": {"c"}}
		}, want: ErrDenied, presented: true},
		{name: "unknown provider", id: "gitlab", query: withState, want: ErrUnknownProvider},
	} {
		t.Run(tc.name, func(t *testing.T) {
			states := newMemStates()
			r := newTestRegistry(t, states, offlineConfigs(t)...)
			now := time.Now()
			r.now = func() time.Time { return now }
			state := begin(t, r, "google", "browser-1")
			browser := map[string]string{"": "browser-1", "-": ""}[tc.browser]
			if browser == "" && tc.browser != "-" {
				browser = tc.browser
			}
			now = now.Add(tc.later)
			_, _, err := r.Complete(ctx, tc.id, tc.query(state), browser)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Complete: %v; want %v", err, tc.want)
			}
			if !tc.presented {
				return
			}
			now = now.Add(-tc.later)
			if n := states.len(); n != 0 {
				t.Errorf("%d flows left after a callback with the state; want it used up", n)
			}
			if _, _, err := r.Complete(ctx, "google", withState(state), "browser-1"); !errors.Is(err, ErrState) {
				t.Errorf("second callback with the state: %v; want ErrState", err)
			}
		})
	}
}

func TestCompleteGoogle(t *testing.T) {
	f := testkit.StartIdP(t, testkit.FakeGoogle)
	r := newTestRegistry(t, newMemStates(), fakeConfig(f))

	t.Run("verified", func(t *testing.T) {
		u := testkit.IdPUser{Subject: "1234567890", Email: "Ada@Example.com", EmailVerified: true, Name: "Ada"}
		flow, p, err := run(t, r, f, "google", u)
		if err != nil {
			t.Fatalf("Complete: %v", err)
		}
		want := accounts.Profile{Provider: "google", Subject: "1234567890", Email: "Ada@Example.com", EmailVerified: true, Name: "Ada"}
		p.AvatarURL, p.Username = "", ""
		if p != want {
			t.Errorf("profile %+v; want %+v", p, want)
		}
		if flow.ReturnTo != "/x" || flow.Provider != "google" {
			t.Errorf("flow %+v; want provider google, return_to /x", flow)
		}
		toks := f.TokenRequests()
		if tr := toks[len(toks)-1]; !tr.Authorized {
			t.Errorf("token request refused by the fake: %s", tr.Failure)
		}
	})

	for _, tc := range []struct {
		name   string
		mutate func(map[string]any)
		want   bool
	}{
		{"email_verified string true", func(c map[string]any) { c["email_verified"] = "true" }, true},
		{"email_verified string false", func(c map[string]any) { c["email_verified"] = "false" }, false},
		{"email_verified missing", func(c map[string]any) { delete(c, "email_verified") }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.MutateIDToken(tc.mutate)
			t.Cleanup(func() { f.MutateIDToken(nil) })
			_, p, err := run(t, r, f, "google", testkit.IdPUser{Subject: "2", Email: "b@example.com", EmailVerified: true})
			if err != nil {
				t.Fatalf("Complete: %v", err)
			}
			if p.EmailVerified != tc.want {
				t.Errorf("EmailVerified %v; want %v", p.EmailVerified, tc.want)
			}
		})
	}

	for _, tc := range []struct {
		name    string
		mutate  func(map[string]any)
		algNone bool
		badSig  bool
	}{
		{name: "wrong aud", mutate: func(c map[string]any) { c["aud"] = "other" }},
		{name: "wrong iss", mutate: func(c map[string]any) { c["iss"] = "https://evil.example" }},
		{name: "expired", mutate: func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() }},
		{name: "wrong nonce", mutate: func(c map[string]any) { c["nonce"] = "n" }},
		{name: "no nonce", mutate: func(c map[string]any) { delete(c, "nonce") }},
		{name: "alg none", algNone: true},
		{name: "bad signature", badSig: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.MutateIDToken(tc.mutate)
			f.SignIDTokens(tc.algNone, tc.badSig)
			t.Cleanup(func() {
				f.MutateIDToken(nil)
				f.SignIDTokens(false, false)
			})
			_, p, err := run(t, r, f, "google", testkit.IdPUser{Subject: "3", Email: "c@example.com", EmailVerified: true})
			if !errors.Is(err, ErrProvider) {
				t.Errorf("Complete: %v, profile %+v; want ErrProvider", err, p)
			}
		})
	}

	t.Run("wrong client secret", func(t *testing.T) {
		// Our configuration, not the request, is wrong: not a refusal.
		c := fakeConfig(f)
		c.ClientSecret = "wrong"
		r := newTestRegistry(t, newMemStates(), c)
		if _, _, err := run(t, r, f, "google", testkit.IdPUser{Subject: "4", Email: "d@example.com", EmailVerified: true}); !errors.Is(err, ErrUnreachable) {
			t.Errorf("Complete: %v; want ErrUnreachable", err)
		}
	})

	t.Run("token endpoint down", func(t *testing.T) {
		down := httptest.NewServer(http.NotFoundHandler())
		down.Close()
		c := fakeConfig(f)
		c.TokenURL = down.URL + "/token"
		r := newTestRegistry(t, newMemStates(), c)
		if _, _, err := run(t, r, f, "google", testkit.IdPUser{Subject: "5", Email: "e@example.com", EmailVerified: true}); !errors.Is(err, ErrUnreachable) {
			t.Errorf("Complete: %v; want ErrUnreachable", err)
		}
	})
}

func TestCompleteGitHub(t *testing.T) {
	f := testkit.StartIdP(t, testkit.FakeGitHub)
	r := newTestRegistry(t, newMemStates(), fakeConfig(f))
	for _, tc := range []struct {
		name      string
		emails    []testkit.GitHubEmail
		wantEmail string
	}{
		{"primary verified", []testkit.GitHubEmail{{Email: "p@example.com", Primary: true, Verified: true}}, "p@example.com"},
		{"primary verified after others", []testkit.GitHubEmail{
			{Email: "o@example.com", Verified: true}, {Email: "u@example.com"}, {Email: "p@example.com", Primary: true, Verified: true},
		}, "p@example.com"},
		{"primary unverified, other verified", []testkit.GitHubEmail{
			{Email: "o@example.com", Verified: true}, {Email: "p@example.com", Primary: true},
		}, ""},
		{"all unverified", []testkit.GitHubEmail{{Email: "p@example.com", Primary: true}, {Email: "o@example.com"}}, ""},
		{"no addresses", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := testkit.IdPUser{ID: 583231, Login: "octocat", Name: "Mona", Emails: tc.emails}
			_, p, err := run(t, r, f, "github", u)
			if err != nil {
				t.Fatalf("Complete: %v", err)
			}
			if p.Provider != "github" || p.Subject != "583231" || p.Username != "octocat" {
				t.Errorf("profile %+v; want provider github, subject 583231 (the numeric id), username octocat", p)
			}
			if p.Email != tc.wantEmail || p.EmailVerified != (tc.wantEmail != "") {
				t.Errorf("email %q verified %v; want %q verified %v", p.Email, p.EmailVerified, tc.wantEmail, tc.wantEmail != "")
			}
		})
	}

	t.Run("no id", func(t *testing.T) {
		if _, _, err := run(t, r, f, "github", testkit.IdPUser{ID: 0, Login: "ghost", Email: "g@example.com", EmailVerified: true}); !errors.Is(err, ErrProvider) {
			t.Errorf("Complete for a /user without id: %v; want ErrProvider", err)
		}
	})

	t.Run("PKCE and client", func(t *testing.T) {
		n := len(f.TokenRequests())
		if _, _, err := run(t, r, f, "github", testkit.IdPUser{ID: 7, Login: "x", Email: "x@example.com", EmailVerified: true}); err != nil {
			t.Fatalf("Complete: %v", err)
		}
		toks, auths := f.TokenRequests(), f.Authorizations()
		if len(toks) != n+1 {
			t.Fatalf("token requests: %d; want %d", len(toks), n+1)
		}
		tr, q := toks[n], auths[len(auths)-1].Query
		if !tr.Authorized || oauth2.S256ChallengeFromVerifier(tr.Form.Get("code_verifier")) != q.Get("code_challenge") {
			t.Errorf("token request %+v; want an authorized one whose verifier matches the challenge", tr)
		}
		if tr.ClientID != f.ClientID || tr.Secret != f.ClientSecret {
			t.Errorf("token request client %q; want the configured one", tr.ClientID)
		}
	})
}

func TestDefaults(t *testing.T) {
	g := withGoogleDefaults(Config{})
	if g.AuthURL != googleAuthURL || g.TokenURL != googleTokenURL || g.JWKSURL != googleJWKSURL || g.Issuer != googleIssuer || g.UserinfoURL != googleUserinfoURL {
		t.Errorf("Google defaults %+v; want Google's endpoints", g)
	}
	kept := withGoogleDefaults(Config{AuthURL: "https://a.example/auth", Issuer: "https://a.example"})
	if kept.AuthURL != "https://a.example/auth" || kept.Issuer != "https://a.example" || kept.TokenURL != googleTokenURL {
		t.Errorf("Google overrides %+v; want the overrides kept and the rest defaulted", kept)
	}
	h := withGitHubDefaults(Config{APIURL: "https://ghe.example/api/v3/"})
	if h.AuthURL != githubAuthURL || h.TokenURL != githubTokenURL || h.APIURL != "https://ghe.example/api/v3" {
		t.Errorf("GitHub defaults %+v; want github.com's auth and token URLs and the API URL without its trailing slash", h)
	}
	if d := withGitHubDefaults(Config{}); d.APIURL != githubAPIURL {
		t.Errorf("GitHub API default %q; want %q", d.APIURL, githubAPIURL)
	}
}

// TestDerive checks that the PKCE verifier and nonce derived from a state
// differ by purpose, state and key.
func TestDerive(t *testing.T) {
	r := newTestRegistry(t, newMemStates())
	a, b, c := r.derive("pkce", "s1"), r.derive("nonce", "s1"), r.derive("pkce", "s2")
	if a == b || a == c || b == c {
		t.Errorf("derive: pkce/s1 %s, nonce/s1 %s, pkce/s2 %s; want all different", a, b, c)
	}
	if len(a) != 43 {
		t.Errorf("derived verifier of %d characters; want 43 (RFC 7636 allows 43-128)", len(a))
	}
	other, _ := NewRegistry(context.Background(), testPublicURL, nil, newMemStates(), []byte(fmt.Sprintf("%032d", 1)), http.DefaultClient, slog.New(slog.DiscardHandler))
	if other.derive("pkce", "s1") == a {
		t.Errorf("derive does not depend on the key")
	}
}

// TestDiscoverRefusesUnusableDocuments checks that discovery stops at a
// document a sign-in could not work with, and takes the endpoints of a good one.
func TestDiscoverRefusesUnusableDocuments(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		edit func(doc map[string]any)
		want string // in the error; "" for success
	}{
		{"good", func(map[string]any) {}, ""},
		{"no token endpoint", func(d map[string]any) { delete(d, "token_endpoint") }, "token_endpoint"},
		{"relative authorization endpoint", func(d map[string]any) { d["authorization_endpoint"] = "/auth" }, "authorization_endpoint"},
		{"no jwks_uri", func(d map[string]any) { delete(d, "jwks_uri") }, "jwks_uri"},
		{"only PS256", func(d map[string]any) { d["id_token_signing_alg_values_supported"] = []string{"PS256"} }, "PS256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var srv *httptest.Server
			srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				doc := map[string]any{
					"issuer":                                srv.URL,
					"authorization_endpoint":                srv.URL + "/auth",
					"token_endpoint":                        srv.URL + "/token",
					"jwks_uri":                              srv.URL + "/certs",
					"id_token_signing_alg_values_supported": []string{"RS256", "PS256"},
				}
				tc.edit(doc)
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(doc)
			}))
			t.Cleanup(srv.Close)
			c, err := discover(context.Background(), Config{ID: "sso", Kind: KindOIDC, Issuer: srv.URL}, srv.Client())
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("discover: %v; want the endpoints", err)
			case tc.want == "" && (c.AuthURL != srv.URL+"/auth" || c.TokenURL != srv.URL+"/token" || c.JWKSURL != srv.URL+"/certs"):
				t.Errorf("discovered %+v; want the document's endpoints", c)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("discover: %v; want an error naming %s", err, tc.want)
			}
		})
	}
}
