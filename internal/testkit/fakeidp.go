package testkit

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse/gatehouse/config"
)

// IdPKind selects which provider a FakeIdP imitates.
type IdPKind string

// Fake provider kinds.
const (
	FakeGoogle IdPKind = "google"
	FakeGitHub IdPKind = "github"
	// FakeOIDC is a generic OpenID Connect provider (Keycloak-like) that
	// publishes its endpoints in a discovery document.
	FakeOIDC IdPKind = "oidc"
)

// IdPUser is the person signed in at a fake provider.
type IdPUser struct {
	// Subject is Google's "sub"; for GitHub, ID is the numeric id.
	Subject       string
	ID            int64
	Login         string
	Name          string
	Email         string
	EmailVerified bool
	// Emails is GitHub's /user/emails answer; empty means one primary
	// address Email with verified EmailVerified.
	Emails []GitHubEmail
}

// GitHubEmail is one entry of GitHub's /user/emails.
type GitHubEmail struct {
	Email    string `json:"email"`
	Primary  bool   `json:"primary"`
	Verified bool   `json:"verified"`
}

// AuthorizeRequest is a recorded call to the authorization endpoint.
type AuthorizeRequest struct {
	Query url.Values
}

// TokenRequest is a recorded call to the token endpoint.
type TokenRequest struct {
	Form       url.Values
	BasicAuth  bool
	ClientID   string
	Secret     string
	Authorized bool // the checks below passed
	Failure    string
}

// FakeIdP is a fake Google or GitHub on loopback speaking the real
// protocols: an authorization endpoint that "signs the user in" at once and
// redirects back with a code, a token endpoint that checks the client
// credentials, the redirect URI and the PKCE verifier (S256), and for
// Google an RS256-signed id_token with a served JWKS; for GitHub /user and
// /user/emails. Tests change User, Deny and the token hooks between flows.
type FakeIdP struct {
	Kind         IdPKind
	URL          string
	ClientID     string
	ClientSecret string

	mu       sync.Mutex
	user     IdPUser
	deny     string
	codes    map[string]grant
	tokens   map[string]IdPUser
	auths    []AuthorizeRequest
	tokenLog []TokenRequest
	// mutate, when set, edits id_token claims and header before signing.
	mutate func(claims map[string]any)
	// signing key and an unrelated key for bad-signature tests.
	key, otherKey *rsa.PrivateKey
	algNone       bool
	badSignature  bool
	// discoveryIssuer, when set, is the issuer the discovery document claims.
	discoveryIssuer string
	// failing maps endpoint paths to the status they answer instead.
	failing map[string]int
}

type grant struct {
	user        IdPUser
	redirectURI string
	challenge   string
	method      string
	nonce       string
	clientID    string
}

