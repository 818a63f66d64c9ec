package main

import (
	"context"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

// Black-box tests of providers.oidc: any OpenID Connect provider added by
// configuration alone, its endpoints found by discovery. The fake is
// Keycloak-shaped: discovery document, authorization, token with PKCE and
// client credentials, RS256 id_tokens and a JWKS.

// oidcStart starts a fake OIDC provider and a gateway whose config file has
// one providers.oidc entry "keycloak" (secret from the environment).
func oidcStart(tb testing.TB) (*testkit.Gateway, *testkit.FakeIdP) {
	tb.Helper()
	idp := testkit.StartIdP(tb, testkit.FakeOIDC)
	env := idp.OIDCEnv("keycloak")
	g := testkit.Start(tb, run, testkit.StartSMTP(tb), testkit.Options{Config: idp.OIDCConfig("keycloak", "Keycloak"), Env: env})
	testkit.NoServerErrors(tb, g)
	return g, idp
}

func TestOIDCProviderByConfig(t *testing.T) {
	t.Parallel()
	g, idp := oidcStart(t)

	// The button, in the provider's label, on the sign-in and sign-up pages.
	for _, page := range []string{"/login", "/signup"} {
		r := g.Client(t).Get(page)
		if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `href="/auth/keycloak"`) || !strings.Contains(string(r.Body), "Continue with Keycloak") {
			t.Errorf("GET %s: got %d; want a \"Continue with Keycloak\" button to /auth/keycloak\n%s", page, r.Status, testkit.Short(r.Body))
		}
	}

	// A new person signs in and has a verified account without a password.
	email := testkit.Email(t)
	person := socialGoogleUser(email)
	c := g.Client(t)
	me := socialWantSignedIn(t, c, "first sign-in", socialSignIn(t, c, idp, person, "/auth/keycloak"), "/account")
	if me.Email != email || !me.EmailVerified || me.HasPassword || !slices.Equal(me.Providers, []string{"keycloak"}) {
		t.Errorf("new user %+v; want %s, verified, no password, providers [keycloak]", me, email)
	}
	// The endpoints came from discovery; the flow used PKCE, a nonce and
	// the client secret from the environment.
	auths := idp.Authorizations()
	if len(auths) == 0 {
		t.Fatal("the provider's authorization endpoint (from discovery) was never called")
	}
	q := auths[len(auths)-1].Query
	if q.Get("code_challenge_method") != "S256" || q.Get("nonce") == "" || len(q.Get("state")) < 43 || !strings.Contains(q.Get("scope"), "openid") {
		t.Errorf("authorization request %v; want S256 PKCE, a nonce, a 32-byte state and scope openid", q)
	}
	toks := idp.TokenRequests()
	if len(toks) == 0 || !toks[len(toks)-1].Authorized || toks[len(toks)-1].Secret != idp.ClientSecret {
		t.Errorf("token requests %+v; want the last authorized with the secret from GATEHOUSE_PROVIDERS_OIDC_KEYCLOAK_CLIENT_SECRET", toks)
	}

	// A returning person is recognised by the subject, not the address.
	moved := person
	moved.Email = testkit.Email(t)
	again := g.Client(t)
	if u := socialWantSignedIn(t, again, "returning with a new address", socialSignIn(t, again, idp, moved, "/auth/keycloak"), "/account"); u.ID != me.ID {
		t.Errorf("returning person: user %q; want %q", u.ID, me.ID)
	}

	// Its id_tokens are validated like Google's.
	idp.MutateIDToken(func(c map[string]any) { c["iss"] = "https://sso.evil.example" })
	x := g.Client(t)
	other := socialGoogleUser(testkit.Email(t))
	socialWantRefused(t, x, "id_token from another issuer", socialSignIn(t, x, idp, other, "/auth/keycloak"), http.StatusBadRequest, "start again")
	idp.MutateIDToken(nil)
}

// TestOIDCDiscoveryRefused checks that an issuer whose discovery document
// names another issuer, or that cannot be reached, stops the gateway at
// startup with an error that names the entry.
func TestOIDCDiscoveryRefused(t *testing.T) {
	t.Parallel()
	mismatch := testkit.StartIdP(t, testkit.FakeOIDC)
	mismatch.SetDiscoveryIssuer("https://sso.evil.example")
	unreachable := testkit.StartIdP(t, testkit.FakeOIDC)
	unreachable.URL = "http://" + testkit.FreeAddr(t) // nothing listens there
	for name, idp := range map[string]*testkit.FakeIdP{"another issuer": mismatch, "unreachable": unreachable} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			cfg := filepath.Join(dir, "config.yaml")
			if err := os.WriteFile(cfg, []byte(idp.OIDCConfig("keycloak", "Keycloak")), 0o600); err != nil {
				t.Fatal(err)
			}
			env := map[string]string{
				"GATEHOUSE_SERVER_ADDRESS":     "127.0.0.1:0",
				"GATEHOUSE_SERVER_OPS_ADDRESS": "off",
				"GATEHOUSE_DATA_DIR":           dir,
			}
			maps.Copy(env, idp.OIDCEnv("keycloak"))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var logs testkit.SyncBuffer
			err := run(ctx, []string{"-config", cfg}, func(k string) string { return env[k] }, &logs)
			if err == nil || !strings.Contains(err.Error(), "keycloak") || !strings.Contains(err.Error(), "discovery") {
				t.Fatalf("run: got %v; want an error naming the keycloak provider and its discovery", err)
			}
			if strings.Contains(logs.String(), "gatehouse starting") {
				t.Errorf("the gateway started serving despite the failed discovery")
			}
		})
	}
}

// TestOIDCWithoutDiscovery checks that an entry with its endpoints set
// never reads the discovery document: here that document names another
// issuer, so reading it would stop startup.
func TestOIDCWithoutDiscovery(t *testing.T) {
	t.Parallel()
	idp := testkit.StartIdP(t, testkit.FakeOIDC)
	idp.SetDiscoveryIssuer("https://sso.evil.example")
	g := testkit.Start(t, run, testkit.StartSMTP(t), testkit.Options{Config: idp.OIDCConfigNoDiscovery("corp-sso", "Corp SSO"), Env: idp.OIDCEnv("corp-sso")})
	testkit.NoServerErrors(t, g)
	c := g.Client(t)
	email := testkit.Email(t)
	me := socialWantSignedIn(t, c, "sign-in", socialSignIn(t, c, idp, socialGoogleUser(email), "/auth/corp-sso"), "/account")
	if me.Email != email || !slices.Equal(me.Providers, []string{"corp-sso"}) {
		t.Errorf("user %+v; want %s with providers [corp-sso]", me, email)
	}
}
