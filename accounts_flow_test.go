package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

// Black-box tests of signup, verification, sign-in and abuse protection
// (issue 2 steps 2-4; SECURITY.md PW-1..4, EN-1..4, LK-1, AB-1..3, IN-2),
// through both the HTML forms and the JSON API.

const (
	acctPassword = "a long enough passphrase 7"
	acctWrongPW  = "not the right passphrase 0"
	acctMailWait = 15 * time.Second
)

// acctStart runs a gateway with env overrides and fails the test if the
// gateway answered any request with a 500 or recovered from a panic.
func acctStart(tb testing.TB, env map[string]string) *testkit.Gateway {
	tb.Helper()
	return acctStartWith(tb, testkit.Options{Env: env})
}

func acctStartWith(tb testing.TB, opts testkit.Options) *testkit.Gateway {
	tb.Helper()
	g := testkit.Start(tb, run, testkit.StartSMTP(tb), opts)
	testkit.NoServerErrors(tb, g)
	return g
}

// acctStartClocked is acctStart with a stopped clock, which the test moves
// past the mail quota's interval or a lockout instead of sleeping.
func acctStartClocked(tb testing.TB, env map[string]string) (*testkit.Gateway, *testkit.Clock) {
	tb.Helper()
	clock := testkit.NewClock()
	g := testkit.Start(tb, runAt(clock), testkit.StartSMTP(tb), testkit.Options{Env: env})
	testkit.NoServerErrors(tb, g)
	return g, clock
}

// acctEmail returns a fresh address; addresses with tags of one length have
// one length, so pages that echo them can be compared byte for byte.
func acctEmail(tag string) string {
	return tag + "-" + acctHex(5) + "@example.com"
}

func acctHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// acctForm submits a same-origin HTML form of key, value pairs.
func acctForm(tb testing.TB, c *testkit.Client, path string, kv ...string) *testkit.Response {
	tb.Helper()
	vals := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		vals.Set(kv[i], kv[i+1])
	}
	return c.PostForm(path, vals)
}

func acctWant(tb testing.TB, what string, r *testkit.Response, status int) {
	tb.Helper()
	if r.Status != status {
		tb.Fatalf("%s: got status %d; want %d\n%s", what, r.Status, status, testkit.Short(r.Body))
	}
}

// acctWantText checks that a page contains every one of texts.
func acctWantText(tb testing.TB, what string, r *testkit.Response, texts ...string) {
	tb.Helper()
	for _, s := range texts {
		if !strings.Contains(r.Text(), s) {
			tb.Errorf("%s: page does not contain %q\n%s", what, s, testkit.Short(r.Body))
		}
	}
}

// acctRetryAfter returns the Retry-After header in seconds, failing the test
// if it is missing or not a positive number.
func acctRetryAfter(tb testing.TB, what string, r *testkit.Response) int {
	tb.Helper()
	n, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || n < 1 {
		tb.Fatalf("%s: got Retry-After %q; want a positive number of seconds", what, r.Header.Get("Retry-After"))
	}
	return n
}

// acctSameAnswer fails unless a and b are the same answer: status, body,
// and every header but X-Request-Id and Date. Each body's own request id,
// and the address it echoes (aEmail in a, bEmail in b; "" for none), are
// replaced before comparing; the two addresses must have the same length,
// so Content-Length is compared too. Retry-After values are not compared,
// only its presence: it counts down from each address's own first attempt,
// so it tells the time of that attempt, not whether an account exists.
func acctSameAnswer(tb testing.TB, what string, a, b *testkit.Response, aEmail, bEmail string) {
	tb.Helper()
	if len(aEmail) != len(bEmail) {
		tb.Fatalf("%s: test bug: compared addresses must have one length: %q, %q", what, aEmail, bEmail)
	}
	if a.Status != b.Status {
		tb.Errorf("%s: got status %d and %d; want the same", what, a.Status, b.Status)
	}
	if d := cmp.Diff(acctNormBody(a, aEmail), acctNormBody(b, bEmail)); d != "" {
		tb.Errorf("%s: bodies differ (-first +second):\n%s", what, d)
	}
	ha, hb := acctNormHeader(a.Header), acctNormHeader(b.Header)
	if ha.Get("Retry-After") != "" && hb.Get("Retry-After") != "" {
		hb.Set("Retry-After", ha.Get("Retry-After"))
	}
	if d := cmp.Diff(ha, hb); d != "" {
		tb.Errorf("%s: headers differ (-first +second):\n%s", what, d)
	}
}

func acctNormBody(r *testkit.Response, email string) string {
	s := r.Text()
	if id := r.Header.Get("X-Request-Id"); id != "" {
		s = strings.ReplaceAll(s, id, "REQUEST-ID")
	}
	if email != "" {
		s = strings.ReplaceAll(s, email, "EMAIL")
	}
	return s
}

func acctNormHeader(h http.Header) http.Header {
	h = h.Clone()
	h.Del("X-Request-Id")
	h.Del("Date")
	return h
}

// acctCheckVerifyMail checks a verification mail: to the address, a text
// and an HTML part, and a link built from the public URL in both.
func acctCheckVerifyMail(tb testing.TB, g *testkit.Gateway, m testkit.Mail, email string) {
	tb.Helper()
	if !slices.Equal(m.To, []string{email}) {
		tb.Errorf("verification mail to %v; want [%s]", m.To, email)
	}
	if !strings.Contains(strings.ToLower(m.Subject), "confirm") {
		tb.Errorf("verification mail subject %q; want a confirmation subject", m.Subject)
	}
	if strings.TrimSpace(m.Text) == "" || strings.TrimSpace(m.HTML) == "" {
		tb.Errorf("verification mail: text part %d bytes, HTML part %d bytes; want both", len(m.Text), len(m.HTML))
	}
	link := m.Link(tb)
	if !strings.HasPrefix(link, g.URL+"/verify?token=") {
		tb.Errorf("verification link %.60s…; want it to start with %s/verify?token=", link, g.URL)
	}
	if !strings.Contains(m.HTML, link) {
		tb.Errorf("verification mail: the HTML part does not carry the link of the text part")
	}
}

// acctNoMailTo checks, once the test and its subtests are done, that none
// of the addresses added to it received mail.
type acctNoMailTo struct {
	mu    sync.Mutex
	addrs []string
}

func acctNoMail(tb testing.TB, g *testkit.Gateway) *acctNoMailTo {
	n := &acctNoMailTo{}
	tb.Cleanup(func() {
		g.MailBarrier(tb) // a wrongly queued mail has arrived by now
		n.mu.Lock()
		defer n.mu.Unlock()
		for _, a := range n.addrs {
			if got := len(g.SMTP.Mails(a)); got != 0 {
				tb.Errorf("%s received %d mails; want none", a, got)
			}
		}
	})
	return n
}

func (n *acctNoMailTo) add(email string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.addrs = append(n.addrs, email)
}

// acctNewUser signs up and verifies email through the API and returns the
// signed-in client.
func acctNewUser(tb testing.TB, g *testkit.Gateway, email, password string) *testkit.Client {
	tb.Helper()
	c := g.Client(tb)
	m := c.SignUp(g, email, password)
	if r := c.Verify(m.Token(tb), password); r.Status != http.StatusOK {
		tb.Fatalf("verify %s: got status %d; want 200\n%s", email, r.Status, r.Body)
	}
	return c
}

// acctUser returns the "user" object of an API answer.
func acctUser(tb testing.TB, what string, r *testkit.Response) map[string]any {
	tb.Helper()
	u, ok := r.JSON(tb)["user"].(map[string]any)
	if !ok {
		tb.Fatalf("%s: no user object in %s", what, r.Body)
	}
	return u
}

