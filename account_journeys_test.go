package main

// Black-box account journeys: signup, verification, sign-in, return_to.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

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
