package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

// Issue 4's first journey in a real browser: Chromium opens a page of the
// example app behind nginx (examples/nginx/gatehouse.conf), is sent to
// Gatehouse's login page, signs in there — with a password or with the
// fake Google — and lands on exactly the page it asked for, which shows the
// user the app was told about.
//
// The journeys use app.gatehouse.localhost and auth.gatehouse.localhost
// with the session cookie on gatehouse.localhost: names under localhost
// are a secure context for browsers even over plain HTTP, so Chromium sends
// Sec-Fetch-Site as it does on a production HTTPS deployment. The browser's
// host resolver maps them, and example.test, to 127.0.0.1.

// proxyBrowserDomain is the browsers' cookie domain for the journeys.
const proxyBrowserDomain = "gatehouse.localhost"

// Selectors of the example app's page (examples/upstream).
const (
	selAppUser    = "#user"
	selAppEmail   = "#email"
	selAppAccount = "a#account"
	selGoogle     = `a.btn-provider[href^="/auth/google"]`
)

// proxyBrowser starts nginx in front of the example app at
// app.gatehouse.localhost and a browser for it; it returns the app's origin.
func proxyBrowser(tb testing.TB, google bool) (*proxyRig, *testkit.Browser, string) {
	tb.Helper()
	testkit.RequireChromium(tb)
	testkit.RequireNginx(tb)
	addr := testkit.FreeAddr(tb)
	host := "app." + proxyBrowserDomain
	origin := proxyOrigin(host, addr)
	r := proxyStart(tb, proxyBrowserDomain, []string{origin}, nil, google)
	r.nginx(tb, addr, host)
	return r, proxyStartBrowser(tb, r.public), origin
}

// proxyStartBrowser starts a browser of its own that resolves the test
// domains to 127.0.0.1.
func proxyStartBrowser(tb testing.TB, base string) *testkit.Browser {
	tb.Helper()
	return testkit.StartBrowser(tb, testkit.BrowserOptions{
		BaseURL: base,
		Flags:   map[string]any{"host-resolver-rules": "MAP *." + proxyBrowserDomain + " 127.0.0.1, MAP *." + proxyDomain + " 127.0.0.1"},
	})
}

// wantBrowserAt checks that the browser shows exactly rawURL.
func wantBrowserAt(tb testing.TB, b *testkit.Browser, status int, rawURL string) {
	tb.Helper()
	if got := b.URL().String(); got != rawURL || status != http.StatusOK {
		tb.Fatalf("browser at %s with status %d; want %s with 200", got, status, rawURL)
	}
}

// wantBrowserLogin checks that the browser landed on the gateway's login
// page with return_to set to exactly orig.
func wantBrowserLogin(tb testing.TB, r *proxyRig, b *testkit.Browser, status int, orig string) {
	tb.Helper()
	u := b.URL()
	if u.Scheme+"://"+u.Host != r.public || u.Path != "/login" || status != http.StatusOK {
		tb.Fatalf("browser at %s://%s%s with status %d; want the login page %s/login with 200", u.Scheme, u.Host, u.Path, status, r.public)
	}
	if got := u.Query().Get("return_to"); got != orig {
		tb.Fatalf("return_to on the login page = %q; want %q", got, orig)
	}
}

// TestBrowserProxyNginx: signed out, the protected page leads to the login
// page; signing in there leads back to exactly that page, which shows the
// user's id and email from the X-Auth-Request-* headers; the app's link
// to the account page and its Sign out button close the app again.
func TestBrowserProxyNginx(t *testing.T) {
	t.Parallel()
	r, b, origin := proxyBrowser(t, false)
	email, id := proxyUser(t, r)
	orig := origin + "/private/page?q=1&lang=en"

	wantBrowserLogin(t, r, b, b.Navigate(orig), orig)
	b.Fill(selEmail, email)
	b.Fill(selPassword, proxyPassword)
	wantBrowserAt(t, b, b.Submit(selLoginButton), orig)
	wantBrowserText(t, b, selAppEmail, email)
	if got := b.Text(selAppUser); got != id {
		t.Errorf("the app's X-Auth-Request-User = %q; want the user id %q", got, id)
	}
	if c := b.Cookie(testkit.CookieName); c == nil || strings.TrimPrefix(c.Domain, ".") != proxyBrowserDomain {
		t.Errorf("session cookie %v; want one for the domain %s", c, proxyBrowserDomain)
	}

	wantBrowserAt(t, b, b.Submit(selAppAccount), r.public+"/account")
	wantBrowserText(t, b, selAccountEmail, email)
	b.Submit(selSignOutButton)
	wantBrowserLogin(t, r, b, b.Navigate(orig), orig)
}

// TestBrowserProxyGoogle: the same with "Continue with Google" on the login
// page the proxy led to; the fake Google signs the person in at once and
// the browser ends on the original page as the new Google user.
func TestBrowserProxyGoogle(t *testing.T) {
	t.Parallel()
	r, b, origin := proxyBrowser(t, true)
	email := testkit.Email(t)
	r.google.SetUser(testkit.IdPUser{Subject: "browser-proxy-google-1", Email: email, EmailVerified: true, Name: "Gil Google"})
	orig := origin + "/dashboard?tab=reports"

	wantBrowserLogin(t, r, b, b.Navigate(orig), orig)
	wantBrowserAt(t, b, b.Submit(selGoogle), orig)
	wantBrowserText(t, b, selAppEmail, email)
	if got := b.Text(selAppUser); got == "" {
		t.Errorf("the app got no X-Auth-Request-User")
	}
	if n := len(r.google.Authorizations()); n != 1 {
		t.Errorf("authorization requests at the fake Google: %d; want 1", n)
	}
}