// StartIdP starts a fake provider of kind and stops it when the test ends.
func StartIdP(tb testing.TB, kind IdPKind) *FakeIdP {
	tb.Helper()
	f := &FakeIdP{
		Kind: kind, ClientID: string(kind) + "-client-id", ClientSecret: string(kind) + "-client-secret",
		codes: map[string]grant{}, tokens: map[string]IdPUser{}, failing: map[string]int{},
	}
	var err error
	if f.key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		tb.Fatal(err)
	}
	if f.otherKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		tb.Fatal(err)
	}
	mux := http.NewServeMux()
	switch kind {
	case FakeGoogle:
		mux.HandleFunc("GET /o/oauth2/v2/auth", f.authorize)
		mux.HandleFunc("POST /token", f.token)
		mux.HandleFunc("GET /oauth2/v3/certs", f.jwks)
		mux.HandleFunc("GET /v1/userinfo", f.userinfo)
	case FakeOIDC:
		mux.HandleFunc("GET /.well-known/openid-configuration", f.discovery)
		mux.HandleFunc("GET /protocol/openid-connect/auth", f.authorize)
		mux.HandleFunc("POST /protocol/openid-connect/token", f.token)
		mux.HandleFunc("GET /protocol/openid-connect/certs", f.jwks)
		mux.HandleFunc("GET /protocol/openid-connect/userinfo", f.userinfo)
	case FakeGitHub:
		mux.HandleFunc("GET /login/oauth/authorize", f.authorize)
		mux.HandleFunc("POST /login/oauth/access_token", f.token)
		mux.HandleFunc("GET /api/v3/user", f.githubUser)
		mux.HandleFunc("GET /api/v3/user/emails", f.githubEmails)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		status := f.failing[r.URL.Path]
		f.mu.Unlock()
		if status != 0 {
			http.Error(w, `{"error":"failing on purpose"}`, status)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	tb.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// FailEndpoint makes the endpoint at path (e.g. "/token", "/api/v3/user")
// answer status until called again with 0.
func (f *FakeIdP) FailEndpoint(path string, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if status == 0 {
		delete(f.failing, path)
		return
	}
	f.failing[path] = status
}

// CodeForClient issues an authorization code for the current user to
// another client, as the provider would for another application: the
// token endpoint refuses it to this fake's client.
func (f *FakeIdP) CodeForClient(clientID, redirectURI string) string {
	code := randomString()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.codes[code] = grant{user: f.user, redirectURI: redirectURI, clientID: clientID}
	return code
}

// OIDCConfig returns a config file entry (YAML) for a fake of kind FakeOIDC
// with route name id, without its client secret (see Env).
func (f *FakeIdP) OIDCConfig(id, label string) string {
	return fmt.Sprintf("providers:\n  oidc:\n    - id: %s\n      label: %s\n      issuer: %s\n      client_id: %s\n",
		id, label, f.URL, f.ClientID)
}

// OIDCConfigNoDiscovery is OIDCConfig with the endpoints set, so the
// gateway does not read the discovery document.
func (f *FakeIdP) OIDCConfigNoDiscovery(id, label string) string {
	base := f.URL + "/protocol/openid-connect"
	return f.OIDCConfig(id, label) + fmt.Sprintf("      auth_url: %s/auth\n      token_url: %s/token\n      jwks_url: %s/certs\n", base, base, base)
}

// OIDCEnv returns the variable that gives the FakeOIDC entry id its secret.
func (f *FakeIdP) OIDCEnv(id string) map[string]string {
	return map[string]string{config.OIDCEnvName(id, "client_secret"): f.ClientSecret}
}

// discovery serves the OpenID Connect discovery document.
func (f *FakeIdP) discovery(w http.ResponseWriter, _ *http.Request) {
	base := f.URL + "/protocol/openid-connect"
	f.mu.Lock()
	issuer := f.discoveryIssuer
	f.mu.Unlock()
	if issuer == "" {
		issuer = f.URL
	}
	writeJSON(w, map[string]any{
		"issuer":                                issuer,
		"authorization_endpoint":                base + "/auth",
		"token_endpoint":                        base + "/token",
		"jwks_uri":                              base + "/certs",
		"userinfo_endpoint":                     base + "/userinfo",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"code_challenge_methods_supported":      []string{"S256"},
	})
}

// SetDiscoveryIssuer makes the discovery document claim another issuer.
func (f *FakeIdP) SetDiscoveryIssuer(issuer string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.discoveryIssuer = issuer
}

// Env returns the gateway configuration pointing at this fake.
func (f *FakeIdP) Env() map[string]string {
	p := "GATEHOUSE_PROVIDERS_" + strings.ToUpper(string(f.Kind)) + "_"
	env := map[string]string{p + "CLIENT_ID": f.ClientID, p + "CLIENT_SECRET": f.ClientSecret}
	switch f.Kind {
	case FakeGoogle:
		env[p+"AUTH_URL"] = f.URL + "/o/oauth2/v2/auth"
		env[p+"TOKEN_URL"] = f.URL + "/token"
		env[p+"USERINFO_URL"] = f.URL + "/v1/userinfo"
		env[p+"JWKS_URL"] = f.URL + "/oauth2/v3/certs"
		env[p+"ISSUER"] = f.URL
	case FakeGitHub:
		env[p+"AUTH_URL"] = f.URL + "/login/oauth/authorize"
		env[p+"TOKEN_URL"] = f.URL + "/login/oauth/access_token"
		env[p+"API_URL"] = f.URL + "/api/v3"
	}
	return env
}

// SetUser sets who is signed in at the provider for the next flows.
func (f *FakeIdP) SetUser(u IdPUser) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.user = u
}

// Deny makes the authorization endpoint answer with ?error=code ("" to stop).
func (f *FakeIdP) Deny(code string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deny = code
}

// MutateIDToken edits the claims of the next id_tokens (nil to stop).
func (f *FakeIdP) MutateIDToken(fn func(claims map[string]any)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mutate = fn
}

// SignIDTokens chooses how id_tokens are signed: with the served key
// (default), with "alg":"none", or with a key that is not in the JWKS.
func (f *FakeIdP) SignIDTokens(algNone, badSignature bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.algNone, f.badSignature = algNone, badSignature
}

// Authorizations returns the recorded authorization requests.
func (f *FakeIdP) Authorizations() []AuthorizeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]AuthorizeRequest(nil), f.auths...)
}

