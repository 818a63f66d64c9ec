package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"math/big"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

// Black-box tests of "Sign in with Google and GitHub" (issue 3; SECURITY.md
// OA-1..6, LK-1..4, RL-5, IN-4): the real gateway over HTTP, fake Google and
// GitHub on loopback speaking the real protocols, a database the tests can
// look into, and mails captured by a real SMTP server.

const (
	socialPassword = "social pass phrase 4821"
	socialOtherPW  = "another pass phrase 5932"
	socialWrongPW  = "not the owner's phrase 17"
	socialMailWait = 15 * time.Second
	socialSPA      = "http://spa.example:5173"
	// socialLinkCookie and socialBindCookie are the pending-link and the
	// browser-binding cookies on a plain-HTTP gateway.
	socialLinkCookie = "gatehouse_link"
	socialBindCookie = "gatehouse_oauth"
)

// socialRig is a gateway wired to a fake Google and a fake GitHub, on a
// database the test can read.
type socialRig struct {
	g      *testkit.Gateway
	db     *testkit.DB
	google *testkit.FakeIdP
	github *testkit.FakeIdP
}

// socialStart starts both fake providers, a database and a gateway
// configured for both, with env on top.
func socialStart(tb testing.TB, env map[string]string) *socialRig {
	tb.Helper()
	return socialStartWith(tb, run, env)
}

// socialStartWith is socialStart with another run (runAt: a test clock).
func socialStartWith(tb testing.TB, run testkit.RunFunc, env map[string]string) *socialRig {
	tb.Helper()
	google := testkit.StartIdP(tb, testkit.FakeGoogle)
	github := testkit.StartIdP(tb, testkit.FakeGitHub)
	all := map[string]string{}
	maps.Copy(all, google.Env())
	maps.Copy(all, github.Env())
	maps.Copy(all, env)
	db := testkit.StartDB(tb)
	g := testkit.Start(tb, run, testkit.StartSMTP(tb), testkit.Options{Env: all, MongoURI: db.URI})
	testkit.NoServerErrors(tb, g)
	return &socialRig{g: g, db: db, google: google, github: github}
}

// restart restarts the gateway on the same address, data and database.
func (r *socialRig) restart(tb testing.TB) {
	tb.Helper()
	r.g = r.g.Restart(tb)
	testkit.NoServerErrors(tb, r.g)
}

// idp returns the fake of a provider id.
func (r *socialRig) idp(provider string) *testkit.FakeIdP {
	if provider == "github" {
		return r.github
	}
	return r.google
}

// count counts the documents of a collection that match filter.
func (r *socialRig) count(tb testing.TB, coll string, filter bson.M) int64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := r.db.Connect(tb).Database(r.g.Database).Collection(coll).CountDocuments(ctx, filter)
	if err != nil {
		tb.Fatalf("count %s: %v", coll, err)
	}
	return n
}

// identityDoc returns the stored identity with _id id.
func (r *socialRig) identityDoc(tb testing.TB, id string) (bson.M, bool) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var doc bson.M
	err := r.db.Connect(tb).Database(r.g.Database).Collection("identities").FindOne(ctx, bson.M{"_id": id}).Decode(&doc)
	if err != nil {
		return nil, false
	}
	return doc, true
}

// wantNoAccount checks that no user has, and no identity names, email.
func (r *socialRig) wantNoAccount(tb testing.TB, what, email string) {
	tb.Helper()
	if n := r.count(tb, "users", bson.M{"email": email}); n != 0 {
		tb.Errorf("%s: %d users with %s; want none", what, n, email)
	}
	if n := r.count(tb, "emails", bson.M{"_id": email}); n != 0 {
		tb.Errorf("%s: %s is claimed by an account; want unclaimed", what, email)
	}
	if n := r.count(tb, "identities", bson.M{"email": email}); n != 0 {
		tb.Errorf("%s: %d identities with %s; want none", what, n, email)
	}
}

// socialGoogleUser is a new Google account with a verified address.
func socialGoogleUser(email string) testkit.IdPUser {
	return testkit.IdPUser{Subject: "1" + socialDigits(20), Email: email, EmailVerified: true, Name: "Gia Google"}
}

// socialGitHubUser is a new GitHub account whose primary address is verified.
func socialGitHubUser(email string) testkit.IdPUser {
	id := 1_000_000 + mrand.Int64N(1_000_000_000_000)
	return testkit.IdPUser{ID: id, Login: fmt.Sprintf("octo-%d", id), Email: email, EmailVerified: true, Name: "Gus GitHub"}
}

// socialUserFor returns a new verified account at provider.
func socialUserFor(provider, email string) testkit.IdPUser {
	if provider == "github" {
		return socialGitHubUser(email)
	}
	return socialGoogleUser(email)
}

// socialSubject is the subject Gatehouse must key a fake user by: Google's
// sub, GitHub's numeric id.
func socialSubject(provider string, u testkit.IdPUser) string {
	if provider == "github" {
		return fmt.Sprint(u.ID)
	}
	return u.Subject
}

func socialDigits(n int) string {
	var b strings.Builder
	for range n {
		d, _ := rand.Int(rand.Reader, big.NewInt(10))
		b.WriteString(d.String())
	}
	return b.String()
}

// socialSignIn makes u the person at the provider and runs the whole flow
// from start in c, returning the callback's answer.
func socialSignIn(tb testing.TB, c *testkit.Client, idp *testkit.FakeIdP, u testkit.IdPUser, start string) *testkit.Response {
	tb.Helper()
	idp.SetUser(u)
	return c.SignInWith(start)
}