// TestBrowserProxyPlainHTTPSignIn: the login form of a gateway served over
// plain HTTP under a host name that is not loopback, as in a development
// setup behind a proxy at http://auth.example.test, must sign the user in.
// Such an origin is no secure context, so Chromium sends no Sec-Fetch-Site;
// the form POST then carries only Origin, which a Referrer-Policy of
// no-referrer would turn into "null" — and the cross-origin check would
// refuse it (CS-1 must not refuse our own forms).
func TestBrowserProxyPlainHTTPSignIn(t *testing.T) {
	t.Parallel()
	testkit.RequireChromium(t)
	addr := testkit.FreeAddr(t)
	public := proxyOrigin("auth."+proxyDomain, addr)
	g := testkit.Start(t, run, testkit.StartSMTP(t), testkit.Options{Addr: addr, Env: map[string]string{
		"GATEHOUSE_SERVER_PUBLIC_URL":     public,
		"GATEHOUSE_SESSION_COOKIE_DOMAIN": proxyDomain,
	}})
	r := &proxyRig{g: g, domain: proxyDomain, public: public}
	email, _ := proxyUser(t, r)
	b := proxyStartBrowser(t, public)

	wantBrowserPage(t, b, b.Navigate("/login"), http.StatusOK, "/login")
	b.Fill(selEmail, email)
	b.Fill(selPassword, proxyPassword)
	status := b.Submit(selLoginButton)
	if got := b.URL().Path; got != "/account" || status != http.StatusOK {
		t.Fatalf("sign-in on %s/login: got %s with status %d (%q); want /account with 200",
			public, got, status, b.Text("main"))
	}
	wantBrowserText(t, b, selAccountEmail, email)
}

// TestBrowserProxySPA: the example single-page app (examples/spa, served
// on http://localhost:<port>) drives the JSON API from another origin of
// the same site with fetch and credentials — sign up, verify with the
// mailed link, who am I, sign out, sign in — and its "Sign in with Google"
// link brings the browser back to the app signed in (issue 4, point 3).
func TestBrowserProxySPA(t *testing.T) {
	t.Parallel()
	testkit.RequireChromium(t)
	google := testkit.StartIdP(t, testkit.FakeGoogle)
	gwAddr, spaAddr := testkit.FreeAddr(t), testkit.FreeAddr(t)
	public, spa := proxyOrigin("localhost", gwAddr), proxyOrigin("localhost", spaAddr)
	env := map[string]string{
		"GATEHOUSE_SERVER_PUBLIC_URL":       public,
		"GATEHOUSE_CORS_ALLOWED_ORIGINS":    spa,
		"GATEHOUSE_REDIRECTS_ALLOWED_HOSTS": spa,
	}
	for k, v := range google.Env() {
		env[k] = v
	}
	g := testkit.Start(t, run, testkit.StartSMTP(t), testkit.Options{Addr: gwAddr, Env: env})
	testkit.GoRun(t, "example SPA", spaAddr, "./examples/spa", "-addr", spaAddr)
	b := testkit.StartBrowser(t, testkit.BrowserOptions{BaseURL: spa})
	page := spa + "/?gateway=" + url.QueryEscape(public)
	email := testkit.Email(t)

	wantBrowserAt(t, b, b.Navigate(page), page)
	waitBrowserText(t, b, "#status", "GET /api/v1/session → 401")
	waitBrowserText(t, b, "#who", "nobody")
	b.Fill("#email", email)
	b.Fill("#password", proxyPassword)
	b.Click("#signup")
	waitBrowserText(t, b, "#status", "POST /api/v1/signup → 202")
	b.Fill("#token", g.SMTP.WaitMail(t, email, 1, browserMailWait).Link(t))
	b.Click("#verify")
	waitBrowserText(t, b, "#who", email)
	b.Click("#logout")
	waitBrowserText(t, b, "#status", "POST /api/v1/logout → 204")
	b.Click("#session")
	waitBrowserText(t, b, "#status", "GET /api/v1/session → 401")
	b.Click("#login")
	waitBrowserText(t, b, "#status", "POST /api/v1/login → 200")
	waitBrowserText(t, b, "#who", email)
	b.Click("#logout")
	waitBrowserText(t, b, "#who", "nobody")

	gEmail := testkit.Email(t)
	google.SetUser(testkit.IdPUser{Subject: "browser-spa-google-1", Email: gEmail, EmailVerified: true})
	wantBrowserAt(t, b, b.Submit("#google"), page)
	waitBrowserText(t, b, "#who", gEmail)
}

// waitBrowserText waits until the text of the element matched by sel is
// want, as a script updates it.
func waitBrowserText(tb testing.TB, b *testkit.Browser, sel, want string) {
	tb.Helper()
	expr := fmt.Sprintf("(document.querySelector(%q) || {}).textContent || ''", sel)
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := testkit.BrowserEval[string](b, expr)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("text of %s = %q; want %q (output: %s)", sel, got, want, testkit.BrowserEval[string](b, "document.getElementById('out').textContent"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
