package providers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/markbates/goth/providers/openidConnect"
	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/accounts"
)

// Google's public endpoints, used when the configuration overrides none.
const (
	googleAuthURL     = "https://accounts.google.com/o/oauth2/v2/auth"
	googleTokenURL    = "https://oauth2.googleapis.com/token"
	googleUserinfoURL = "https://openidconnect.googleapis.com/v1/userinfo"
	googleJWKSURL     = "https://www.googleapis.com/oauth2/v3/certs"
	googleIssuer      = "https://accounts.google.com"
)

func withGoogleDefaults(c Config) Config {
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	def(&c.AuthURL, googleAuthURL)
	def(&c.TokenURL, googleTokenURL)
	def(&c.UserinfoURL, googleUserinfoURL)
	def(&c.JWKSURL, googleJWKSURL)
	def(&c.Issuer, googleIssuer)
	return c
}

// discovery bounds how long startup waits for an issuer's discovery document.
const (
	discoveryTries = 3
	discoveryPause = 2 * time.Second
)

// discover fills c's endpoints from the issuer's discovery document
// (<issuer>/.well-known/openid-configuration). go-oidc refuses a document
// whose issuer differs from the configured one; a document without usable
// endpoints, or whose providers sign only with algorithms the verifier does
// not accept, is refused here, so that a misconfiguration stops startup
// instead of failing every sign-in. An issuer that cannot be reached is
// retried a few times.
func discover(ctx context.Context, c Config, client *http.Client) (Config, error) {
	var err error
	for try := 1; ; try++ {
		var p *oidc.Provider
		p, err = oidc.NewProvider(oidc.ClientContext(ctx, client), c.Issuer)
		if err == nil {
			return discovered(c, p)
		}
		var mismatch *oidc.IssuerMismatchError
		if try == discoveryTries || errors.As(err, &mismatch) || ctx.Err() != nil {
			return c, fmt.Errorf("discovery at %s: %w", c.Issuer, err)
		}
		select {
		case <-ctx.Done():
			return c, fmt.Errorf("discovery at %s: %w", c.Issuer, ctx.Err())
		case <-time.After(discoveryPause):
		}
	}
}