// socialUser is the user object of the API.
type socialUser struct {
	ID            string   `json:"id"`
	Email         string   `json:"email"`
	EmailVerified bool     `json:"email_verified"`
	HasPassword   bool     `json:"has_password"`
	Providers     []string `json:"providers"`
}

// socialMe asks /api/v1/session who c is.
func socialMe(tb testing.TB, c *testkit.Client) (int, socialUser) {
	tb.Helper()
	r := c.Get("/api/v1/session")
	var body struct {
		User socialUser `json:"user"`
	}
	if r.Status == http.StatusOK {
		if err := json.Unmarshal(r.Body, &body); err != nil {
			tb.Fatalf("session: %v\n%s", err, r.Body)
		}
	}
	return r.Status, body.User
}

// socialWantMe returns who c is and fails if c is not signed in.
func socialWantMe(tb testing.TB, c *testkit.Client, what string) socialUser {
	tb.Helper()
	st, u := socialMe(tb, c)
	if st != http.StatusOK || u.ID == "" {
		tb.Fatalf("%s: GET /api/v1/session: got %d; want 200 with a user", what, st)
	}
	return u
}

// socialWantNoSession fails if c is signed in.
func socialWantNoSession(tb testing.TB, c *testkit.Client, what string) {
	tb.Helper()
	if st, u := socialMe(tb, c); st != http.StatusUnauthorized {
		tb.Errorf("%s: GET /api/v1/session: got %d (user %q); want 401", what, st, u.ID)
	}
}

// socialSetCookie returns the cookie name set by r, or nil.
func socialSetCookie(r *testkit.Response, name string) *http.Cookie {
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// socialWantSignedIn checks that r signs c in and sends it to location,
// and returns the signed-in user.
func socialWantSignedIn(tb testing.TB, c *testkit.Client, what string, r *testkit.Response, location string) socialUser {
	tb.Helper()
	if r.Status != http.StatusSeeOther || r.Header.Get("Location") != location {
		tb.Fatalf("%s: got %d Location %q; want 303 to %q\n%s", what, r.Status, r.Header.Get("Location"), location, testkit.Short(r.Body))
	}
	if ck := socialSetCookie(r, testkit.CookieName); ck == nil || ck.Value == "" {
		tb.Errorf("%s: no session cookie %q set; want one", what, testkit.CookieName)
	}
	return socialWantMe(tb, c, what)
}

// socialWantPage checks an HTML answer's status and that its text contains
// each of texts (case-insensitively).
func socialWantPage(tb testing.TB, what string, r *testkit.Response, status int, texts ...string) {
	tb.Helper()
	if r.Status != status {
		tb.Fatalf("%s: got %d Location %q; want %d\n%s", what, r.Status, r.Header.Get("Location"), status, testkit.Short(r.Body))
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		tb.Errorf("%s: Content-Type %q; want an HTML page", what, ct)
	}
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		tb.Errorf("%s: Cache-Control %q; want no-store", what, cc)
	}
	if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		tb.Errorf("%s: Content-Security-Policy %q; want frame-ancestors 'none'", what, csp)
	}
	body := strings.ToLower(r.Text())
	for _, s := range texts {
		if !strings.Contains(body, strings.ToLower(s)) {
			tb.Errorf("%s: page does not say %q\n%s", what, s, testkit.Short(r.Body))
		}
	}
}

// socialWantRefused checks that a provider callback ended on an error page
// with status, set no session cookie, and left c signed out.
func socialWantRefused(tb testing.TB, c *testkit.Client, what string, r *testkit.Response, status int, texts ...string) {
	tb.Helper()
	socialWantPage(tb, what, r, status, texts...)
	if ck := socialSetCookie(r, testkit.CookieName); ck != nil && ck.Value != "" {
		tb.Errorf("%s: a session cookie was set on a refusal", what)
	}
	if ck := socialSetCookie(r, socialLinkCookie); ck != nil && ck.Value != "" {
		tb.Errorf("%s: a pending-link cookie was set on a refusal", what)
	}
	socialWantNoSession(tb, c, what)
}

// socialIdentity is an entry of /api/v1/identities.
type socialIdentity struct {
	Provider string    `json:"provider"`
	Email    string    `json:"email"`
	LinkedAt time.Time `json:"linked_at"`
}

