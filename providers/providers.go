// Package providers signs people in with Google, GitHub and other OpenID
// Connect providers. It wires goth's providers (authorization URLs, profile
// fetching) with golang.org/x/oauth2 (PKCE S256 and the code exchange) and
// go-oidc (id_token validation), keeps the OAuth state itself, and turns a
// provider's answer into an accounts.Profile whose EmailVerified can be
// trusted: Google's email_verified from a validated id_token, GitHub's
// primary and verified address from /user/emails.
//
// gothic, goth's HTTP helper, is not used: it keeps its session store and
// provider list in package globals and takes the provider from the query
// string. The state here is ours: 32 random bytes, single use, bound to the
// browser that started the flow and to the provider, kept in the database
// so that a restart between the redirect and the callback loses nothing.
package providers

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/accounts"
)

// Errors of a sign-in flow. The server maps each to a page that says what
// to do next; none of them is a server failure.
var (
	// ErrUnknownProvider: the route names no configured provider.
	ErrUnknownProvider = errors.New("unknown provider")
	// ErrState: the callback's state is missing, unknown, used, expired, meant
	// for another provider, or from another browser (a stale or forged callback).
	ErrState = errors.New("invalid or expired sign-in attempt")
	// ErrDenied: the person cancelled, or the provider refused (?error=…).
	ErrDenied = errors.New("sign-in cancelled or refused at the provider")
	// ErrProvider: the provider refused the code (replayed, injected,
	// issued to another client: a 4xx from its token endpoint), or its
	// answer failed our checks (id_token signature, alg, iss, aud, expiry,
	// nonce, subject; a 4xx from its API). The sign-in is refused: the
	// request, not the server, is at fault.
	ErrProvider = errors.New("the provider's answer could not be verified")
	// ErrUnreachable: the provider could not be reached, timed out, or
	// answered with a server error (5xx): try again later.
	ErrUnreachable = errors.New("the provider could not be reached")
)

// Kind is the protocol family of a provider.
type Kind string

// Provider kinds.
const (
	KindGoogle Kind = "google"
	KindGitHub Kind = "github"
	KindOIDC   Kind = "oidc"
)

// Config configures one provider. Empty endpoints take the provider's
// public defaults.
type Config struct {
	ID           string // route name: /auth/{ID}
	Label        string // shown on buttons: "Google"
	Kind         Kind
	ClientID     string
	ClientSecret string
	AuthURL      string
	TokenURL     string
	// OpenID Connect (Google and generic).
	Issuer      string
	JWKSURL     string
	UserinfoURL string
	// GitHub: the API base, https://api.github.com or https://HOST/api/v3.
	APIURL string
}

// Intent says what a completed flow is for.
type Intent string

// Intents.
const (
	IntentSignIn  Intent = "sign_in"
	IntentConnect Intent = "connect"
)