// TokenRequests returns the recorded token requests.
func (f *FakeIdP) TokenRequests() []TokenRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]TokenRequest(nil), f.tokenLog...)
}

// authorize records the request and, as if the person consented at once,
// redirects to redirect_uri with a code (or the configured error) and the
// state it was given.
func (f *FakeIdP) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f.mu.Lock()
	f.auths = append(f.auths, AuthorizeRequest{Query: q})
	deny, user := f.deny, f.user
	f.mu.Unlock()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || q.Get("client_id") != f.ClientID || q.Get("response_type") != "code" {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	back := url.Values{"state": {q.Get("state")}}
	if deny != "" {
		back.Set("error", deny)
		back.Set("error_description", "The user denied access.")
	} else {
		code := randomString()
		f.mu.Lock()
		f.codes[code] = grant{
			user: user, redirectURI: q.Get("redirect_uri"), challenge: q.Get("code_challenge"),
			method: q.Get("code_challenge_method"), nonce: q.Get("nonce"), clientID: q.Get("client_id"),
		}
		f.mu.Unlock()
		back.Set("code", code)
	}
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

// token exchanges a code after checking the client, the redirect URI and
// the PKCE verifier; a code works once.
func (f *FakeIdP) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	rec := TokenRequest{Form: r.PostForm}
	id, secret, basic := r.BasicAuth()
	if basic {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	rec.BasicAuth, rec.ClientID, rec.Secret = basic, id, secret
	fail := func(status int, code string) {
		rec.Failure = code
		f.mu.Lock()
		f.tokenLog = append(f.tokenLog, rec)
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
	}
	if id != f.ClientID || subtle.ConstantTimeCompare([]byte(secret), []byte(f.ClientSecret)) != 1 {
		fail(http.StatusUnauthorized, "invalid_client")
		return
	}
	f.mu.Lock()
	g, ok := f.codes[r.PostForm.Get("code")]
	if ok {
		delete(f.codes, r.PostForm.Get("code"))
	}
	f.mu.Unlock()
	switch {
	case r.PostForm.Get("grant_type") != "authorization_code" || !ok || g.clientID != id:
		fail(http.StatusBadRequest, "invalid_grant")
		return
	case g.redirectURI != r.PostForm.Get("redirect_uri"):
		fail(http.StatusBadRequest, "redirect_uri_mismatch")
		return
	case g.method != "S256" || g.challenge == "" || s256(r.PostForm.Get("code_verifier")) != g.challenge:
		fail(http.StatusBadRequest, "invalid_grant") // PKCE failed
		return
	}
	access := randomString()
	f.mu.Lock()
	f.tokens[access] = g.user
	f.mu.Unlock()
	resp := map[string]any{"access_token": access, "token_type": "bearer", "expires_in": 3600}
	if f.Kind == FakeGitHub {
		resp["scope"] = "read:user,user:email"
	} else {
		idt, err := f.idToken(g)
		if err != nil {
			fail(http.StatusInternalServerError, "server_error")
			return
		}
		resp["id_token"] = idt
	}
	rec.Authorized = true
	f.mu.Lock()
	f.tokenLog = append(f.tokenLog, rec)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

// idToken signs Google's id_token for a grant.
func (f *FakeIdP) idToken(g grant) (string, error) {
	now := time.Now()
	claims := map[string]any{
		"iss": f.URL, "aud": f.ClientID, "sub": g.user.Subject, "azp": f.ClientID,
		"email": g.user.Email, "email_verified": g.user.EmailVerified, "name": g.user.Name,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
	if g.nonce != "" {
		claims["nonce"] = g.nonce
	}
	f.mu.Lock()
	mutate, algNone, bad := f.mutate, f.algNone, f.badSignature
	f.mu.Unlock()
	if mutate != nil {
		mutate(claims)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	if algNone {
		head := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
		return head + "." + base64.RawURLEncoding.EncodeToString(payload) + ".", nil
	}
	key := f.key
	if bad {
		key = f.otherKey
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "test-key"}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	sig, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return sig.CompactSerialize()
}

func (f *FakeIdP) jwks(w http.ResponseWriter, _ *http.Request) {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &f.key.PublicKey, KeyID: "test-key", Algorithm: "RS256", Use: "sig"}}}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(set)
}

// bearer returns the user of the request's access token.
func (f *FakeIdP) bearer(w http.ResponseWriter, r *http.Request) (IdPUser, bool) {
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	u, ok := f.tokens[tok]
	f.mu.Unlock()
	if !ok {
		http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
	}
	return u, ok
}

func (f *FakeIdP) userinfo(w http.ResponseWriter, r *http.Request) {
	u, ok := f.bearer(w, r)
	if !ok {
		return
	}
	writeJSON(w, map[string]any{"sub": u.Subject, "email": u.Email, "email_verified": u.EmailVerified, "name": u.Name})
}

func (f *FakeIdP) githubUser(w http.ResponseWriter, r *http.Request) {
	u, ok := f.bearer(w, r)
	if !ok {
		return
	}
	// The public profile address is null unless the person made it public;
	// Gatehouse must not trust it either way.
	writeJSON(w, map[string]any{"id": u.ID, "login": u.Login, "name": u.Name, "email": nil, "avatar_url": "https://avatars.example/" + strconv.FormatInt(u.ID, 10)})
}

func (f *FakeIdP) githubEmails(w http.ResponseWriter, r *http.Request) {
	u, ok := f.bearer(w, r)
	if !ok {
		return
	}
	emails := u.Emails
	if len(emails) == 0 && u.Email != "" {
		emails = []GitHubEmail{{Email: u.Email, Primary: true, Verified: u.EmailVerified}}
	}
	if emails == nil {
		emails = []GitHubEmail{}
	}
	writeJSON(w, emails)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func randomString() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// SignInWith runs a provider flow as a browser would: GET start (e.g.
// "/auth/google?return_to=/x" or a POST connect answer's Location), follow
// the redirect to the fake provider, and follow its redirect back to the
// gateway's callback. It returns the callback's answer.
func (c *Client) SignInWith(start string) *Response {
	c.tb.Helper()
	r := c.Get(start)
	return c.FollowToCallback(r)
}

// FollowToCallback follows a redirect to a provider and back to the gateway.
func (c *Client) FollowToCallback(r *Response) *Response {
	c.tb.Helper()
	return c.Get(c.CallbackFrom(r))
}

// String describes a user for test messages.
func (u IdPUser) String() string { return fmt.Sprintf("%s/%d <%s>", u.Subject, u.ID, u.Email) }