// socialIdentities lists c's linked identities.
func socialIdentities(tb testing.TB, c *testkit.Client) []socialIdentity {
	tb.Helper()
	r := c.Get("/api/v1/identities")
	if r.Status != http.StatusOK {
		tb.Fatalf("GET /api/v1/identities: got %d; want 200\n%s", r.Status, r.Body)
	}
	var body struct {
		Identities []socialIdentity `json:"identities"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		tb.Fatalf("identities: %v\n%s", err, r.Body)
	}
	return body.Identities
}

// socialProviders returns the providers of c's identities.
func socialProviders(tb testing.TB, c *testkit.Client) []string {
	tb.Helper()
	out := []string{}
	for _, id := range socialIdentities(tb, c) {
		out = append(out, id.Provider)
	}
	slices.Sort(out)
	return out
}

// socialWantProviders checks c's linked providers, from both the session
// and the identities endpoint.
func socialWantProviders(tb testing.TB, c *testkit.Client, what string, want ...string) {
	tb.Helper()
	if want == nil {
		want = []string{}
	}
	slices.Sort(want)
	if got := socialProviders(tb, c); !slices.Equal(got, want) {
		tb.Errorf("%s: /api/v1/identities providers %v; want %v", what, got, want)
	}
	u := socialWantMe(tb, c, what)
	got := append([]string{}, u.Providers...)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		tb.Errorf("%s: session user providers %v; want %v", what, got, want)
	}
}

// socialLogin signs in with email and password in a new client and
// returns the status and the user id.
func socialLogin(tb testing.TB, g *testkit.Gateway, email, password string) (int, string) {
	tb.Helper()
	r := g.Client(tb).Login(email, password)
	var body struct {
		User socialUser `json:"user"`
	}
	_ = json.Unmarshal(r.Body, &body)
	return r.Status, body.User.ID
}

// socialPendingLink runs a Google sign-in for u in a new client and checks
// that it ends at the link page with a pending-link cookie and no session.
func socialPendingLink(tb testing.TB, rig *socialRig, u testkit.IdPUser, start string) *testkit.Client {
	tb.Helper()
	c := rig.g.Client(tb)
	socialPendingLinkIn(tb, rig, c, "google", u, start)
	return c
}

// socialPendingLinkIn is socialPendingLink in an existing client, with any
// provider; start is a path under /auth/<provider>.
func socialPendingLinkIn(tb testing.TB, rig *socialRig, c *testkit.Client, provider string, u testkit.IdPUser, start string) {
	tb.Helper()
	if !strings.HasPrefix(start, "/auth/"+provider) {
		tb.Fatalf("start %q is not a %s flow", start, provider)
	}
	r := socialSignIn(tb, c, rig.idp(provider), u, start)
	if r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/auth/link" {
		tb.Fatalf("%s sign-in with an existing account's address: got %d Location %q; want 303 to /auth/link\n%s", provider, r.Status, r.Header.Get("Location"), testkit.Short(r.Body))
	}
	ck := socialSetCookie(r, socialLinkCookie)
	if ck == nil || len(ck.Value) < 43 || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode {
		tb.Errorf("pending-link cookie %+v; want an HttpOnly SameSite=Lax cookie of ≥ 256 bits", ck)
	}
	if ck := socialSetCookie(r, testkit.CookieName); ck != nil && ck.Value != "" {
		tb.Errorf("a session cookie was set before the owner proved the account")
	}
	socialWantNoSession(tb, c, "pending link")
}

// socialConnect runs the connect flow of provider for the signed-in c with
// u at the provider and returns the callback's answer.
func socialConnect(tb testing.TB, rig *socialRig, c *testkit.Client, provider string, u testkit.IdPUser) *testkit.Response {
	tb.Helper()
	idp := rig.idp(provider)
	idp.SetUser(u)
	r := c.PostForm("/account/identities/"+provider+"/connect", nil)
	testkit.WantRedirect(tb, "connect "+provider, r, http.StatusSeeOther, idp.URL+"/")
	return c.FollowToCallback(r)
}

// socialCallbackQuery parses the query of a callback path.
func socialCallbackQuery(tb testing.TB, cb string) url.Values {
	tb.Helper()
	u, err := url.Parse(cb)
	if err != nil {
		tb.Fatalf("parse callback %q: %v", cb, err)
	}
	return u.Query()
}

func socialS256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

var socialB64URL = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

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

// TestSocialLinkWithPassword checks journey 4a and LK-2: a provider
// sign-in with the address of an existing verified account is not merged;
// the owner proves the account with its password, and then either way
// signs in the same user. A wrong password links nothing.
func TestSocialLinkWithPassword(t *testing.T) {
	t.Parallel()
	rig := socialStart(t, nil)
	owner, email := testkit.NewUser(t, rig.g, socialPassword)
	ownerID := socialWantMe(t, owner, "owner").ID
	person := socialGoogleUser(email)

	c := socialPendingLink(t, rig, person, "/auth/google?return_to="+url.QueryEscape("/app/linked"))
	socialWantProviders(t, owner, "owner before the proof")
	page := c.Get("/auth/link")
	socialWantPage(t, "GET /auth/link", page, http.StatusOK, email, "Google")
	if !strings.Contains(page.Text(), `action="/auth/link"`) {
		t.Errorf("link page of an account with a password has no password form")
	}

	r := c.PostForm("/auth/link", url.Values{"password": {socialWrongPW}})
	socialWantPage(t, "POST /auth/link with a wrong password", r, http.StatusUnauthorized)
	socialWantNoSession(t, c, "after a wrong password")
	socialWantProviders(t, owner, "owner after a wrong password")
	// Still not linked: signing in again asks for the proof again.
	socialPendingLinkIn(t, rig, c, "google", person, "/auth/google?return_to="+url.QueryEscape("/app/linked"))

	r = c.PostForm("/auth/link", url.Values{"password": {socialPassword}})
	me := socialWantSignedIn(t, c, "POST /auth/link with the password", r, "/app/linked")
	if me.ID != ownerID {
		t.Fatalf("linked sign-in: user %q; want the owner %q", me.ID, ownerID)
	}
	socialWantProviders(t, c, "after the proof", "google")
	if ck := socialSetCookie(r, socialLinkCookie); ck == nil || ck.MaxAge >= 0 {
		t.Errorf("the pending-link cookie was not cleared after linking: %+v", ck)
	}
	if r := c.PostForm("/auth/link", url.Values{"password": {socialPassword}}); r.Status != http.StatusBadRequest {
		t.Errorf("POST /auth/link again after linking: got %d; want 400", r.Status)
	}

	// From now on both ways sign in the owner.
	g2 := rig.g.Client(t)
	if u := socialWantSignedIn(t, g2, "Google after linking", socialSignIn(t, g2, rig.google, person, "/auth/google"), "/account"); u.ID != ownerID {
		t.Errorf("Google after linking: user %q; want %q", u.ID, ownerID)
	}
	if st, id := socialLogin(t, rig.g, email, socialPassword); st != http.StatusOK || id != ownerID {
		t.Errorf("password after linking: got %d user %q; want 200 user %q", st, id, ownerID)
	}
	ids := socialIdentities(t, owner)
	if len(ids) != 1 || ids[0].Provider != "google" || ids[0].Email != email {
		t.Errorf("owner's identities %+v; want google with %s", ids, email)
	}

	// The same for GitHub, on an account that already has Google.
	h := rig.g.Client(t)
	gh := socialGitHubUser(email)
	socialPendingLinkIn(t, rig, h, "github", gh, "/auth/github")
	socialWantPage(t, "GET /auth/link for GitHub", h.Get("/auth/link"), http.StatusOK, "GitHub")
	r = h.PostForm("/auth/link", url.Values{"password": {socialPassword}})
	if u := socialWantSignedIn(t, h, "link GitHub with the password", r, "/account"); u.ID != ownerID {
		t.Errorf("GitHub link: user %q; want %q", u.ID, ownerID)
	}
	socialWantProviders(t, owner, "owner after linking both", "github", "google")
}

// TestSocialLinkWithMail checks journey 4b and LK-2: the owner proves the
// account with a mailed link, which works only in the browser that holds
// the pending link; GET never uses it up; another browser is refused.
func TestSocialLinkWithMail(t *testing.T) {
	t.Parallel()
	rig := socialStart(t, nil)

	t.Run("password account", func(t *testing.T) {
		owner, email := testkit.NewUser(t, rig.g, socialPassword)
		ownerID := socialWantMe(t, owner, "owner").ID
		person := socialGoogleUser(email)
		c := socialPendingLink(t, rig, person, "/auth/google")

		n := len(rig.g.SMTP.Mails(email))
		r := c.PostForm("/auth/link/mail", nil)
		socialWantPage(t, "POST /auth/link/mail", r, http.StatusOK, "sent")
		m := rig.g.SMTP.WaitMail(t, email, n+1, socialMailWait)
		link := m.Link(t)
		if !strings.HasPrefix(link, rig.g.URL+"/auth/link/confirm?token=") {
			t.Fatalf("mailed link %s; want %s/auth/link/confirm?token=…", link, rig.g.URL)
		}
		token := m.Token(t)
		path := strings.TrimPrefix(link, rig.g.URL)

		// GET shows the page and uses nothing up.
		for i := range 2 {
			socialWantPage(t, fmt.Sprintf("GET the confirmation (#%d)", i+1), c.Get(path), http.StatusOK, email)
		}
		socialWantNoSession(t, c, "after GET of the confirmation")
		socialWantProviders(t, owner, "owner after GET of the confirmation")

		// Another browser (the owner's mail app, or someone who got the
		// mail) is refused and links nothing.
		victim := rig.g.Client(t)
		socialWantPage(t, "GET the confirmation in another browser", victim.Get(path), http.StatusBadRequest)
		r = victim.PostForm("/auth/link/confirm", url.Values{"token": {token}})
		socialWantRefused(t, victim, "POST the confirmation in another browser", r, http.StatusBadRequest)
		socialWantProviders(t, owner, "owner after the confirmation in another browser")

		// The browser holding the pending link confirms.
		r = c.PostForm("/auth/link/confirm", url.Values{"token": {token}})
		if u := socialWantSignedIn(t, c, "POST the confirmation", r, "/account"); u.ID != ownerID {
			t.Fatalf("confirmed link: user %q; want the owner %q", u.ID, ownerID)
		}
		socialWantProviders(t, c, "after the confirmation", "google")
		if r := c.PostForm("/auth/link/confirm", url.Values{"token": {token}}); r.Status != http.StatusBadRequest {
			t.Errorf("confirmation used twice: got %d; want 400", r.Status)
		}
		g2 := rig.g.Client(t)
		if u := socialWantSignedIn(t, g2, "Google after linking", socialSignIn(t, g2, rig.google, person, "/auth/google"), "/account"); u.ID != ownerID {
			t.Errorf("Google after linking: user %q; want %q", u.ID, ownerID)
		}
	})

	// An account made with GitHub has no password: the mail is its only
	// proof, and a password is never accepted for it.
	t.Run("account without password", func(t *testing.T) {
		email := testkit.Email(t)
		owner := rig.g.Client(t)
		ownerID := socialWantSignedIn(t, owner, "GitHub sign-up", socialSignIn(t, owner, rig.github, socialGitHubUser(email), "/auth/github"), "/account").ID
		c := socialPendingLink(t, rig, socialGoogleUser(email), "/auth/google")
		page := c.Get("/auth/link")
		socialWantPage(t, "GET /auth/link", page, http.StatusOK, email)
		if strings.Contains(page.Text(), `action="/auth/link"`) {
			t.Errorf("link page of an account without a password offers a password form")
		}
		for _, pw := range []string{"", socialPassword} {
			r := c.PostForm("/auth/link", url.Values{"password": {pw}})
			if r.Status != http.StatusUnauthorized && r.Status != http.StatusBadRequest {
				t.Errorf("POST /auth/link with password %q for an account without one: got %d; want 401 or 400", pw, r.Status)
			}
			socialWantNoSession(t, c, "password for an account without one")
		}
		socialWantProviders(t, owner, "owner after password attempts", "github")

		n := len(rig.g.SMTP.Mails(email))
		socialWantPage(t, "POST /auth/link/mail", c.PostForm("/auth/link/mail", nil), http.StatusOK)
		m := rig.g.SMTP.WaitMail(t, email, n+1, socialMailWait)
		r := c.PostForm("/auth/link/confirm", url.Values{"token": {m.Token(t)}})
		if u := socialWantSignedIn(t, c, "POST the confirmation", r, "/account"); u.ID != ownerID {
			t.Errorf("confirmed link: user %q; want %q", u.ID, ownerID)
		}
		socialWantProviders(t, c, "after the confirmation", "github", "google")
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

// TestSocialConnectDisconnect checks journey 5 and LK-4: connecting and
// disconnecting providers from /account and the API; the last way to sign
// in cannot be removed; an identity linked to one user cannot be connected
// by another; one account per provider per user.
func TestSocialConnectDisconnect(t *testing.T) {
	t.Parallel()

	t.Run("password user", func(t *testing.T) {
		t.Parallel()
		rig := socialStart(t, nil)
		c, email := testkit.NewUser(t, rig.g, socialPassword)
		me := socialWantMe(t, c, "user")
		page := c.Get("/account")
		socialWantPage(t, "GET /account", page, http.StatusOK)
		for _, p := range []string{"google", "github"} {
			if !strings.Contains(page.Text(), `action="/account/identities/`+p+`/connect"`) {
				t.Errorf("/account has no connect form for %s", p)
			}
		}

		// Connecting is a form POST answered by a redirect to the
		// provider; browsers apply form-action to that redirect.
		csp := page.Header.Get("Content-Security-Policy")
		for _, idp := range []*testkit.FakeIdP{rig.google, rig.github} {
			if !strings.Contains(csp, idp.URL) {
				t.Errorf("CSP %q: form-action does not allow %s's authorization page %s", csp, idp.Kind, idp.URL)
			}
		}

		gh := socialGitHubUser("gh-" + email)
		r := socialConnect(t, rig, c, "github", gh)
		testkit.WantRedirect(t, "connect callback", r, http.StatusSeeOther, "/account?notice=connected")
		ids := socialIdentities(t, c)
		if len(ids) != 1 || ids[0].Provider != "github" || ids[0].Email != "gh-"+email || time.Since(ids[0].LinkedAt) > time.Minute || ids[0].LinkedAt.After(time.Now().Add(time.Minute)) {
			t.Fatalf("identities after connecting %+v; want github with gh-%s linked just now", ids, email)
		}
		socialWantProviders(t, c, "after connecting", "github")
		if u := socialWantMe(t, c, "after connecting"); u.ID != me.ID {
			t.Errorf("connecting changed the signed-in user to %q; want %q", u.ID, me.ID)
		}
		other := rig.g.Client(t)
		if u := socialWantSignedIn(t, other, "GitHub sign-in after connecting", socialSignIn(t, other, rig.github, gh, "/auth/github"), "/account"); u.ID != me.ID {
			t.Errorf("GitHub sign-in after connecting: user %q; want %q", u.ID, me.ID)
		}

		r = c.PostForm("/account/identities/github/disconnect", nil)
		testkit.WantRedirect(t, "disconnect form", r, http.StatusSeeOther, "/account?notice=disconnected")
		socialWantProviders(t, c, "after disconnecting")

		r = socialConnect(t, rig, c, "google", socialGoogleUser("g-"+email))
		testkit.WantRedirect(t, "connect google", r, http.StatusSeeOther, "/account?notice=connected")
		socialWantProviders(t, c, "after connecting google", "google")
		if r := c.SendJSON(http.MethodDelete, "/api/v1/identities/google", nil); r.Status != http.StatusNoContent {
			t.Errorf("DELETE /api/v1/identities/google: got %d; want 204\n%s", r.Status, r.Body)
		}
		socialWantProviders(t, c, "after DELETE")
		testkit.WantAPIError(t, "DELETE an identity that is not linked", c.SendJSON(http.MethodDelete, "/api/v1/identities/google", nil), http.StatusNotFound, "not_found")
	})

	t.Run("last login method", func(t *testing.T) {
		t.Parallel()
		rig := socialStart(t, nil)
		email := testkit.Email(t)
		person := socialGoogleUser(email)
		c := rig.g.Client(t)
		me := socialWantSignedIn(t, c, "Google sign-up", socialSignIn(t, c, rig.google, person, "/auth/google"), "/account")

		testkit.WantAPIError(t, "DELETE the only identity", c.SendJSON(http.MethodDelete, "/api/v1/identities/google", nil), http.StatusConflict, "last_login_method")
		socialWantPage(t, "disconnect form for the only identity", c.PostForm("/account/identities/google/disconnect", nil), http.StatusConflict)
		socialWantProviders(t, c, "after refused disconnects", "google")

		r := socialConnect(t, rig, c, "github", socialGitHubUser("gh-"+email))
		testkit.WantRedirect(t, "connect github", r, http.StatusSeeOther, "/account?notice=connected")
		socialWantProviders(t, c, "with two identities", "github", "google")
		testkit.WantRedirect(t, "disconnect google with two identities", c.PostForm("/account/identities/google/disconnect", nil), http.StatusSeeOther, "/account?notice=disconnected")
		socialWantProviders(t, c, "after disconnecting google", "github")
		testkit.WantAPIError(t, "DELETE the remaining identity", c.SendJSON(http.MethodDelete, "/api/v1/identities/github", nil), http.StatusConflict, "last_login_method")
		socialWantProviders(t, c, "after refusing the last one", "github")
		if u := socialWantMe(t, c, "still signed in"); u.ID != me.ID {
			t.Errorf("user %q; want %q", u.ID, me.ID)
		}
		// The unlinked Google account no longer signs in this user: its
		// address is the account's, so the owner would have to prove it.
		socialPendingLink(t, rig, person, "/auth/google")
	})

	t.Run("identity of another user", func(t *testing.T) {
		t.Parallel()
		rig := socialStart(t, nil)
		gh := socialGitHubUser(testkit.Email(t))
		a := rig.g.Client(t)
		aID := socialWantSignedIn(t, a, "A signs up with GitHub", socialSignIn(t, a, rig.github, gh, "/auth/github"), "/account").ID

		b, _ := testkit.NewUser(t, rig.g, socialPassword)
		r := socialConnect(t, rig, b, "github", gh)
		socialWantPage(t, "B connects A's GitHub", r, http.StatusConflict, "already linked")
		socialWantProviders(t, b, "B after the refusal")
		socialWantProviders(t, a, "A after B's attempt", "github")
		x := rig.g.Client(t)
		if u := socialWantSignedIn(t, x, "GitHub sign-in after B's attempt", socialSignIn(t, x, rig.github, gh, "/auth/github"), "/account"); u.ID != aID {
			t.Errorf("GitHub sign-in after B's attempt: user %q; want A %q", u.ID, aID)
		}
	})

	t.Run("second account of a provider", func(t *testing.T) {
		t.Parallel()
		rig := socialStart(t, nil)
		c, email := testkit.NewUser(t, rig.g, socialPassword)
		me := socialWantMe(t, c, "user")
		first := socialGitHubUser("first-" + email)
		testkit.WantRedirect(t, "connect the first GitHub account", socialConnect(t, rig, c, "github", first), http.StatusSeeOther, "/account?notice=connected")

		second := socialGitHubUser("second-" + email)
		r := socialConnect(t, rig, c, "github", second)
		socialWantPage(t, "connect a second GitHub account", r, http.StatusConflict, "different GitHub account")
		ids := socialIdentities(t, c)
		if len(ids) != 1 || ids[0].Email != "first-"+email {
			t.Errorf("identities after the refusal %+v; want only the first GitHub account", ids)
		}
		x := rig.g.Client(t)
		if u := socialWantSignedIn(t, x, "first GitHub account", socialSignIn(t, x, rig.github, first, "/auth/github"), "/account"); u.ID != me.ID {
			t.Errorf("first GitHub account signs in %q; want %q", u.ID, me.ID)
		}
		y := rig.g.Client(t)
		if u := socialWantSignedIn(t, y, "second GitHub account", socialSignIn(t, y, rig.github, second, "/auth/github"), "/account"); u.ID == me.ID {
			t.Errorf("the refused second GitHub account signs in as the user %s", me.ID)
		}
	})
}

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

// TestSocialVerifiedEmailOA5 checks OA-5: only an address the provider
// verified counts: GitHub's primary and verified one from /user/emails,
// Google's email_verified.
func TestSocialVerifiedEmailOA5(t *testing.T) {
	t.Parallel()
	rig := socialStart(t, nil)

	t.Run("github primary unverified, other verified", func(t *testing.T) {
		primary, other := testkit.Email(t), testkit.Email(t)
		u := socialGitHubUser(primary)
		u.Emails = []testkit.GitHubEmail{{Email: other, Verified: true}, {Email: primary, Primary: true, Verified: false}}
		c := rig.g.Client(t)
		socialWantRefused(t, c, "primary unverified", socialSignIn(t, c, rig.github, u, "/auth/github"), http.StatusForbidden, "no verified email")
		rig.wantNoAccount(t, "primary", primary)
		rig.wantNoAccount(t, "verified secondary", other)
	})

	t.Run("github primary verified among several", func(t *testing.T) {
		primary, other := testkit.Email(t), testkit.Email(t)
		u := socialGitHubUser(primary)
		u.Emails = []testkit.GitHubEmail{{Email: other, Verified: true}, {Email: primary, Primary: true, Verified: true}}
		c := rig.g.Client(t)
		me := socialWantSignedIn(t, c, "primary verified", socialSignIn(t, c, rig.github, u, "/auth/github"), "/account")
		if me.Email != primary {
			t.Errorf("account address %q; want the primary %q", me.Email, primary)
		}
		rig.wantNoAccount(t, "secondary", other)
	})

	t.Run("github no addresses", func(t *testing.T) {
		u := socialGitHubUser("")
		c := rig.g.Client(t)
		socialWantRefused(t, c, "no addresses", socialSignIn(t, c, rig.github, u, "/auth/github"), http.StatusForbidden, "no verified email")
	})

	t.Run("google verified but malformed address", func(t *testing.T) {
		for _, bad := range []string{"not-an-address", "a@b", "x@example.com\r\nBcc: y@example.com", strings.Repeat("a", 250) + "@example.com"} {
			c := rig.g.Client(t)
			socialWantRefused(t, c, fmt.Sprintf("address %q", bad), socialSignIn(t, c, rig.google, socialGoogleUser(bad), "/auth/google"), http.StatusForbidden)
		}
	})

	for name, mutate := range map[string]func(map[string]any){
		"google email_verified false":   nil,
		"google email_verified missing": func(c map[string]any) { delete(c, "email_verified") },
		"google email_verified \"no\"":  func(c map[string]any) { c["email_verified"] = "no" },
	} {
		t.Run(name, func(t *testing.T) {
			email := testkit.Email(t)
			u := socialGoogleUser(email)
			u.EmailVerified = mutate != nil
			rig.google.MutateIDToken(mutate)
			t.Cleanup(func() { rig.google.MutateIDToken(nil) })
			c := rig.g.Client(t)
			socialWantRefused(t, c, name, socialSignIn(t, c, rig.google, u, "/auth/google"), http.StatusForbidden, "no verified email")
			rig.wantNoAccount(t, name, email)
		})
	}
}

// TestSocialPreHijackLK1 checks LK-1: an attacker signs up with the
// victim's address and a password of their own and never verifies; the
// victim then signs in with Google or GitHub. The account is the victim's:
// the attacker's password never signs in, and the attacker's verification
// link is dead.
func TestSocialPreHijackLK1(t *testing.T) {
	t.Parallel()
	rig := socialStart(t, nil)
	for _, p := range []string{"google", "github"} {
		t.Run(p, func(t *testing.T) {
			t.Parallel()
			victim := testkit.Email(t)
			attacker := rig.g.Client(t)
			planted := attacker.SignUp(rig.g, victim, socialPassword)

			c := rig.g.Client(t)
			me := socialWantSignedIn(t, c, "victim's provider sign-in", socialSignIn(t, c, rig.idp(p), socialUserFor(p, victim), "/auth/"+p), "/account")
			if me.Email != victim || me.HasPassword {
				t.Errorf("victim's account %+v; want %s without a password", me, victim)
			}
			if st, id := socialLogin(t, rig.g, victim, socialPassword); st == http.StatusOK || id != "" {
				t.Errorf("attacker's password: got %d user %q; want a refusal", st, id)
			}
			r := attacker.Verify(planted.Token(t), socialPassword)
			testkit.WantAPIError(t, "attacker's verification link", r, http.StatusBadRequest, "invalid_token")
			socialWantNoSession(t, attacker, "attacker after the verification attempt")
			if st, id := socialLogin(t, rig.g, victim, socialPassword); st == http.StatusOK || id != "" {
				t.Errorf("attacker's password after the verification attempt: got %d user %q; want a refusal", st, id)
			}
			if u := socialWantMe(t, c, "victim afterwards"); u.ID != me.ID || u.HasPassword {
				t.Errorf("victim afterwards %+v; want user %s without a password", u, me.ID)
			}
		})
	}
}

// TestSocialUnverifiedNoLinkLK3 checks LK-3: a provider sign-in with an
// unverified address that an existing account has links nothing, creates
// no pending link, and leaves the account as it was.
func TestSocialUnverifiedNoLinkLK3(t *testing.T) {
	t.Parallel()
	rig := socialStart(t, nil)
	owner, email := testkit.NewUser(t, rig.g, socialPassword)
	ownerID := socialWantMe(t, owner, "owner").ID

	gu := socialGoogleUser(email)
	gu.EmailVerified = false
	gh := socialGitHubUser(email)
	gh.EmailVerified = false
	for _, x := range []struct {
		provider string
		u        testkit.IdPUser
	}{{"google", gu}, {"github", gh}} {
		c := rig.g.Client(t)
		socialWantRefused(t, c, x.provider+" unverified", socialSignIn(t, c, rig.idp(x.provider), x.u, "/auth/"+x.provider), http.StatusForbidden)
		if r := c.Get("/auth/link"); r.Status == http.StatusOK {
			t.Errorf("%s unverified: a link page is offered", x.provider)
		}
		if _, ok := rig.identityDoc(t, x.provider+":"+socialSubject(x.provider, x.u)); ok {
			t.Errorf("%s unverified: an identity was stored", x.provider)
		}
	}
	socialWantProviders(t, owner, "owner")
	if st, id := socialLogin(t, rig.g, email, socialPassword); st != http.StatusOK || id != ownerID {
		t.Errorf("owner's password: got %d user %q; want 200 user %q", st, id, ownerID)
	}
}

// TestSocialConnectCSRF checks LK-4: connecting and disconnecting are
// refused from another site and without a session.
func TestSocialConnectCSRF(t *testing.T) {
	t.Parallel()
	rig := socialStart(t, nil)
	c, _ := testkit.NewUser(t, rig.g, socialPassword)
	testkit.WantRedirect(t, "connect github", socialConnect(t, rig, c, "github", socialGitHubUser(testkit.Email(t))), http.StatusSeeOther, "/account?notice=connected")
	n := len(rig.google.Authorizations())

	for _, h := range []map[string]string{
		{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
		{"Sec-Fetch-Site": "same-site", "Origin": "http://sub.127.0.0.1.example"},
		{"Origin": "https://evil.example"},
	} {
		for _, path := range []string{"/account/identities/google/connect", "/account/identities/github/disconnect"} {
			req := c.NewRequest(http.MethodPost, path, strings.NewReader(""))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range h {
				req.Header.Set(k, v)
			}
			if r := c.Do(req); r.Status != http.StatusForbidden {
				t.Errorf("POST %s with %v: got %d Location %q; want 403", path, h, r.Status, r.Header.Get("Location"))
			}
		}
	}
	if got := len(rig.google.Authorizations()); got != n {
		t.Errorf("cross-site connects reached the provider %d times; want never", got-n)
	}
	socialWantProviders(t, c, "after cross-site requests", "github")

	anon := rig.g.Client(t)
	r := anon.PostForm("/account/identities/google/connect", nil)
	testkit.WantRedirect(t, "connect without a session", r, http.StatusSeeOther, "/login")
	if r := anon.SendJSON(http.MethodDelete, "/api/v1/identities/github", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("DELETE /api/v1/identities without a session: got %d; want 401", r.Status)
	}
	if r := anon.Get("/api/v1/identities"); r.Status != http.StatusUnauthorized {
		t.Errorf("GET /api/v1/identities without a session: got %d; want 401", r.Status)
	}
}

// TestSocialConnectNeedsSameSession checks that a connect flow finishes
// only in the session that started it: a callback that arrives after the
// user signed out (or in another session) links nothing.
func TestSocialConnectNeedsSameSession(t *testing.T) {
	t.Parallel()
	rig := socialStart(t, nil)
	c, email := testkit.NewUser(t, rig.g, socialPassword)
	rig.github.SetUser(socialGitHubUser(testkit.Email(t)))
	cb := c.CallbackFrom(c.PostForm("/account/identities/github/connect", nil))
	if r := c.PostJSON("/api/v1/logout", nil); r.Status != http.StatusNoContent {
		t.Fatalf("logout: got %d; want 204", r.Status)
	}
	if r := c.Login(email, socialPassword); r.Status != http.StatusOK {
		t.Fatalf("login: got %d; want 200", r.Status)
	}
	r := c.Get(cb)
	socialWantPage(t, "connect callback in a new session", r, http.StatusBadRequest)
	socialWantProviders(t, c, "after the stale connect")
}

// TestSocialRecentSignIn checks LK-4 and journey 2: connecting a provider
// and setting a first password need a recent sign-in. It waits out the
// smallest session.recent_sign_in (1m), so it is skipped with -short.
func TestSocialRecentSignIn(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock()
	rig := socialStartWith(t, runAt(clock), map[string]string{"GATEHOUSE_SESSION_RECENT_SIGN_IN": "1m"})
	email := testkit.Email(t)
	person := socialGoogleUser(email)
	social := rig.g.Client(t)
	socialWantSignedIn(t, social, "Google sign-up", socialSignIn(t, social, rig.google, person, "/auth/google"), "/account")
	local, _ := testkit.NewUser(t, rig.g, socialPassword)

	clock.Advance(61 * time.Second)
	n := len(rig.github.Authorizations())

	r := social.PostForm("/account/password", url.Values{"new_password": {socialPassword}})
	testkit.WantRedirect(t, "first password with an old sign-in", r, http.StatusSeeOther, "/login?notice=reauth")
	if u := socialWantMe(t, social, "after the refused password"); u.HasPassword {
		t.Errorf("a first password was set with an old sign-in")
	}
	if st, _ := socialLogin(t, rig.g, email, socialPassword); st != http.StatusUnauthorized {
		t.Errorf("login with the refused password: got %d; want 401", st)
	}
	for who, c := range map[string]*testkit.Client{"social user": social, "password user": local} {
		r := c.PostForm("/account/identities/github/connect", nil)
		testkit.WantRedirect(t, who+" connects with an old sign-in", r, http.StatusSeeOther, "/login?notice=reauth")
	}
	if got := len(rig.github.Authorizations()); got != n {
		t.Errorf("connects with an old sign-in reached the provider %d times; want never", got-n)
	}
	socialWantProviders(t, local, "password user after the refusal")

	// A fresh sign-in makes both possible again.
	socialWantSignedIn(t, social, "sign in again", socialSignIn(t, social, rig.google, person, "/auth/google"), "/account")
	r = social.PostForm("/account/password", url.Values{"new_password": {socialPassword}})
	testkit.WantRedirect(t, "first password after signing in again", r, http.StatusSeeOther, "/account?notice=password_set")
	r = socialConnect(t, rig, social, "github", socialGitHubUser("gh-"+email))
	testkit.WantRedirect(t, "connect after signing in again", r, http.StatusSeeOther, "/account?notice=connected")
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

// TestSocialLinkLockout checks AB-1 for the password proof of a link: wrong
// passwords at /auth/link count as failed sign-ins of the account, so
// guessing there backs off like the login form, and a right password
// waits too.
func TestSocialLinkLockout(t *testing.T) {
	t.Parallel()
	rig := socialStart(t, map[string]string{"GATEHOUSE_RATE_LIMITS_LOCKOUT_AFTER": "3"})
	_, email := testkit.NewUser(t, rig.g, socialPassword)
	c := socialPendingLink(t, rig, socialGoogleUser(email), "/auth/google")
	for i := range 3 {
		r := c.PostForm("/auth/link", url.Values{"password": {fmt.Sprintf("%s %d", socialWrongPW, i)}})
		socialWantPage(t, fmt.Sprintf("wrong password #%d", i+1), r, http.StatusUnauthorized)
	}
	r := c.PostForm("/auth/link", url.Values{"password": {socialPassword}})
	socialWantPage(t, "right password during the back-off", r, http.StatusTooManyRequests)
	if r.Header.Get("Retry-After") == "" {
		t.Errorf("429 without Retry-After")
	}
	socialWantNoSession(t, c, "during the back-off")
	if st, _ := socialLogin(t, rig.g, email, socialPassword); st != http.StatusTooManyRequests {
		t.Errorf("password login during the back-off started at /auth/link: got %d; want 429", st)
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