// Flow is the server-side record of one authorization request.
type Flow struct {
	Provider string
	Intent   Intent
	// UserID and SessionID name the signed-in user who asked to connect.
	UserID    string
	SessionID string
	ReturnTo  string
	// Browser is a hash of the binding cookie of the browser that started
	// the flow; the callback must come from the same browser (OA-1).
	Browser   string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// StateStore keeps flows by the hash of their state.
type StateStore interface {
	// InsertOAuthState stores a flow.
	InsertOAuthState(ctx context.Context, key string, f Flow) error
	// TakeOAuthState returns and deletes a flow; of concurrent callers only
	// one gets it, the others get accounts.ErrNotFound.
	TakeOAuthState(ctx context.Context, key string) (Flow, error)
}

// flowTTL bounds how long a person may take at the provider.
const flowTTL = 10 * time.Minute

// Registry holds the configured providers.
type Registry struct {
	list   []*Provider
	byID   map[string]*Provider
	states StateStore
	key    []byte
	client *http.Client
	now    func() time.Time
	log    *slog.Logger
}

// Provider is one configured provider.
type Provider struct {
	ID    string
	Label string
	Kind  Kind
	impl  impl
	oauth *oauth2.Config
}

// impl is what differs between provider kinds: how the authorization URL
// is built and how the token response becomes a profile.
type impl interface {
	authURL(state string) (string, error)
	profile(ctx context.Context, tok *oauth2.Token, nonce string) (accounts.Profile, error)
}

// NewRegistry builds the providers. key (32 bytes) derives each flow's PKCE
// verifier and nonce from its state, so neither is stored anywhere.
func NewRegistry(ctx context.Context, publicURL string, cfgs []Config, states StateStore, key []byte, client *http.Client, logger *slog.Logger) (*Registry, error) {
	r := &Registry{byID: map[string]*Provider{}, states: states, key: key, client: client, now: time.Now, log: logger}
	for _, c := range cfgs {
		if c.ClientID == "" {
			continue
		}
		if _, dup := r.byID[c.ID]; dup {
			return nil, fmt.Errorf("provider %q configured twice", c.ID)
		}
		p, err := newProvider(ctx, publicURL, c, client)
		if err != nil {
			return nil, fmt.Errorf("provider %s: %w", c.ID, err)
		}
		r.list = append(r.list, p)
		r.byID[c.ID] = p
	}
	return r, nil
}

func newProvider(ctx context.Context, publicURL string, c Config, client *http.Client) (*Provider, error) {
	callback := publicURL + "/auth/" + c.ID + "/callback"
	p := &Provider{ID: c.ID, Label: c.Label, Kind: c.Kind}
	var err error
	switch c.Kind {
	case KindGoogle, KindOIDC:
		if c.Kind == KindGoogle {
			c = withGoogleDefaults(c)
		} else if c.AuthURL == "" {
			if c, err = discover(ctx, c, client); err != nil {
				return nil, err
			}
		}
		p.impl, p.oauth, err = newOIDC(c, callback, client)
	case KindGitHub:
		p.impl, p.oauth, err = newGitHub(withGitHubDefaults(c), callback, client)
	default:
		err = fmt.Errorf("unknown kind %q", c.Kind)
	}
	return p, err
}

// Providers lists the configured providers in configuration order.
func (r *Registry) Providers() []*Provider { return r.list }

// AuthOrigins lists the origins of the providers' authorization pages, for
// the Content-Security-Policy's form-action.
func (r *Registry) AuthOrigins() []string {
	var out []string
	for _, p := range r.list {
		if u, err := url.Parse(p.oauth.Endpoint.AuthURL); err == nil {
			out = append(out, u.Scheme+"://"+u.Host)
		}
	}
	return out
}

// Get returns a configured provider.
func (r *Registry) Get(id string) (*Provider, bool) {
	p, ok := r.byID[id]
	return p, ok
}

// Begin starts a flow with provider id and returns the URL to send the
// browser to. browser is the value of the browser's binding cookie.
func (r *Registry) Begin(ctx context.Context, id string, f Flow, browser string) (string, error) {
	p, ok := r.byID[id]
	if !ok {
		return "", ErrUnknownProvider
	}
	state := base64.RawURLEncoding.EncodeToString(random(32))
	f.Provider = id
	f.Browser = hashHex(browser)
	f.CreatedAt = r.now().UTC()
	f.ExpiresAt = f.CreatedAt.Add(flowTTL)
	if err := r.states.InsertOAuthState(ctx, hashHex(state), f); err != nil {
		return "", fmt.Errorf("store oauth state: %w", err)
	}
	base, err := p.impl.authURL(state)
	if err != nil {
		return "", err
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("authorization url: %w", err)
	}
	q := u.Query()
	q.Set("code_challenge", oauth2.S256ChallengeFromVerifier(r.derive("pkce", state)))
	q.Set("code_challenge_method", "S256")
	if p.Kind != KindGitHub {
		q.Set("nonce", r.derive("nonce", state))
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// Complete finishes a flow at its callback: it checks the state (single
// use, this provider, this browser, not expired), exchanges the code with
// the PKCE verifier, and returns the flow and the verified profile.
func (r *Registry) Complete(ctx context.Context, id string, q url.Values, browser string) (Flow, accounts.Profile, error) {
	p, ok := r.byID[id]
	if !ok {
		return Flow{}, accounts.Profile{}, ErrUnknownProvider
	}
	state := q.Get("state")
	if state == "" || len(state) > 256 {
		return Flow{}, accounts.Profile{}, ErrState
	}
	f, err := r.states.TakeOAuthState(ctx, hashHex(state))
	if errors.Is(err, accounts.ErrNotFound) {
		return Flow{}, accounts.Profile{}, ErrState
	}
	if err != nil {
		return Flow{}, accounts.Profile{}, fmt.Errorf("take oauth state: %w", err)
	}
	if f.Provider != id || browser == "" || subtle.ConstantTimeCompare([]byte(f.Browser), []byte(hashHex(browser))) != 1 || !r.now().Before(f.ExpiresAt) {
		return Flow{}, accounts.Profile{}, ErrState
	}
	if e := q.Get("error"); e != "" {
		r.log.Info("provider refused sign-in", "event", "oauth_denied", "provider", id, "error", truncate(e, 64))
		return f, accounts.Profile{}, ErrDenied
	}
	code := q.Get("code")
	if code == "" {
		return f, accounts.Profile{}, ErrState
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, r.client)
	tok, err := p.oauth.Exchange(ctx, code, oauth2.VerifierOption(r.derive("pkce", state)))
	if err != nil {
		return f, accounts.Profile{}, exchangeError(err)
	}
	prof, err := p.impl.profile(ctx, tok, r.derive("nonce", state))
	if err != nil {
		return f, accounts.Profile{}, err
	}
	prof.Provider = id
	return f, prof, nil
}

// derive computes a per-flow secret from the state.
func (r *Registry) derive(purpose, state string) string {
	m := hmac.New(sha256.New, r.key)
	m.Write([]byte(purpose + "\x00" + state))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// exchangeError classifies a failed code exchange: a token endpoint that
// refuses the code (4xx, e.g. invalid_grant) refuses the sign-in; one that
// fails (5xx) or cannot be reached is down.
func exchangeError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		switch re.ErrorCode {
		case "invalid_client", "unauthorized_client", "incorrect_client_credentials":
			// The provider refuses our client, not this code: a
			// configuration error no request can fix.
			return fmt.Errorf("%w: token endpoint refused the client (%s): check client_id and client_secret", ErrUnreachable, re.ErrorCode)
		}
		return statusError("token endpoint", re.Response.StatusCode)
	}
	return fmt.Errorf("%w: %w", ErrUnreachable, err)
}

// statusError classifies a provider endpoint's unexpected status.
func statusError(what string, status int) error {
	if status >= 500 || status == http.StatusTooManyRequests {
		return fmt.Errorf("%w: %s answered %d", ErrUnreachable, what, status)
	}
	return fmt.Errorf("%w: %s answered %d", ErrProvider, what, status)
}

func hashHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func random(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// getJSON fetches url with a bearer token into v.
func getJSON(ctx context.Context, client *http.Client, u, token string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrProvider, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return statusError(req.URL.Path, resp.StatusCode)
	}
	if err := decodeBody(resp, v); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrProvider, req.URL.Path, err)
	}
	return nil
}
