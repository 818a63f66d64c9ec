package providers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/markbates/goth/providers/github"
	"golang.org/x/oauth2"

	"github.com/gatehouse/gatehouse/accounts"
)

// GitHub's public endpoints, used when the configuration overrides none.
// GitHub Enterprise Server: auth_url https://HOST/login/oauth/authorize,
// token_url https://HOST/login/oauth/access_token, api_url https://HOST/api/v3.
const (
	githubAuthURL  = "https://github.com/login/oauth/authorize"
	githubTokenURL = "https://github.com/login/oauth/access_token"
	githubAPIURL   = "https://api.github.com"
)

func withGitHubDefaults(c Config) Config {
	if c.AuthURL == "" {
		c.AuthURL = githubAuthURL
	}
	if c.TokenURL == "" {
		c.TokenURL = githubTokenURL
	}
	if c.APIURL == "" {
		c.APIURL = githubAPIURL
	}
	c.APIURL = strings.TrimSuffix(c.APIURL, "/")
	return c
}

// githubProvider signs in with GitHub: goth's provider builds the
// authorization URL and fetches the profile (/user); the address comes
// only from /user/emails, and only the primary one if GitHub verified it
// (OA-5). A person is identified by GitHub's numeric id, never by login or
// email (OA-4).
type githubProvider struct {
	goth      *github.Provider
	emailsURL string
	client    *http.Client
}

func newGitHub(c Config, callback string, client *http.Client) (impl, *oauth2.Config, error) {
	scopes := []string{"read:user", "user:email"}
	g := github.NewCustomisedURL(c.ClientID, c.ClientSecret, callback, c.AuthURL, c.TokenURL, c.APIURL+"/user", c.APIURL+"/user/emails", scopes...)
	g.SetName(c.ID)
	g.HTTPClient = client
	oc := &oauth2.Config{
		ClientID:     c.ClientID,
		ClientSecret: c.ClientSecret,
		Endpoint:     oauth2.Endpoint{AuthURL: c.AuthURL, TokenURL: c.TokenURL},
		RedirectURL:  callback,
		Scopes:       scopes,
	}
	return &githubProvider{goth: g, emailsURL: c.APIURL + "/user/emails", client: client}, oc, nil
}

func (p *githubProvider) authURL(state string) (string, error) {
	s, err := p.goth.BeginAuth(state)
	if err != nil {
		return "", fmt.Errorf("authorization url: %w", err)
	}
	return s.GetAuthURL()
}

func (p *githubProvider) profile(ctx context.Context, tok *oauth2.Token, _ string) (accounts.Profile, error) {
	u, err := p.goth.FetchUser(&github.Session{AccessToken: tok.AccessToken})
	// goth looks up /user/emails itself when the public address is empty,
	// and fails when none is verified; that is not an error here: the
	// address decision is made below either way.
	if err != nil && !errors.Is(err, github.ErrNoVerifiedGitHubPrimaryEmail) {
		return accounts.Profile{}, gothError(err)
	}
	if u.UserID == "" || u.UserID == "0" {
		return accounts.Profile{}, fmt.Errorf("%w: github /user has no id", ErrProvider)
	}
	var emails []struct {
		Email    string `json:"email"`
		Primary  bool   `json:"primary"`
		Verified bool   `json:"verified"`
	}
	if err := getJSON(ctx, p.client, p.emailsURL, tok.AccessToken, &emails); err != nil {
		return accounts.Profile{}, err
	}
	prof := accounts.Profile{Subject: u.UserID, Name: u.Name, Username: u.NickName, AvatarURL: u.AvatarURL}
	for _, e := range emails {
		if e.Primary && e.Verified {
			prof.Email, prof.EmailVerified = e.Email, true
			break
		}
	}
	return prof, nil
}

// githubStatus finds the status in goth's "GitHub API responded with a 401
// trying to fetch user information".
var githubStatus = regexp.MustCompile(`responded with a (\d{3})`)

// gothError classifies an error of goth's /user request: a network failure
// or a 5xx means GitHub is down, anything else refuses the sign-in.
func gothError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%w: github /user: %w", ErrUnreachable, err)
	}
	if m := githubStatus.FindStringSubmatch(err.Error()); m != nil {
		status, _ := strconv.Atoi(m[1])
		return fmt.Errorf("%w (%w)", statusError("github /user", status), err)
	}
	return fmt.Errorf("%w: github /user: %w", ErrProvider, err)
}

// decodeBody reads a JSON answer of bounded size.
func decodeBody(resp *http.Response, v any) error {
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v)
}