// discovered checks a discovery document and takes its endpoints.
func discovered(c Config, p *oidc.Provider) (Config, error) {
	var meta struct {
		JWKS     string   `json:"jwks_uri"`
		Userinfo string   `json:"userinfo_endpoint"`
		Algs     []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := p.Claims(&meta); err != nil {
		return c, fmt.Errorf("discovery at %s: %w", c.Issuer, err)
	}
	ep := p.Endpoint()
	for name, u := range map[string]string{"authorization_endpoint": ep.AuthURL, "token_endpoint": ep.TokenURL, "jwks_uri": meta.JWKS} {
		if !isHTTPURL(u) {
			return c, fmt.Errorf("discovery at %s: %s is not an http(s) URL: %q", c.Issuer, name, u)
		}
	}
	if len(meta.Algs) > 0 && !slices.ContainsFunc(meta.Algs, func(a string) bool { return slices.Contains(signingAlgs, a) }) {
		return c, fmt.Errorf("discovery at %s: the provider signs id_tokens with %v; Gatehouse accepts %v", c.Issuer, meta.Algs, signingAlgs)
	}
	c.AuthURL, c.TokenURL, c.JWKSURL, c.UserinfoURL = ep.AuthURL, ep.TokenURL, meta.JWKS, meta.Userinfo
	return c, nil
}

// signingAlgs are the id_token algorithms the verifier accepts; never "none".
var signingAlgs = []string{oidc.RS256, oidc.ES256}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// oidcProvider is Google or another OpenID Connect provider: goth's
// openidConnect provider builds the authorization URL and maps claims to a
// profile; go-oidc validates the id_token (signature from the JWKS, iss,
// aud, exp; never alg "none"), and the nonce is checked here (OA-3).
type oidcProvider struct {
	goth     *openidConnect.Provider
	verifier *oidc.IDTokenVerifier
}

func newOIDC(c Config, callback string, client *http.Client) (impl, *oauth2.Config, error) {
	scopes := []string{oidc.ScopeOpenID, "email", "profile"}
	g, err := openidConnect.NewCustomisedURL(c.ClientID, c.ClientSecret, callback, c.AuthURL, c.TokenURL, c.Issuer, c.UserinfoURL, "", scopes...)
	if err != nil {
		return nil, nil, err
	}
	g.SetName(c.ID)
	g.HTTPClient = client
	// The id_token carries the claims we need, validated; the userinfo
	// answer would add nothing we trust more.
	g.SkipUserInfoRequest = true
	keys := oidc.NewRemoteKeySet(oidc.ClientContext(context.Background(), client), c.JWKSURL)
	verifier := oidc.NewVerifier(c.Issuer, keys, &oidc.Config{ClientID: c.ClientID, SupportedSigningAlgs: signingAlgs})
	oc := &oauth2.Config{
		ClientID:     c.ClientID,
		ClientSecret: c.ClientSecret,
		Endpoint:     oauth2.Endpoint{AuthURL: c.AuthURL, TokenURL: c.TokenURL},
		RedirectURL:  callback,
		Scopes:       scopes,
	}
	return &oidcProvider{goth: g, verifier: verifier}, oc, nil
}

func (p *oidcProvider) authURL(state string) (string, error) {
	s, err := p.goth.BeginAuth(state)
	if err != nil {
		return "", fmt.Errorf("authorization url: %w", err)
	}
	return s.GetAuthURL()
}

// idClaims are the id_token claims identity decisions rest on.
type idClaims struct {
	Email         string   `json:"email"`
	EmailVerified flexBool `json:"email_verified"`
	Name          string   `json:"name"`
	Picture       string   `json:"picture"`
	Username      string   `json:"preferred_username"`
}

func (p *oidcProvider) profile(ctx context.Context, tok *oauth2.Token, nonce string) (accounts.Profile, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return accounts.Profile{}, fmt.Errorf("%w: no id_token in the token response", ErrProvider)
	}
	idt, err := p.verifier.Verify(ctx, raw)
	if err != nil {
		return accounts.Profile{}, idTokenError(err)
	}
	if idt.Subject == "" {
		return accounts.Profile{}, fmt.Errorf("%w: id_token has no subject", ErrProvider)
	}
	if idt.Nonce == "" || idt.Nonce != nonce {
		return accounts.Profile{}, fmt.Errorf("%w: id_token nonce does not match", ErrProvider)
	}
	var c idClaims
	if err := idt.Claims(&c); err != nil {
		return accounts.Profile{}, fmt.Errorf("%w: id_token claims: %w", ErrProvider, err)
	}
	prof := accounts.Profile{
		Subject:       idt.Subject,
		Email:         c.Email,
		EmailVerified: bool(c.EmailVerified),
		Name:          c.Name,
		Username:      c.Username,
		AvatarURL:     c.Picture,
	}
	// goth maps the (now validated) claims to its profile shape; its own
	// checks of the same token must agree.
	if u, err := p.goth.FetchUser(&openidConnect.Session{AccessToken: tok.AccessToken, IDToken: raw, ExpiresAt: tok.Expiry}); err == nil {
		prof.Name = firstNonEmpty(u.Name, prof.Name)
		prof.Username = firstNonEmpty(u.NickName, prof.Username)
		prof.AvatarURL = firstNonEmpty(u.AvatarURL, prof.AvatarURL)
	}
	return prof, nil
}

// idTokenError classifies a failed id_token check. Fetching the provider's
// keys (at the first sign-in, and when a token names an unknown key) can
// fail because the provider is down; go-oidc reports that only in the
// message ("fetching keys", with %v, so the cause cannot be unwrapped).
// Every other failure is the token's.
func idTokenError(err error) error {
	if strings.Contains(err.Error(), "fetching keys") {
		return fmt.Errorf("%w: id_token keys: %w", ErrUnreachable, err)
	}
	return fmt.Errorf("%w: id_token: %w", ErrProvider, err)
}

// flexBool accepts true/false as JSON booleans or strings: some providers
// send email_verified as "true".
type flexBool bool

func (b *flexBool) UnmarshalJSON(data []byte) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case bool:
		*b = flexBool(x)
	case string:
		*b = flexBool(x == "true")
	default:
		*b = false
	}
	return nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
