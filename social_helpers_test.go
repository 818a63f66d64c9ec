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
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

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