// acctSessionIPs lists the ip of each session of the client's user.
func acctSessionIPs(tb testing.TB, c *testkit.Client) []string {
	tb.Helper()
	r := c.Get("/api/v1/sessions")
	acctWant(tb, "GET /api/v1/sessions", r, http.StatusOK)
	var body struct {
		Sessions []struct {
			IP      string `json:"ip"`
			Current bool   `json:"current"`
		} `json:"sessions"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		tb.Fatalf("sessions: %v\n%s", err, r.Body)
	}
	var ips []string
	for _, s := range body.Sessions {
		ips = append(ips, s.IP)
	}
	return ips
}

// acctSendJSON sends a same-origin JSON POST with extra headers.
func acctSendJSON(tb testing.TB, c *testkit.Client, path string, v any, header http.Header) *testkit.Response {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	req := c.NewRequest(http.MethodPost, path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for k, vs := range header {
		req.Header[k] = vs
	}
	return c.Do(req)
}

// acctLoginXFF signs in through the API with an X-Forwarded-For header.
func acctLoginXFF(tb testing.TB, c *testkit.Client, email, password, xff string) *testkit.Response {
	tb.Helper()
	return acctSendJSON(tb, c, "/api/v1/login", map[string]string{"email": email, "password": password},
		http.Header{"X-Forwarded-For": {xff}})
}

// acctStoredHash reads the password hash of a user straight from the database.
func acctStoredHash(tb testing.TB, uri, database, email string) string {
	tb.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetTimeout(10 * time.Second))
	if err != nil {
		tb.Fatalf("connect to the database: %v", err)
	}
	defer client.Disconnect(context.Background())
	var doc struct {
		PasswordHash string `bson:"password_hash"`
	}
	err = client.Database(database).Collection("users").FindOne(context.Background(), bson.D{{Key: "email", Value: email}}).Decode(&doc)
	if err != nil {
		tb.Fatalf("find user %s: %v", email, err)
	}
	return doc.PasswordHash
}

// TestAccountJourneyPages is issue 2 steps 2-4 through the HTML forms:
// signup, the mailed link (GET does not consume it, TK-5), verification with
// the signup password, the account page, sign-out and sign-in.
func TestAccountJourneyPages(t *testing.T) {
	t.Parallel()
	g := acctStart(t, nil)
	c := g.Client(t)
	email := acctEmail("pages")

	r := c.Get("/signup")
	acctWant(t, "GET /signup", r, http.StatusOK)
	acctWantText(t, "GET /signup", r, `action="/signup"`, `name="email"`, `name="password"`)

	r = acctForm(t, c, "/signup", "email", email, "password", acctPassword)
	acctWant(t, "POST /signup", r, http.StatusOK)
	acctWantText(t, "POST /signup", r, "Check your inbox", email)

	m := g.SMTP.WaitMail(t, email, 1, acctMailWait)
	acctCheckVerifyMail(t, g, m, email)
	token := m.Token(t)
	verifyPath := "/verify?token=" + url.QueryEscape(token)

	// A mail scanner and then the user open the link: neither uses it up.
	for i := range 2 {
		r := c.Get(verifyPath)
		what := fmt.Sprintf("GET /verify #%d", i+1)
		acctWant(t, what, r, http.StatusOK)
		acctWantText(t, what, r, "Enter the password you chose when you signed up", `name="token" value="`+token+`"`, `name="password"`)
	}
	if c.Cookie(testkit.CookieName) != nil {
		t.Fatal("GET /verify set a session cookie; want none before the password is confirmed")
	}

	r = acctForm(t, c, "/verify", "token", token, "password", acctWrongPW)
	acctWant(t, "POST /verify with a wrong password", r, http.StatusUnauthorized)
	acctWantText(t, "POST /verify with a wrong password", r, "not the password you chose")
	if c.Cookie(testkit.CookieName) != nil {
		t.Fatal("a refused verification set a session cookie")
	}

	r = acctForm(t, c, "/verify", "token", token, "password", acctPassword)
	testkit.WantRedirect(t, "POST /verify", r, http.StatusSeeOther, "/account")
	if c.Cookie(testkit.CookieName) == nil {
		t.Fatal("verification set no session cookie")
	}

	r = c.Get("/account")
	acctWant(t, "GET /account after verification", r, http.StatusOK)
	acctWantText(t, "GET /account", r, email, "Active sessions", "This device", "127.0.0.1")

	r = c.Get(verifyPath)
	acctWant(t, "GET /verify with a used link", r, http.StatusBadRequest)
	acctWantText(t, "GET /verify with a used link", r, "invalid or has expired")

	r = acctForm(t, c, "/logout")
	testkit.WantRedirect(t, "POST /logout", r, http.StatusSeeOther, "/login?notice=signed_out")
	r = c.Get("/account")
	testkit.WantRedirect(t, "GET /account after sign-out", r, http.StatusSeeOther, "/login?return_to=%2Faccount")

	r = c.Get("/login")
	acctWant(t, "GET /login", r, http.StatusOK)
	r = acctForm(t, c, "/login", "email", email, "password", acctPassword)
	testkit.WantRedirect(t, "POST /login", r, http.StatusSeeOther, "/account")
	r = c.Get("/account")
	acctWant(t, "GET /account after sign-in", r, http.StatusOK)
	acctWantText(t, "GET /account after sign-in", r, email, "This device")
}

// TestAccountJourneyAPI is the same journey through /api/v1, with the mail
// link built from public_url even when the request names another Host (TK-5).
func TestAccountJourneyAPI(t *testing.T) {
	t.Parallel()
	g := acctStart(t, nil)
	c := g.Client(t)
	email := acctEmail("api")

	body, _ := json.Marshal(map[string]string{"email": email, "password": acctPassword})
	req := c.NewRequest(http.MethodPost, "/api/v1/signup", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Host = "attacker.example"
	r := c.Do(req)
	acctWant(t, "POST /api/v1/signup", r, http.StatusAccepted)
	if got := r.JSON(t)["status"]; got != "verification_sent" {
		t.Errorf("signup status = %v; want verification_sent", got)
	}

	m := g.SMTP.WaitMail(t, email, 1, acctMailWait)
	acctCheckVerifyMail(t, g, m, email)
	token := m.Token(t)

	scanner := g.Client(t)
	for i := range 2 {
		acctWant(t, fmt.Sprintf("GET /verify #%d", i+1), scanner.Get("/verify?token="+url.QueryEscape(token)), http.StatusOK)
	}

	r = c.Verify(token, acctWrongPW)
	testkit.WantAPIError(t, "verify with a wrong password", r, http.StatusUnauthorized, "invalid_credentials")
	if c.Cookie(testkit.CookieName) != nil {
		t.Fatal("a refused verification set a session cookie")
	}

	r = c.Verify(token, acctPassword)
	acctWant(t, "verify", r, http.StatusOK)
	u := acctUser(t, "verify", r)
	if u["email"] != email || u["email_verified"] != true || u["has_password"] != true {
		t.Errorf("verify user = %v; want email %s, email_verified and has_password true", u, email)
	}
	keys := make([]string, 0, len(u))
	for k := range u {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if d := cmp.Diff([]string{"created_at", "email", "email_verified", "has_password", "id", "providers"}, keys); d != "" {
		t.Errorf("user object fields (-want +got):\n%s", d)
	}
	if sc := r.Header.Get("Set-Cookie"); !strings.HasPrefix(sc, testkit.CookieName+"=") || !strings.Contains(sc, "HttpOnly") {
		t.Errorf("verify Set-Cookie = %q; want an HttpOnly %s cookie", sc, testkit.CookieName)
	}

	testkit.WantAPIError(t, "verify again with the used token", c.Verify(token, acctPassword), http.StatusBadRequest, "invalid_token")

	r = c.Get("/api/v1/session")
	acctWant(t, "session after verify", r, http.StatusOK)
	if got := acctUser(t, "session", r)["email"]; got != email {
		t.Errorf("session email = %v; want %s", got, email)
	}
	if ips := acctSessionIPs(t, c); !slices.Equal(ips, []string{"127.0.0.1"}) {
		t.Errorf("session ips = %v; want [127.0.0.1]", ips)
	}

	acctWant(t, "logout", c.PostJSON("/api/v1/logout", nil), http.StatusNoContent)
	testkit.WantAPIError(t, "session after logout", c.Get("/api/v1/session"), http.StatusUnauthorized, "unauthenticated")

	r = c.Login(email, acctPassword)
	acctWant(t, "login", r, http.StatusOK)
	if got := acctUser(t, "login", r)["email"]; got != email {
		t.Errorf("login email = %v; want %s", got, email)
	}
	if sc := r.Header.Get("Set-Cookie"); !strings.HasPrefix(sc, testkit.CookieName+"=") {
		t.Errorf("login Set-Cookie = %q; want a %s cookie", sc, testkit.CookieName)
	}
	acctWant(t, "session after login", c.Get("/api/v1/session"), http.StatusOK)
}

// TestAccountReturnTo: a relative return_to survives the verify page and the
// login page and is where the form sends the user; anything else falls back
// to /account (RD-1).
func TestAccountReturnTo(t *testing.T) {
	t.Parallel()
	g := acctStart(t, nil)
	c := g.Client(t)
	email := acctEmail("rt")
	token := c.SignUp(g, email, acctPassword).Token(t)

	const afterVerify = "/app/after-verify?x=1"
	r := c.Get("/verify?token=" + url.QueryEscape(token) + "&return_to=" + url.QueryEscape(afterVerify))
	acctWant(t, "GET /verify with return_to", r, http.StatusOK)
	acctWantText(t, "GET /verify with return_to", r, `name="return_to" value="`+afterVerify+`"`)
	r = acctForm(t, c, "/verify", "token", token, "password", acctPassword, "return_to", afterVerify)
	testkit.WantRedirect(t, "POST /verify with return_to", r, http.StatusSeeOther, afterVerify)

	acctWant(t, "logout", c.PostJSON("/api/v1/logout", nil), http.StatusNoContent)
	const afterLogin = "/app/after-login"
	r = c.Get("/login?return_to=" + url.QueryEscape(afterLogin))
	acctWant(t, "GET /login with return_to", r, http.StatusOK)
	acctWantText(t, "GET /login with return_to", r, `name="return_to" value="`+afterLogin+`"`)
	r = acctForm(t, c, "/login", "email", email, "password", acctPassword, "return_to", afterLogin)
	testkit.WantRedirect(t, "POST /login with return_to", r, http.StatusSeeOther, afterLogin)

	for _, bad := range []string{"//evil.example/x", "https://evil.example/", `/\evil.example`} {
		r := acctForm(t, g.Client(t), "/login", "email", email, "password", acctPassword, "return_to", bad)
		testkit.WantRedirect(t, "POST /login with return_to "+bad, r, http.StatusSeeOther, "/account")
	}
}

// TestAccountLoginBeforeVerification: an unverified signup cannot sign in;
// "verify your email first" only with the right password, otherwise the
// answer of an unknown address (EN-1); a resent mail's token works and voids
// the older ones (TK-4).
func TestAccountLoginBeforeVerification(t *testing.T) {
	t.Parallel()
	g, clock := acctStartClocked(t, nil)
	c := g.Client(t)
	email, unknown := acctEmail("unv"), acctEmail("unk")
	t1 := c.SignUp(g, email, acctPassword).Token(t)

	r := c.Login(email, acctPassword)
	testkit.WantAPIError(t, "API login before verification", r, http.StatusForbidden, "email_not_verified")
	if r.Header.Get("Set-Cookie") != "" {
		t.Error("a refused login set a cookie")
	}
	wrong := c.Login(email, acctWrongPW)
	testkit.WantAPIError(t, "API login before verification, wrong password", wrong, http.StatusUnauthorized, "invalid_credentials")
	acctSameAnswer(t, "API login: pending signup with a wrong password vs unknown address", wrong, c.Login(unknown, acctWrongPW), "", "")

	r = acctForm(t, c, "/login", "email", email, "password", acctPassword)
	acctWant(t, "POST /login before verification", r, http.StatusForbidden)
	acctWantText(t, "POST /login before verification", r, "Verify your email first", `action="/verify/resend"`, `name="email" value="`+email+`"`)
	wrongPage := acctForm(t, c, "/login", "email", email, "password", acctWrongPW)
	acctWant(t, "POST /login before verification, wrong password", wrongPage, http.StatusUnauthorized)
	acctWantText(t, "POST /login, wrong password", wrongPage, "Email or password is incorrect.")
	if strings.Contains(wrongPage.Text(), "Verify your email") {
		t.Error("login page with a wrong password offers verification; want the generic failure only")
	}
	acctSameAnswer(t, "POST /login: pending signup with a wrong password vs unknown address",
		wrongPage, acctForm(t, c, "/login", "email", unknown, "password", acctWrongPW), email, unknown)

	// Resend through the API and through the form the login page offers,
	// for two addresses: a new token each time, the older ones void.
	email2 := acctEmail("unv")
	s1 := c.SignUp(g, email2, acctPassword).Token(t)
	clock.Advance(time.Minute) // past the mail quota's interval
	r = c.PostJSON("/api/v1/verify/resend", map[string]string{"email": email})
	acctWant(t, "API resend", r, http.StatusAccepted)
	r = acctForm(t, c, "/verify/resend", "email", email2)
	acctWant(t, "POST /verify/resend", r, http.StatusOK)
	acctWantText(t, "POST /verify/resend", r, "Check your inbox")

	m2 := g.SMTP.WaitMail(t, email, 2, acctMailWait)
	acctCheckVerifyMail(t, g, m2, email)
	t2 := m2.Token(t)
	s2 := g.SMTP.WaitMail(t, email2, 2, acctMailWait).Token(t)
	if t2 == t1 || s2 == s1 {
		t.Fatal("a resent mail carries the old token; want a new one")
	}
	r = c.Get("/verify?token=" + url.QueryEscape(t1))
	acctWant(t, "GET /verify with the replaced token", r, http.StatusBadRequest)
	acctWantText(t, "GET /verify with the replaced token", r, "invalid or has expired")
	testkit.WantAPIError(t, "verify with the replaced token", c.Verify(t1, acctPassword), http.StatusBadRequest, "invalid_token")
	r = acctForm(t, c, "/verify", "token", s1, "password", acctPassword)
	acctWant(t, "POST /verify with the replaced token", r, http.StatusBadRequest)

	acctWant(t, "verify with the resent token", c.Verify(t2, acctPassword), http.StatusOK)
	r = acctForm(t, g.Client(t), "/verify", "token", s2, "password", acctPassword)
	testkit.WantRedirect(t, "POST /verify with the resent token", r, http.StatusSeeOther, "/account")
	acctWant(t, "login after verification", g.Client(t).Login(email, acctPassword), http.StatusOK)
	acctWant(t, "login after verification", g.Client(t).Login(email2, acctPassword), http.StatusOK)
}

// TestAccountPasswordLength is PW-1: length counted in code points, 12 to
// 128 by default, over 1 KiB refused.
func TestAccountPasswordLength(t *testing.T) {
	t.Parallel()
	g := acctStart(t, nil)
	noMail := acctNoMail(t, g)
	cases := []struct {
		name  string
		pw    string
		runes int
		ok    bool
		msg   string
	}{
		{"11 ASCII", "kq7vz2mw9xh", 11, false, "at least 12"},
		{"12 ASCII", "kq7vz2mw9xhp", 12, true, ""},
		{"11 code points in 21 bytes", "éééééééééé1", 11, false, "at least 12"},
		{"12 code points in 23 bytes", "ééééééééééé1", 12, true, ""},
		{"128 code points in 509 bytes", strings.Repeat("🔑", 127) + "x", 128, true, ""},
		{"128 ASCII", strings.Repeat("kq7vz2mw9x", 13)[:128], 128, true, ""},
		{"129 ASCII", strings.Repeat("kq7vz2mw9x", 13)[:129], 129, false, "at most 128"},
		{"129 code points", strings.Repeat("🔑", 128) + "x", 129, false, "at most 128"},
		{"over 1 KiB", strings.Repeat("kq7vz2mw9x", 110), 1100, false, "at most 128"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if n := utf8.RuneCountInString(tc.pw); n != tc.runes {
				t.Fatalf("test data: %d code points; want %d", n, tc.runes)
			}
			c := g.Client(t)
			email := acctEmail("pw1")
			r := c.PostJSON("/api/v1/signup", map[string]string{"email": email, "password": tc.pw})
			if !tc.ok {
				testkit.WantAPIError(t, "signup", r, http.StatusBadRequest, "weak_password")
				if msg := string(r.Body); !strings.Contains(msg, tc.msg) {
					t.Errorf("signup refusal %s; want it to say %q", msg, tc.msg)
				}
				page := acctForm(t, c, "/signup", "email", email, "password", tc.pw)
				acctWant(t, "POST /signup", page, http.StatusBadRequest)
				acctWantText(t, "POST /signup", page, tc.msg)
				noMail.add(email)
				return
			}
			acctWant(t, "signup", r, http.StatusAccepted)
			m := g.SMTP.WaitMail(t, email, 1, acctMailWait)
			acctWant(t, "verify", c.Verify(m.Token(t), tc.pw), http.StatusOK)
			acctWant(t, "login", g.Client(t).Login(email, tc.pw), http.StatusOK)
		})
	}

	// Sign-in and verification refuse an oversize password without a 5xx,
	// and the refusal does not use up the link.
	t.Run("over 1 KiB on login and verify", func(t *testing.T) {
		t.Parallel()
		huge := strings.Repeat("kq7vz2mw9x", 110)
		c := g.Client(t)
		email := acctEmail("pw1")
		m := c.SignUp(g, email, acctPassword)
		for _, r := range []*testkit.Response{c.Login(email, huge), c.Verify(m.Token(t), huge), g.Client(t).Login(acctEmail("pw1"), huge)} {
			if r.Status != http.StatusBadRequest && r.Status != http.StatusUnauthorized {
				t.Errorf("oversize password: got %d; want 400 or 401\n%s", r.Status, r.Body)
			}
		}
		acctWant(t, "verify after the oversize attempt", c.Verify(m.Token(t), acctPassword), http.StatusOK)
	})
}

// TestAccountPasswordMinLengthConfig: password.min_length lowers the minimum
// to 8 and the forms say so.
func TestAccountPasswordMinLengthConfig(t *testing.T) {
	t.Parallel()
	g := acctStart(t, map[string]string{"GATEHOUSE_PASSWORD_MIN_LENGTH": "8"})
	c := g.Client(t)
	r := c.PostJSON("/api/v1/signup", map[string]string{"email": acctEmail("min8"), "password": "kq7vz2m"})
	testkit.WantAPIError(t, "signup with 7 characters", r, http.StatusBadRequest, "weak_password")
	if !strings.Contains(string(r.Body), "at least 8") {
		t.Errorf("refusal %s; want it to say at least 8", r.Body)
	}
	email := acctEmail("min8")
	m := c.SignUp(g, email, "kq7vz2mw")
	acctWant(t, "verify with 8 characters", c.Verify(m.Token(t), "kq7vz2mw"), http.StatusOK)
	acctWantText(t, "GET /signup", c.Get("/signup"), `minlength="8"`)
}

// TestAccountPasswordMinLengthFloor: a minimum below 8 stops the program at
// startup with a message naming the key (PW-1).
func TestAccountPasswordMinLengthFloor(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"7", "0"} {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			cfg := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(cfg, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			env := map[string]string{
				"GATEHOUSE_PASSWORD_MIN_LENGTH": v,
				"GATEHOUSE_DATA_DIR":            t.TempDir(),
				"GATEHOUSE_SERVER_ADDRESS":      "127.0.0.1:0",
			}
			// If the value were accepted, run would serve until the deadline.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var out testkit.SyncBuffer
			err := run(ctx, []string{"-config", cfg}, func(k string) string { return env[k] }, &out)
			if err == nil || !strings.Contains(err.Error(), "password.min_length") {
				t.Errorf("run with min_length %s: got %v; want an error naming password.min_length", v, err)
			}
		})
	}
}

// TestAccountPasswordNoTruncation is PW-2: a 100-character password is used
// whole, so no prefix of it (bcrypt's 72 bytes) signs in.
func TestAccountPasswordNoTruncation(t *testing.T) {
	t.Parallel()
	g := acctStart(t, nil)
	pw := strings.Repeat("seven pale owls guard the quiet harbor ", 3)[:100]
	email := acctEmail("pw2")
	acctNewUser(t, g, email, pw)
	for _, p := range []string{pw[:72], pw[:99], pw + "!"} {
		testkit.WantAPIError(t, fmt.Sprintf("login with %d of the 100 characters", len(p)), g.Client(t).Login(email, p), http.StatusUnauthorized, "invalid_credentials")
	}
	acctWant(t, "login with the whole password", g.Client(t).Login(email, pw), http.StatusOK)
}

// TestAccountPasswordPolicy is PW-3: common passwords and the user's own
// address are refused; no composition rules; any Unicode works.
func TestAccountPasswordPolicy(t *testing.T) {
	t.Parallel()
	g := acctStart(t, nil)
	noMail := acctNoMail(t, g)
	refused := []struct {
		name string
		pw   func(email string) string
		msg  string
	}{
		{"common", func(string) string { return "password1234" }, "too common"},
		{"common in other case", func(string) string { return "PassWord1234" }, "too common"},
		{"common digits", func(string) string { return "012345678910" }, "too common"},
		{"the address", func(e string) string { return e }, "email address"},
		{"the address inside", func(e string) string { return "my " + e + " pw" }, "email address"},
		{"the address in capitals", func(e string) string { return "MY " + strings.ToUpper(e) }, "email address"},
	}
	for _, tc := range refused {
		t.Run("refused/"+tc.name, func(t *testing.T) {
			t.Parallel()
			c := g.Client(t)
			email := acctEmail("pw3")
			r := c.PostJSON("/api/v1/signup", map[string]string{"email": email, "password": tc.pw(email)})
			testkit.WantAPIError(t, "signup", r, http.StatusBadRequest, "weak_password")
			if !strings.Contains(string(r.Body), tc.msg) {
				t.Errorf("refusal %s; want it to say %q", r.Body, tc.msg)
			}
			page := acctForm(t, c, "/signup", "email", email, "password", tc.pw(email))
			acctWant(t, "POST /signup", page, http.StatusBadRequest)
			acctWantText(t, "POST /signup", page, tc.msg)
			noMail.add(email)
		})
	}
	accepted := map[string]string{
		"lower case words only": "correct horse battery staple",
		"emoji and Cyrillic":    "🔐 мой пароль 🐎 лошадь",
		"CJK":                   "正しい馬のバッテリー留め金",
		"right-to-left":         "كلمة مرور طويلة جدا",
	}
	for name, pw := range accepted {
		t.Run("accepted/"+name, func(t *testing.T) {
			t.Parallel()
			email := acctEmail("pw3")
			acctNewUser(t, g, email, pw)
			acctWant(t, "login", g.Client(t).Login(email, pw), http.StatusOK)
			testkit.WantAPIError(t, "login with a different password", g.Client(t).Login(email, pw+"x"), http.StatusUnauthorized, "invalid_credentials")
		})
	}
}

var acctPHC = regexp.MustCompile(`^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$([A-Za-z0-9+/]{22,})\$([A-Za-z0-9+/]{43,})$`)

// TestAccountPasswordHashStorage is PW-4 as stored: argon2id PHC strings with
// OWASP's cost and a unique salt, upgraded at the next sign-in when the
// configured cost rises, and only then.
func TestAccountPasswordHashStorage(t *testing.T) {
	t.Parallel()
	db := testkit.StartDB(t)
	g := acctStartWith(t, testkit.Options{MongoURI: db.URI})
	a, b := acctEmail("hash"), acctEmail("hash")
	acctNewUser(t, g, a, acctPassword)
	acctNewUser(t, g, b, acctPassword)

	ha, hb := acctStoredHash(t, db.URI, g.Database, a), acctStoredHash(t, db.URI, g.Database, b)
	pa, pb := acctPHC.FindStringSubmatch(ha), acctPHC.FindStringSubmatch(hb)
	if pa == nil || pb == nil {
		t.Fatalf("stored hashes %q, %q; want argon2id PHC strings", ha, hb)
	}
	if !strings.HasPrefix(ha, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("stored hash %q; want $argon2id$v=19$m=19456,t=2,p=1$…", ha)
	}
	if pa[4] == pb[4] || pa[5] == pb[5] {
		t.Errorf("two users with one password: salts %s, %s; want different salts and hashes", pa[4], pb[4])
	}
	if strings.Contains(ha, acctPassword) {
		t.Error("the stored hash contains the password")
	}

	// A restart with a higher memory cost upgrades a hash at its next sign-in.
	if err := g.Stop(t); err != nil {
		t.Fatalf("stop gateway: %v", err)
	}
	g2 := acctStartWith(t, testkit.Options{MongoURI: db.URI, Database: g.Database,
		Env: map[string]string{"GATEHOUSE_PASSWORD_ARGON2_MEMORY_KIB": "20480"}})
	testkit.WantAPIError(t, "login with a wrong password", g2.Client(t).Login(b, acctWrongPW), http.StatusUnauthorized, "invalid_credentials")
	if got := acctStoredHash(t, db.URI, g.Database, b); got != hb {
		t.Errorf("a failed login changed the stored hash: %q; want %q", got, hb)
	}
	acctWant(t, "login after the cost rose", g2.Client(t).Login(a, acctPassword), http.StatusOK)
	ha2 := acctStoredHash(t, db.URI, g.Database, a)
	if !strings.HasPrefix(ha2, "$argon2id$v=19$m=20480,t=2,p=1$") || acctPHC.FindStringSubmatch(ha2) == nil {
		t.Errorf("hash after login with the higher cost = %q; want $argon2id$v=19$m=20480,t=2,p=1$…", ha2)
	}
	acctWant(t, "login with the upgraded hash", g2.Client(t).Login(a, acctPassword), http.StatusOK)
	testkit.WantAPIError(t, "wrong password against the upgraded hash", g2.Client(t).Login(a, acctWrongPW), http.StatusUnauthorized, "invalid_credentials")
}

// TestAccountPasswordHashingBounded is PW-4's bound: with one hash at a time
// and one waiter, a burst of sign-ins gets fast 503 overloaded answers with
// Retry-After, never a 500.
func TestAccountPasswordHashingBounded(t *testing.T) {
	t.Parallel()
	g := acctStart(t, map[string]string{
		"GATEHOUSE_PASSWORD_ARGON2_MAX_CONCURRENT": "1",
		"GATEHOUSE_PASSWORD_ARGON2_MAX_WAITING":    "1",
		"GATEHOUSE_PASSWORD_ARGON2_MAX_WAIT":       "100ms",
	})
	email := acctEmail("flood")
	acctNewUser(t, g, email, acctPassword)

	const n = 30
	body, _ := json.Marshal(map[string]string{"email": email, "password": acctPassword})
	type result struct {
		status     int
		code       string
		retryAfter string
		err        error
	}
	results := make([]result, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 30 * time.Second}
	for i := range n {
		wg.Go(func() {
			<-start
			req, _ := http.NewRequest(http.MethodPost, g.URL+"/api/v1/login", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Sec-Fetch-Site", "same-origin")
			resp, err := client.Do(req)
			if err != nil {
				results[i].err = err
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			r := &testkit.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
			results[i] = result{status: r.Status, code: r.ErrorCode(), retryAfter: r.Header.Get("Retry-After")}
		})
	}
	close(start)
	wg.Wait()

	counts := map[int]int{}
	for _, r := range results {
		if r.err != nil {
			t.Errorf("login: %v", r.err)
			continue
		}
		counts[r.status]++
		switch r.status {
		case http.StatusOK:
		case http.StatusServiceUnavailable:
			if r.code != "overloaded" || r.retryAfter == "" {
				t.Errorf("503 with code %q, Retry-After %q; want overloaded with a Retry-After", r.code, r.retryAfter)
			}
		default:
			t.Errorf("login under load: got %d %q; want 200 or 503", r.status, r.code)
		}
	}
	t.Logf("statuses of %d concurrent logins: %v", n, counts)
	if counts[http.StatusServiceUnavailable] == 0 {
		t.Errorf("no login of %d was turned away; want some 503 overloaded", n)
	}
	if counts[http.StatusOK] == 0 {
		t.Errorf("no login of %d succeeded; want the hashing slot to serve some", n)
	}
}

// TestAccountLoginFailureIdentical is EN-1: a wrong password, a wrong
// password for a pending signup, and an unknown address get the same answer.
func TestAccountLoginFailureIdentical(t *testing.T) {
	t.Parallel()
	g := acctStart(t, nil)
	known, pending, unknown := acctEmail("known"), acctEmail("pendi"), acctEmail("unkno")
	acctNewUser(t, g, known, acctPassword)
	g.Client(t).SignUp(g, pending, acctPassword)

	ru := g.Client(t).Login(unknown, acctWrongPW)
	testkit.WantAPIError(t, "API login for an unknown address", ru, http.StatusUnauthorized, "invalid_credentials")
	acctSameAnswer(t, "API login: wrong password vs unknown address", g.Client(t).Login(known, acctWrongPW), ru, "", "")
	acctSameAnswer(t, "API login: pending signup, wrong password vs unknown address", g.Client(t).Login(pending, acctWrongPW), ru, "", "")

	pu := acctForm(t, g.Client(t), "/login", "email", unknown, "password", acctWrongPW)
	acctWant(t, "POST /login for an unknown address", pu, http.StatusUnauthorized)
	acctSameAnswer(t, "POST /login: wrong password vs unknown address",
		acctForm(t, g.Client(t), "/login", "email", known, "password", acctWrongPW), pu, known, unknown)
	acctSameAnswer(t, "POST /login: pending signup, wrong password vs unknown address",
		acctForm(t, g.Client(t), "/login", "email", pending, "password", acctWrongPW), pu, pending, unknown)
}

// TestAccountSignupTakenIdentical is EN-2: signing up with a verified or a
// pending address answers like a fresh signup; only the mail differs, and
// the owner's password is untouched.
func TestAccountSignupTakenIdentical(t *testing.T) {
	t.Parallel()
	g, clock := acctStartClocked(t, nil)
	// Two owners, so the API and the form each get a notice without waiting
	// out the quota twice.
	owner, owner2, pending := acctEmail("taken"), acctEmail("taken"), acctEmail("pendi")
	acctNewUser(t, g, owner, acctPassword)
	acctNewUser(t, g, owner2, acctPassword)
	g.Client(t).SignUp(g, pending, acctPassword)
	clock.Advance(time.Minute) // past the mail quota's interval

	const other = "another passphrase 42"
	c := g.Client(t)
	fresh := acctEmail("fresh")
	signup := func(email string) *testkit.Response {
		return c.PostJSON("/api/v1/signup", map[string]string{"email": email, "password": other})
	}
	rf := signup(fresh)
	acctWant(t, "API signup of a fresh address", rf, http.StatusAccepted)
	acctSameAnswer(t, "API signup: fresh vs verified address", rf, signup(owner), "", "")
	acctSameAnswer(t, "API signup: fresh vs pending address", rf, signup(pending), "", "")

	fresh2 := acctEmail("fresh")
	pf := acctForm(t, c, "/signup", "email", fresh2, "password", other)
	acctWant(t, "POST /signup of a fresh address", pf, http.StatusOK)
	acctSameAnswer(t, "POST /signup: fresh vs verified address", pf, acctForm(t, c, "/signup", "email", owner2, "password", other), fresh2, owner2)

	acctCheckVerifyMail(t, g, g.SMTP.WaitMail(t, fresh, 1, acctMailWait), fresh)
	acctCheckVerifyMail(t, g, g.SMTP.WaitMail(t, fresh2, 1, acctMailWait), fresh2)
	acctCheckVerifyMail(t, g, g.SMTP.WaitMail(t, pending, 2, acctMailWait), pending)
	for _, o := range []string{owner, owner2} {
		acctCheckExistsMail(t, g, g.SMTP.WaitMail(t, o, 2, acctMailWait), o)
		acctWant(t, "owner login with the own password", g.Client(t).Login(o, acctPassword), http.StatusOK)
		testkit.WantAPIError(t, "login with the password of the later signup", g.Client(t).Login(o, other), http.StatusUnauthorized, "invalid_credentials")
	}
	g.NoMoreMail(t, owner, 2)
}

// acctCheckExistsMail checks an "account exists" mail: to the owner, both
// parts, and nothing to redeem, only a link to sign in.
func acctCheckExistsMail(tb testing.TB, g *testkit.Gateway, m testkit.Mail, email string) {
	tb.Helper()
	if !slices.Equal(m.To, []string{email}) {
		tb.Errorf("account-exists mail to %v; want [%s]", m.To, email)
	}
	if !strings.Contains(strings.ToLower(m.Subject), "tried to sign up") {
		tb.Errorf("mail to the owner has subject %q; want the account-exists notice", m.Subject)
	}
	if strings.TrimSpace(m.Text) == "" || strings.TrimSpace(m.HTML) == "" {
		tb.Errorf("account-exists mail: text part %d bytes, HTML part %d bytes; want both", len(m.Text), len(m.HTML))
	}
	if link := m.Link(tb); link != g.URL+"/login" {
		tb.Errorf("account-exists mail link %q; want %s/login", link, g.URL)
	}
	if strings.Contains(m.Text, "token=") || strings.Contains(m.HTML, "token=") {
		tb.Error("account-exists mail carries a token")
	}
}

// TestAccountForgotResendIdentical is EN-3: forgot-password and resend answer
// the same for unknown, pending and verified addresses, API and forms.
func TestAccountForgotResendIdentical(t *testing.T) {
	t.Parallel()
	g := acctStart(t, nil)
	known, pending, unknown := acctEmail("known"), acctEmail("pendi"), acctEmail("unkno")
	acctNewUser(t, g, known, acctPassword)
	g.Client(t).SignUp(g, pending, acctPassword)
	c := g.Client(t)
	post := func(path, email string) *testkit.Response {
		return c.PostJSON(path, map[string]string{"email": email})
	}

	fu := post("/api/v1/password/forgot", unknown)
	acctWant(t, "API forgot for an unknown address", fu, http.StatusAccepted)
	acctSameAnswer(t, "API forgot: known vs unknown address", post("/api/v1/password/forgot", known), fu, "", "")
	acctSameAnswer(t, "API forgot: pending vs unknown address", post("/api/v1/password/forgot", pending), fu, "", "")
	g.SMTP.WaitSubject(t, known, "reset", acctMailWait) // the known address got what the others did not

	ru := post("/api/v1/verify/resend", unknown)
	acctWant(t, "API resend for an unknown address", ru, http.StatusAccepted)
	acctSameAnswer(t, "API resend: verified vs unknown address", post("/api/v1/verify/resend", known), ru, "", "")
	acctSameAnswer(t, "API resend: pending vs unknown address", post("/api/v1/verify/resend", pending), ru, "", "")

	for _, path := range []string{"/password/forgot", "/verify/resend"} {
		pu := acctForm(t, c, path, "email", unknown)
		acctWant(t, "POST "+path+" for an unknown address", pu, http.StatusOK)
		acctSameAnswer(t, "POST "+path+": known vs unknown address", acctForm(t, c, path, "email", known), pu, known, unknown)
		acctSameAnswer(t, "POST "+path+": pending vs unknown address", acctForm(t, c, path, "email", pending), pu, pending, unknown)
	}
	g.NoMoreMail(t, unknown, 0)
}

// TestAccountRateLimitIdentical is EN-4: the per-address limit answers the
// same for an account and for an unknown address.
func TestAccountRateLimitIdentical(t *testing.T) {
	t.Parallel()
	g := acctStart(t, map[string]string{"GATEHOUSE_RATE_LIMITS_PER_ADDRESS": "2"})
	known, unknown := acctEmail("known"), acctEmail("unkno")
	acctNewUser(t, g, known, acctPassword)
	c := g.Client(t)

	// limited sends twice within the limit, then compares the third answers;
	// the two addresses take turns.
	limited := func(what string, send func(email string) *testkit.Response) {
		t.Helper()
		for i := range 2 {
			for _, email := range []string{known, unknown} {
				if r := send(email); r.Status == http.StatusTooManyRequests || r.Status >= 500 {
					t.Fatalf("%s #%d for %s: got %d; want it within the limit", what, i+1, email, r.Status)
				}
			}
		}
		rk, ru := send(known), send(unknown)
		testkit.WantAPIError(t, what+" #3", rk, http.StatusTooManyRequests, "rate_limited")
		acctRetryAfter(t, what+" #3", rk)
		acctRetryAfter(t, what+" #3", ru)
		acctSameAnswer(t, what+" over the limit: known vs unknown address", rk, ru, "", "")
	}
	limited("API login", func(email string) *testkit.Response { return c.Login(email, acctWrongPW) })
	limited("API forgot", func(email string) *testkit.Response {
		return c.PostJSON("/api/v1/password/forgot", map[string]string{"email": email})
	})

	// The login budget of both addresses is spent: the form is limited too.
	pk := acctForm(t, c, "/login", "email", known, "password", acctPassword)
	acctWant(t, "POST /login over the limit", pk, http.StatusTooManyRequests)
	acctRetryAfter(t, "POST /login over the limit", pk)
	acctSameAnswer(t, "POST /login over the limit: known vs unknown address", pk, acctForm(t, c, "/login", "email", unknown, "password", acctPassword), known, unknown)
}

// TestAccountPreHijack is LK-1: someone who signs up with a victim's
// address and their own password never gets into the victim's account, nor
// plants a password on it.
func TestAccountPreHijack(t *testing.T) {
	t.Parallel()
	g, clock := acctStartClocked(t, nil)
	const attackerPW, victimPW = "the attacker's passphrase 1", "the victim's own passphrase 2"

	t.Run("victim signs up later", func(t *testing.T) {
		t.Parallel()
		victim := acctEmail("victim")
		attacker := g.Client(t)
		leaked := attacker.SignUp(g, victim, attackerPW).Token(t) // as if leaked from the victim's inbox
		clock.Advance(time.Minute)                                // past the mail quota's interval

		v := g.Client(t)
		own := v.SignUp(g, victim, victimPW).Token(t)
		if own == leaked {
			t.Fatal("the victim's signup mailed the attacker's token")
		}
		testkit.WantAPIError(t, "attacker login after the victim's signup", attacker.Login(victim, attackerPW), http.StatusUnauthorized, "invalid_credentials")
		testkit.WantAPIError(t, "attacker verifies with the replaced link", attacker.Verify(leaked, attackerPW), http.StatusBadRequest, "invalid_token")
		testkit.WantAPIError(t, "replaced link with the victim's password", attacker.Verify(leaked, victimPW), http.StatusBadRequest, "invalid_token")
		acctWant(t, "GET /verify with the replaced link", attacker.Get("/verify?token="+url.QueryEscape(leaked)), http.StatusBadRequest)
		r := acctForm(t, attacker, "/verify", "token", leaked, "password", attackerPW)
		acctWant(t, "POST /verify with the replaced link", r, http.StatusBadRequest)
		if attacker.Cookie(testkit.CookieName) != nil {
			t.Fatal("the attacker got a session cookie")
		}

		acctWant(t, "victim verifies", v.Verify(own, victimPW), http.StatusOK)
		testkit.WantAPIError(t, "attacker login after verification", attacker.Login(victim, attackerPW), http.StatusUnauthorized, "invalid_credentials")
		testkit.WantAPIError(t, "attacker's link after verification", attacker.Verify(leaked, attackerPW), http.StatusBadRequest, "invalid_token")
		acctWant(t, "victim login", g.Client(t).Login(victim, victimPW), http.StatusOK)
	})

	t.Run("victim clicks the attacker's link", func(t *testing.T) {
		t.Parallel()
		victim := acctEmail("victim")
		m := g.Client(t).SignUp(g, victim, attackerPW)
		v := g.Client(t)
		r := v.Get(m.Link(t))
		acctWant(t, "victim opens the link", r, http.StatusOK)
		acctWantText(t, "victim opens the link", r, "Enter the password you chose when you signed up")
		for _, pw := range []string{victimPW, "password1234567", ""} {
			r := acctForm(t, v, "/verify", "token", m.Token(t), "password", pw)
			acctWant(t, fmt.Sprintf("verify with %q", pw), r, http.StatusUnauthorized)
			acctWantText(t, "verify with another password", r, "not the password you chose")
			testkit.WantAPIError(t, "API verify with another password", v.Verify(m.Token(t), pw), http.StatusUnauthorized, "invalid_credentials")
		}
		if v.Cookie(testkit.CookieName) != nil {
			t.Fatal("a refused verification signed the victim in")
		}
		testkit.WantAPIError(t, "login with the victim's password", g.Client(t).Login(victim, victimPW), http.StatusUnauthorized, "invalid_credentials")
		// No account exists, so a reset mails nothing.
		acctWant(t, "forgot", v.PostJSON("/api/v1/password/forgot", map[string]string{"email": victim}), http.StatusAccepted)
		g.NoMoreMail(t, victim, 1)
	})

	t.Run("attacker signs up after the victim", func(t *testing.T) {
		t.Parallel()
		victim := acctEmail("victim")
		acctNewUser(t, g, victim, victimPW)
		clock.Advance(time.Minute) // past the mail quota's interval
		attacker := g.Client(t)
		signup := func(email string) *testkit.Response {
			return attacker.PostJSON("/api/v1/signup", map[string]string{"email": email, "password": attackerPW})
		}
		acctSameAnswer(t, "attacker's signup: fresh vs the victim's address", signup(acctEmail("fresh0")), signup(victim), "", "")
		acctCheckExistsMail(t, g, g.SMTP.WaitMail(t, victim, 2, acctMailWait), victim)
		testkit.WantAPIError(t, "attacker login", attacker.Login(victim, attackerPW), http.StatusUnauthorized, "invalid_credentials")
		acctWant(t, "victim login", g.Client(t).Login(victim, victimPW), http.StatusOK)
	})
}

// TestAccountRateLimitPerIP is AB-1 per client IP: every endpoint that
// checks a password or sends mail allows 3 a minute here, API and form
// counted together, then 429 with Retry-After.
func TestAccountRateLimitPerIP(t *testing.T) {
	t.Parallel()
	g := acctStart(t, map[string]string{"GATEHOUSE_RATE_LIMITS_PER_IP": "3"})
	fakeToken := strings.Repeat("A", 43)
	cases := []struct {
		name, api, page string
		body            func() map[string]string
	}{
		{"login", "/api/v1/login", "/login", func() map[string]string {
			return map[string]string{"email": acctEmail("ip"), "password": acctWrongPW}
		}},
		{"signup", "/api/v1/signup", "/signup", func() map[string]string {
			return map[string]string{"email": acctEmail("ip"), "password": acctPassword}
		}},
		{"forgot", "/api/v1/password/forgot", "/password/forgot", func() map[string]string {
			return map[string]string{"email": acctEmail("ip")}
		}},
		{"resend", "/api/v1/verify/resend", "/verify/resend", func() map[string]string {
			return map[string]string{"email": acctEmail("ip")}
		}},
		{"verify", "/api/v1/verify", "/verify", func() map[string]string {
			return map[string]string{"token": fakeToken, "password": acctPassword}
		}},
		{"reset", "/api/v1/password/reset", "/password/reset", func() map[string]string {
			return map[string]string{"token": fakeToken, "password": acctPassword}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := g.Client(t)
			for i := range 3 {
				if r := c.PostJSON(tc.api, tc.body()); r.Status == http.StatusTooManyRequests || r.Status >= 500 {
					t.Fatalf("request %d: got %d; want it within the limit\n%s", i+1, r.Status, r.Body)
				}
			}
			r := c.PostJSON(tc.api, tc.body())
			testkit.WantAPIError(t, "4th request from one IP", r, http.StatusTooManyRequests, "rate_limited")
			if ra := acctRetryAfter(t, "4th request", r); ra > 60 {
				t.Errorf("Retry-After %d; want at most 60 for a per-minute limit", ra)
			}
			var kv []string
			for k, v := range tc.body() {
				kv = append(kv, k, v)
			}
			p := acctForm(t, g.Client(t), tc.page, kv...)
			acctWant(t, "form over the limit", p, http.StatusTooManyRequests)
			acctRetryAfter(t, "form over the limit", p)
		})
	}
}

// TestAccountRateLimitPerAddress is AB-1 per address: the limit of one
// address does not touch another's.
func TestAccountRateLimitPerAddress(t *testing.T) {
	t.Parallel()
	g := acctStart(t, map[string]string{"GATEHOUSE_RATE_LIMITS_PER_ADDRESS": "2"})
	c := g.Client(t)
	cases := []struct {
		name, path string
		body       func(email string) map[string]string
		first      int
	}{
		{"login", "/api/v1/login", func(e string) map[string]string { return map[string]string{"email": e, "password": acctWrongPW} }, http.StatusUnauthorized},
		{"forgot", "/api/v1/password/forgot", func(e string) map[string]string { return map[string]string{"email": e} }, http.StatusAccepted},
		{"signup", "/api/v1/signup", func(e string) map[string]string {
			return map[string]string{"email": e, "password": acctPassword}
		}, http.StatusAccepted},
	}
	for _, tc := range cases {
		a, b := acctEmail("addr"), acctEmail("addr")
		for i := range 2 {
			acctWant(t, fmt.Sprintf("%s #%d for one address", tc.name, i+1), c.PostJSON(tc.path, tc.body(a)), tc.first)
		}
		r := c.PostJSON(tc.path, tc.body(a))
		testkit.WantAPIError(t, tc.name+" #3 for one address", r, http.StatusTooManyRequests, "rate_limited")
		acctRetryAfter(t, tc.name+" #3", r)
		acctWant(t, tc.name+" for another address", c.PostJSON(tc.path, tc.body(b)), tc.first)
	}
}

// TestAccountLockout is AB-1's lockout: after 3 failures even the right
// password waits, the wait doubles with each further failure, the answer is
// the same for an unknown address (EN-4), forgot-password is not blocked,
// and a reset ends the lockout.
func TestAccountLockout(t *testing.T) {
	t.Parallel()
	g, clock := acctStartClocked(t, map[string]string{"GATEHOUSE_RATE_LIMITS_LOCKOUT_AFTER": "3"})
	email, unknown := acctEmail("lock"), acctEmail("unkn")
	acctNewUser(t, g, email, acctPassword)

	// One after the other: both move the one clock.
	known := acctLockoutSequence(t, g, clock, email, acctPassword)
	other := acctLockoutSequence(t, g, clock, unknown, acctPassword)
	acctSameAnswer(t, "lockout: account vs unknown address", known, other, "", "")

	// The reset mailed during the lockout lifts it.
	c := g.Client(t)
	m := g.SMTP.WaitSubject(t, email, "reset", acctMailWait)
	const newPW = "a brand new passphrase 9"
	acctWant(t, "reset", c.PostJSON("/api/v1/password/reset", map[string]string{"token": m.Token(t), "password": newPW}), http.StatusNoContent)
	// Had the reset kept the failures, this one would be refused.
	testkit.WantAPIError(t, "wrong password after the reset", c.Login(email, acctWrongPW), http.StatusUnauthorized, "invalid_credentials")
	acctWant(t, "login after the reset", c.Login(email, newPW), http.StatusOK)
}

// acctLockoutSequence fails sign-ins for email (lockout_after 3) and checks
// lockouts of 1, 2 and 4 seconds, moving the gateway's clock through each;
// during the last one the right password and the form are refused while
// forgot-password is not. It returns the last API answer of the lockout.
// (The back-off's arithmetic is tested in accounts' TestLockoutBackoff.)
func acctLockoutSequence(t *testing.T, g *testkit.Gateway, clock *testkit.Clock, email, right string) *testkit.Response {
	t.Helper()
	c := g.Client(t)
	for i := range 3 {
		testkit.WantAPIError(t, fmt.Sprintf("wrong password #%d", i+1), c.Login(email, acctWrongPW), http.StatusUnauthorized, "invalid_credentials")
	}
	var locked *testkit.Response
	for _, want := range []int{1, 2, 4} {
		locked = c.Login(email, acctWrongPW)
		acctWant(t, fmt.Sprintf("wrong password during the %d s lockout", want), locked, http.StatusTooManyRequests)
		if ra := acctRetryAfter(t, "lockout", locked); ra != want {
			t.Errorf("Retry-After = %d; want %d", ra, want)
		}
		if want < 4 {
			clock.Advance(time.Duration(want) * time.Second)
			testkit.WantAPIError(t, fmt.Sprintf("wrong password after the %d s lockout", want), c.Login(email, acctWrongPW), http.StatusUnauthorized, "invalid_credentials")
		}
	}

	// During the 4 s lockout: the right password and the form are refused,
	// forgot-password is answered and mails.
	acctWant(t, "right password during the lockout", c.Login(email, right), http.StatusTooManyRequests)
	p := acctForm(t, g.Client(t), "/login", "email", email, "password", right)
	acctWant(t, "POST /login during the lockout", p, http.StatusTooManyRequests)
	acctRetryAfter(t, "POST /login during the lockout", p)
	f := acctForm(t, g.Client(t), "/password/forgot", "email", email)
	acctWant(t, "POST /password/forgot during the lockout", f, http.StatusOK)
	acctWant(t, "API forgot during the lockout", c.PostJSON("/api/v1/password/forgot", map[string]string{"email": email}), http.StatusAccepted)
	clock.Advance(4 * time.Second) // end the lockout for the next sequence
	return locked
}

// TestAccountMailQuota is AB-2: repeated requests within a minute send one
// mail per kind, answer unchanged, and the mailed link keeps working with
// its own password.
func TestAccountMailQuota(t *testing.T) {
	t.Parallel()
	g := acctStart(t, nil)
	c := g.Client(t)
	email := acctEmail("quota")
	const other = "a different passphrase 2"

	r1 := c.PostJSON("/api/v1/signup", map[string]string{"email": email, "password": acctPassword})
	acctWant(t, "first signup", r1, http.StatusAccepted)
	m := g.SMTP.WaitMail(t, email, 1, acctMailWait)
	acctSameAnswer(t, "signup: first vs second within a minute", r1, c.PostJSON("/api/v1/signup", map[string]string{"email": email, "password": other}), "", "")
	acctWant(t, "resend within a minute", c.PostJSON("/api/v1/verify/resend", map[string]string{"email": email}), http.StatusAccepted)
	acctWant(t, "form signup within a minute", acctForm(t, c, "/signup", "email", email, "password", other), http.StatusOK)

	user := acctEmail("quota")
	acctNewUser(t, g, user, acctPassword)
	for i := range 3 {
		acctWant(t, fmt.Sprintf("forgot #%d", i+1), c.PostJSON("/api/v1/password/forgot", map[string]string{"email": user}), http.StatusAccepted)
	}

	g.MailBarrier(t)
	if got := len(g.SMTP.Mails(email)); got != 1 {
		t.Errorf("signup mails after 2 signups, a resend and a form signup: %d; want 1", got)
	}
	if got := len(g.SMTP.Mails(user)); got != 2 {
		t.Errorf("mails to a user after 3 forgot requests: %d; want 2 (verification, one reset)", got)
	}
	testkit.WantAPIError(t, "verify with the suppressed signup's password", c.Verify(m.Token(t), other), http.StatusUnauthorized, "invalid_credentials")
	acctWant(t, "verify with the mailed signup's password", c.Verify(m.Token(t), acctPassword), http.StatusOK)
}

// TestAccountForwardedFor is AB-3: X-Forwarded-For names the client only
// when the peer is a trusted proxy.
func TestAccountForwardedFor(t *testing.T) {
	t.Parallel()

	t.Run("untrusted peer", func(t *testing.T) {
		t.Parallel()
		g := acctStart(t, map[string]string{"GATEHOUSE_RATE_LIMITS_PER_IP": "3"})
		email := acctEmail("xff")
		c := acctNewUser(t, g, email, acctPassword)
		acctWant(t, "login with X-Forwarded-For", acctLoginXFF(t, c, email, acctPassword, "203.0.113.9"), http.StatusOK)
		if ips := acctSessionIPs(t, c); !slices.Equal(ips, []string{"127.0.0.1"}) {
			t.Errorf("session ips = %v; want [127.0.0.1], the peer", ips)
		}
		for _, xff := range []string{"198.51.100.1", "198.51.100.2"} {
			acctWant(t, "login as "+xff, acctLoginXFF(t, g.Client(t), acctEmail("xff"), acctWrongPW, xff), http.StatusUnauthorized)
		}
		r := acctLoginXFF(t, g.Client(t), acctEmail("xff"), acctWrongPW, "198.51.100.3")
		testkit.WantAPIError(t, "4th login from one peer with a new X-Forwarded-For", r, http.StatusTooManyRequests, "rate_limited")
	})

	t.Run("trusted proxy", func(t *testing.T) {
		t.Parallel()
		g := acctStart(t, map[string]string{
			"GATEHOUSE_RATE_LIMITS_PER_IP":     "3",
			"GATEHOUSE_SERVER_TRUSTED_PROXIES": "127.0.0.1/32",
		})
		email := acctEmail("xff")
		c := acctNewUser(t, g, email, acctPassword)
		acctWant(t, "login via the proxy", acctLoginXFF(t, c, email, acctPassword, "203.0.113.9"), http.StatusOK)
		if ips := acctSessionIPs(t, c); !slices.Equal(ips, []string{"203.0.113.9"}) {
			t.Errorf("session ips = %v; want [203.0.113.9], the forwarded client", ips)
		}
		acctWantText(t, "GET /account", c.Get("/account"), "203.0.113.9")

		for i := range 3 {
			acctWant(t, fmt.Sprintf("login #%d as 198.51.100.1", i+1), acctLoginXFF(t, g.Client(t), acctEmail("xff"), acctWrongPW, "198.51.100.1"), http.StatusUnauthorized)
		}
		r := acctLoginXFF(t, g.Client(t), acctEmail("xff"), acctWrongPW, "198.51.100.1")
		testkit.WantAPIError(t, "4th login as 198.51.100.1", r, http.StatusTooManyRequests, "rate_limited")
		acctWant(t, "login as another client", acctLoginXFF(t, g.Client(t), acctEmail("xff"), acctWrongPW, "198.51.100.2"), http.StatusUnauthorized)
		r = acctLoginXFF(t, g.Client(t), acctEmail("xff"), acctWrongPW, "192.0.2.66, 198.51.100.1")
		testkit.WantAPIError(t, "limited client prepending a spoofed address", r, http.StatusTooManyRequests, "rate_limited")
	})
}

// TestAccountInvalidEmail is IN-2 for the address: control characters,
// over-long addresses, dotless domains and display names get 400 on every
// endpoint that takes an address, and no mail goes out.
func TestAccountInvalidEmail(t *testing.T) {
	t.Parallel()
	g := acctStart(t, nil)
	id := acctHex(4)
	long255 := strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 58) + ".com"
	if len(long255) != 255 {
		t.Fatalf("test data: %d bytes; want 255", len(long255))
	}
	bad := []struct{ name, email string }{
		{"CRLF header injection", "bob-" + id + "@example.com\r\nBcc: eve@evil.example"},
		{"LF", "bob\n-" + id + "@example.com"},
		{"CR", "bob-" + id + "@example.com\rX-Injected: 1"},
		{"NUL", "bob-" + id + "@exam\x00ple.com"},
		{"255 bytes", long255},
		{"over 1 KiB", strings.Repeat("a", 1100) + "@example.com"},
		{"dotless domain", "bob-" + id + "@localhost"},
		{"display name", "Bob <bob-" + id + "@example.com>"},
		{"quoted display name", `"Bob" <bob-` + id + `@example.com>`},
		{"two addresses", "bob-" + id + "@example.com, eve@evil.example"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := g.Client(t)
			for _, ep := range []struct {
				api, page string
				pw        bool
			}{
				{"/api/v1/signup", "/signup", true},
				{"/api/v1/login", "/login", true},
				{"/api/v1/password/forgot", "/password/forgot", false},
				{"/api/v1/verify/resend", "/verify/resend", false},
			} {
				body := map[string]string{"email": tc.email}
				kv := []string{"email", tc.email}
				if ep.pw {
					body["password"] = acctPassword
					kv = append(kv, "password", acctPassword)
				}
				testkit.WantAPIError(t, "POST "+ep.api, c.PostJSON(ep.api, body), http.StatusBadRequest, "invalid_email")
				r := acctForm(t, c, ep.page, kv...)
				acctWant(t, "POST "+ep.page, r, http.StatusBadRequest)
				acctWantText(t, "POST "+ep.page, r, "Enter a valid email address.")
			}
		})
	}
	t.Cleanup(func() {
		// After the subtests: nothing was mailed anywhere.
		g.NoMoreMail(t, "", 0)
	})
}

// TestAccountEmailNormalization: an address is trimmed and lower-cased, so
// any spelling of it signs in to one account; 254 bytes is still an address.
func TestAccountEmailNormalization(t *testing.T) {
	t.Parallel()
	g := acctStart(t, nil)
	id := acctHex(5)
	typed := "  Mixed.Case-" + strings.ToUpper(id) + "@Example.COM "
	norm := "mixed.case-" + id + "@example.com"

	c := g.Client(t)
	acctWant(t, "signup with a mixed-case address", c.PostJSON("/api/v1/signup", map[string]string{"email": typed, "password": acctPassword}), http.StatusAccepted)
	m := g.SMTP.WaitMail(t, norm, 1, acctMailWait)
	acctCheckVerifyMail(t, g, m, norm)
	r := c.Verify(m.Token(t), acctPassword)
	acctWant(t, "verify", r, http.StatusOK)
	if got := acctUser(t, "verify", r)["email"]; got != norm {
		t.Errorf("user email = %v; want %s", got, norm)
	}
	for _, spelling := range []string{norm, strings.ToUpper(norm), " " + norm + "\t"} {
		acctWant(t, fmt.Sprintf("login as %q", spelling), g.Client(t).Login(spelling, acctPassword), http.StatusOK)
	}
	r = acctForm(t, g.Client(t), "/login", "email", strings.ToUpper(norm), "password", acctPassword)
	testkit.WantRedirect(t, "POST /login with the upper-case address", r, http.StatusSeeOther, "/account")

	// Through the form, and at the 254-byte limit.
	local := acctHex(5) + strings.Repeat("a", 54)
	long254 := local + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 57) + ".com"
	if len(long254) != 254 {
		t.Fatalf("test data: %d bytes; want 254", len(long254))
	}
	p := acctForm(t, c, "/signup", "email", " "+strings.ToUpper(long254), "password", acctPassword)
	acctWant(t, "POST /signup with a 254-byte upper-case address", p, http.StatusOK)
	acctCheckVerifyMail(t, g, g.SMTP.WaitMail(t, long254, 1, acctMailWait), long254)
}
