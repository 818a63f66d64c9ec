package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"html"
	"maps"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

// Gatehouse in front of real apps (issue 4; SECURITY.md RD-1, CS-1, CS-2,
// SE-3): Debian's nginx and Caddy, run by the tests on loopback with
// configurations generated from the files in examples/, in front of the
// example app of examples/upstream, which echoes the headers it receives.
// Host names under example.test reach loopback through the test client's
// dialer, so one cookie jar follows the redirects between
// app.example.test and auth.example.test as a browser does.

const (
	proxyPassword = "proxy pass phrase 7391"
	proxyDomain   = "example.test"
	proxyAppHost  = "app.example.test"
	// proxySecret is the session secret shared by instances of one deployment.
	proxySecret = "proxy-test-session-secret-0123456789abcdef"
	// proxyBrowserAccept is what Chromium sends when it navigates.
	proxyBrowserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
	proxyAPIAccept     = "application/json"
)

// proxyRig is a gateway reachable as http://auth.<domain>:<port> with the
// session cookie on domain, the example app, and optionally a fake Google.
type proxyRig struct {
	g        *testkit.Gateway
	domain   string // example.test; gatehouse.localhost in the browser tests
	public   string // the gateway's public URL
	upstream *testkit.Process
	google   *testkit.FakeIdP
}

// proxyOrigin is http://host:<port of addr>.
func proxyOrigin(host, addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return "http://" + host + ":" + port
}

// proxyStart starts the gateway as auth.<domain>, allowing return_to to
// the app origins, with env on top, and the example app.
func proxyStart(tb testing.TB, domain string, apps []string, env map[string]string, google bool) *proxyRig {
	tb.Helper()
	addr := testkit.FreeAddr(tb)
	r := &proxyRig{domain: domain, public: proxyOrigin("auth."+domain, addr)}
	all := map[string]string{
		"GATEHOUSE_SERVER_PUBLIC_URL":       r.public,
		"GATEHOUSE_SESSION_COOKIE_DOMAIN":   domain,
		"GATEHOUSE_REDIRECTS_ALLOWED_HOSTS": strings.Join(apps, ","),
	}
	if google {
		r.google = testkit.StartIdP(tb, testkit.FakeGoogle)
		maps.Copy(all, r.google.Env())
	}
	maps.Copy(all, env)
	r.g = testkit.Start(tb, run, testkit.StartSMTP(tb), testkit.Options{Addr: addr, Env: all})
	r.upstream = testkit.StartUpstream(tb, r.public)
	return r
}

// client is a browser-like client for the gateway's public URL that
// reaches every host under the rig's domain.
func (r *proxyRig) client(tb testing.TB) *testkit.Client {
	return testkit.NewLoopbackClient(tb, r.public, r.domain)
}

// nginx runs nginx on addr with one server block of
// examples/nginx/gatehouse.conf per host name.
func (r *proxyRig) nginx(tb testing.TB, addr string, hosts ...string) *testkit.Process {
	tb.Helper()
	var servers strings.Builder
	for _, h := range hosts {
		servers.WriteString(testkit.ExampleConfig(tb, "examples/nginx/gatehouse.conf",
			"listen 80;", "listen "+addr+";",
			"server_name app.example.com;", "server_name "+h+";",
			"http://127.0.0.1:8080", "http://"+r.g.Addr,
			"http://127.0.0.1:9000", "http://"+r.upstream.Addr,
		))
	}
	return testkit.StartNginx(tb, addr, servers.String())
}

// caddy runs Caddy on addr with examples/caddy/Caddyfile for host.
func (r *proxyRig) caddy(tb testing.TB, addr, host string) *testkit.Process {
	tb.Helper()
	conf := testkit.ExampleConfig(tb, "examples/caddy/Caddyfile",
		"app.example.com {", proxyOrigin(host, addr)+" {\n\tbind 127.0.0.1",
		"forward_auth 127.0.0.1:8080", "forward_auth "+r.g.Addr,
		"reverse_proxy 127.0.0.1:9000", "reverse_proxy "+r.upstream.Addr,
	)
	return testkit.StartCaddy(tb, addr, conf)
}

// proxyUser creates a verified account and returns its address and id.
// It signs up through the public URL: the session cookie's domain is
// example.test, which a client of 127.0.0.1 would refuse.
func proxyUser(tb testing.TB, r *proxyRig) (email, id string) {
	tb.Helper()
	c := r.client(tb)
	email = testkit.Email(tb)
	m := c.SignUp(r.g, email, proxyPassword)
	if resp := c.Verify(m.Token(tb), proxyPassword); resp.Status != http.StatusOK {
		tb.Fatalf("verify %s: status %d; want 200\n%s", email, resp.Status, resp.Body)
	}
	return email, proxySessionUser(tb, c)
}

// proxySessionUser returns the id of the user c is signed in as.
func proxySessionUser(tb testing.TB, c *testkit.Client) string {
	tb.Helper()
	r := c.Get("/api/v1/session")
	if r.Status != http.StatusOK {
		tb.Fatalf("GET /api/v1/session: status %d; want 200\n%s", r.Status, r.Body)
	}
	user, _ := r.JSON(tb)["user"].(map[string]any)
	id, _ := user["id"].(string)
	if id == "" {
		tb.Fatalf("GET /api/v1/session: no user id\n%s", r.Body)
	}
	return id
}

// proxyDo requests rawURL as a browser navigation (accept = HTML) or an
// API call, with extra headers.
func proxyDo(c *testkit.Client, method, rawURL, accept string, extra map[string]string) *testkit.Response {
	req := c.NewRequest(method, rawURL, nil)
	req.Header.Set("Accept", accept)
	for k, v := range extra {
		req.Header.Set(k, v)
	}
	if method == http.MethodPost {
		req.Body = http.NoBody
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return c.Do(req)
}

// wantLoginRedirect checks that resp sends the browser to the gateway's
// login page with return_to set to exactly orig.
func wantLoginRedirect(tb testing.TB, r *proxyRig, what string, resp *testkit.Response, orig string) string {
	tb.Helper()
	loc := resp.Header.Get("Location")
	if resp.Status != http.StatusFound {
		tb.Fatalf("%s: status %d (Location %q); want 302 to the login page\n%s", what, resp.Status, loc, proxyShort(resp.Body))
	}
	if want := r.public + "/login?return_to=" + url.QueryEscape(orig); loc != want {
		tb.Fatalf("%s: Location %q; want %q", what, loc, want)
	}
	return loc
}

// wantUnauthorized checks that resp is Gatehouse's 401, not a redirect and
// not the app.
func wantUnauthorized(tb testing.TB, what string, resp *testkit.Response) {
	tb.Helper()
	if resp.Status != http.StatusUnauthorized || resp.Header.Get("Location") != "" {
		tb.Fatalf("%s: status %d, Location %q; want 401 without a redirect\n%s", what, resp.Status, resp.Header.Get("Location"), proxyShort(resp.Body))
	}
	if code := resp.ErrorCode(); code != "unauthenticated" {
		tb.Errorf("%s: error code %q; want unauthenticated (Gatehouse's answer)\n%s", what, code, proxyShort(resp.Body))
	}
}

// proxyApp is what the example app says it received.
type proxyApp struct{ URI, Host, User, Email string }

var proxyAppField = regexp.MustCompile(`<(?:dd|code) id="(uri|host|user|email)">([^<]*)</`)

// wantApp checks that resp is the example app's page and returns what it
// shows.
func wantApp(tb testing.TB, what string, resp *testkit.Response) proxyApp {
	tb.Helper()
	if resp.Status != http.StatusOK || !strings.Contains(resp.Text(), "<h1>Example app behind Gatehouse</h1>") {
		tb.Fatalf("%s: status %d (Location %q); want 200 with the example app's page\n%s", what, resp.Status, resp.Header.Get("Location"), proxyShort(resp.Body))
	}
	var app proxyApp
	for _, m := range proxyAppField.FindAllStringSubmatch(resp.Text(), -1) {
		v := html.UnescapeString(m[2])
		switch m[1] {
		case "uri":
			app.URI = v
		case "host":
			app.Host = v
		case "user":
			app.User = v
		case "email":
			app.Email = v
		}
	}
	return app
}

// wantAppFor checks that the app showed path on host to user id/email.
func wantAppFor(tb testing.TB, what string, resp *testkit.Response, orig, id, email string) {
	tb.Helper()
	app := wantApp(tb, what, resp)
	u, _ := url.Parse(orig)
	// The proxies pass the host name on, with or without the port.
	if host, _, err := net.SplitHostPort(app.Host); err == nil {
		app.Host = host
	}
	if app.URI != u.RequestURI() || app.Host != u.Hostname() {
		tb.Errorf("%s: the app was asked for %s%s; want %s%s", what, app.Host, app.URI, u.Hostname(), u.RequestURI())
	}
	if app.User != id || app.Email != email {
		tb.Errorf("%s: the app got X-Auth-Request-User %q, X-Auth-Request-Email %q; want %q, %q", what, app.User, app.Email, id, email)
	}
}

// proxySignIn signs c in on the login page the proxy sent it to and checks
// that Gatehouse sends it back to exactly orig.
func proxySignIn(tb testing.TB, c *testkit.Client, login, email, orig string) {
	tb.Helper()
	page := c.Get(login)
	if page.Status != http.StatusOK || !strings.Contains(page.Text(), `name="return_to" value="`+html.EscapeString(orig)+`"`) {
		tb.Fatalf("login page %s: status %d; want 200 with return_to %q in the form\n%s", login, page.Status, orig, proxyShort(page.Body))
	}
	resp := c.PostForm("/login", url.Values{"email": {email}, "password": {proxyPassword}, "return_to": {orig}})
	if loc := resp.Header.Get("Location"); resp.Status != http.StatusSeeOther || loc != orig {
		tb.Fatalf("sign in with return_to %s: status %d, Location %q; want 303 to exactly the original URL", orig, resp.Status, loc)
	}
}

// proxySignOut signs c out with the header's form on the gateway.
func proxySignOut(tb testing.TB, c *testkit.Client) {
	tb.Helper()
	if resp := c.PostForm("/logout", nil); resp.Status != http.StatusSeeOther {
		tb.Fatalf("POST /logout: status %d; want 303", resp.Status)
	}
}

func proxyShort(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "…"
	}
	return string(b)
}

// proxyJourney is issue 4's first journey over HTTP through a proxy that
// serves the example app at origin: closed to a signed-out visitor (a
// browser goes to the login page and comes back to the exact page; an API
// client gets 401), open with the user's id and email once signed in,
// forged identity and forwarding headers ignored, closed again at once
// after sign-out (SE-3).
func proxyJourney(tb testing.TB, r *proxyRig, origin string) {
	orig := origin + "/some/page?x=1&y=2"
	email, id := proxyUser(tb, r)
	c := r.client(tb)
	forged := map[string]string{"X-Auth-Request-User": "forged-user-id", "X-Auth-Request-Email": "forged@evil.example"}

	login := wantLoginRedirect(tb, r, "signed-out browser", proxyDo(c, http.MethodGet, orig, proxyBrowserAccept, nil), orig)
	wantUnauthorized(tb, "signed-out API client", proxyDo(c, http.MethodGet, orig, proxyAPIAccept, nil))
	wantLoginRedirect(tb, r, "signed-out browser with forged identity headers", proxyDo(c, http.MethodGet, orig, proxyBrowserAccept, forged), orig)
	wantUnauthorized(tb, "signed-out API client with forged identity headers", proxyDo(c, http.MethodGet, orig, proxyAPIAccept, forged))
	wantLoginRedirect(tb, r, "signed-out browser with forged forwarding headers",
		proxyDo(c, http.MethodGet, orig, proxyBrowserAccept, map[string]string{
			"X-Forwarded-Host": "evil.example.test", "X-Forwarded-Uri": "/elsewhere", "X-Forwarded-Proto": "https",
		}), orig)
	wantLoginRedirect(tb, r, "signed-out form POST", proxyDo(c, http.MethodPost, orig, proxyBrowserAccept, nil), orig)

	proxySignIn(tb, c, login, email, orig)
	if ck := c.Cookie(testkit.CookieName); ck == nil {
		tb.Fatalf("no %s cookie for the gateway after signing in", testkit.CookieName)
	}
	wantAppFor(tb, "signed in", proxyDo(c, http.MethodGet, orig, proxyBrowserAccept, nil), orig, id, email)
	wantAppFor(tb, "signed-in API client", proxyDo(c, http.MethodGet, orig, proxyAPIAccept, nil), orig, id, email)
	resp := proxyDo(c, http.MethodGet, orig, proxyBrowserAccept, forged)
	wantAppFor(tb, "signed in, with forged identity headers", resp, orig, id, email)
	for _, v := range forged {
		if strings.Contains(resp.Text(), html.EscapeString(v)) {
			tb.Errorf("signed in, with forged identity headers: the app received %q", v)
		}
	}
	other := origin + "/another/page"
	wantAppFor(tb, "another page, signed in", proxyDo(c, http.MethodGet, other, proxyBrowserAccept, nil), other, id, email)

	proxySignOut(tb, c)
	wantLoginRedirect(tb, r, "browser right after sign-out", proxyDo(c, http.MethodGet, orig, proxyBrowserAccept, nil), orig)
	wantUnauthorized(tb, "API client right after sign-out", proxyDo(c, http.MethodGet, orig, proxyAPIAccept, nil))
}

var proxyGoogleButton = regexp.MustCompile(`href="(/auth/google[^"]*)"`)

// proxyGoogleJourney is the journey with "Continue with Google" on the
// login page the proxy sent the browser to.
func proxyGoogleJourney(tb testing.TB, r *proxyRig, origin string) {
	orig := origin + "/reports/2026?sort=desc&page=3"
	c := r.client(tb)
	login := wantLoginRedirect(tb, r, "signed-out browser", proxyDo(c, http.MethodGet, orig, proxyBrowserAccept, nil), orig)
	page := c.Get(login)
	m := proxyGoogleButton.FindStringSubmatch(page.Text())
	if page.Status != http.StatusOK || m == nil {
		tb.Fatalf("login page: status %d; want 200 with a Continue with Google link\n%s", page.Status, proxyShort(page.Body))
	}
	start := html.UnescapeString(m[1])
	if want := "/auth/google?return_to=" + url.QueryEscape(orig); start != want {
		tb.Fatalf("Continue with Google leads to %q; want %q", start, want)
	}
	email := testkit.Email(tb)
	r.google.SetUser(testkit.IdPUser{Subject: "proxy-" + strings.ReplaceAll(email, "@", "-"), Email: email, EmailVerified: true, Name: "Pat Proxy"})
	back := c.SignInWith(start)
	if loc := back.Header.Get("Location"); back.Status != http.StatusSeeOther || loc != orig {
		tb.Fatalf("Google callback: status %d, Location %q; want 303 to exactly %s\n%s", back.Status, loc, orig, proxyShort(back.Body))
	}
	id := proxySessionUser(tb, c)
	wantAppFor(tb, "signed in with Google", proxyDo(c, http.MethodGet, orig, proxyBrowserAccept, nil), orig, id, email)
	proxySignOut(tb, c)
	wantLoginRedirect(tb, r, "after sign-out", proxyDo(c, http.MethodGet, orig, proxyBrowserAccept, nil), orig)
}

// TestProxyNginx: the journey through nginx's auth_request with
// examples/nginx/gatehouse.conf, by password and with Google.
func TestProxyNginx(t *testing.T) {
	t.Parallel()
	testkit.RequireNginx(t)
	addr := testkit.FreeAddr(t)
	origin := proxyOrigin(proxyAppHost, addr)
	r := proxyStart(t, proxyDomain, []string{origin}, nil, true)
	r.nginx(t, addr, proxyAppHost)
	t.Run("password", func(t *testing.T) { proxyJourney(t, r, origin) })
	t.Run("google", func(t *testing.T) { proxyGoogleJourney(t, r, origin) })
}

// TestProxyCaddy: the journey through Caddy's forward_auth with
// examples/caddy/Caddyfile.
func TestProxyCaddy(t *testing.T) {
	t.Parallel()
	testkit.RequireCaddy(t)
	addr := testkit.FreeAddr(t)
	origin := proxyOrigin(proxyAppHost, addr)
	r := proxyStart(t, proxyDomain, []string{origin}, nil, false)
	r.caddy(t, addr, proxyAppHost)
	proxyJourney(t, r, origin)
}

// TestProxyCookieDomain: with session.cookie_domain, one sign-in through
// app1's redirect opens app2 too (two server blocks of one nginx), and one
// sign-out closes both.
func TestProxyCookieDomain(t *testing.T) {
	t.Parallel()
	testkit.RequireNginx(t)
	addr := testkit.FreeAddr(t)
	app1, app2 := proxyOrigin("app1."+proxyDomain, addr), proxyOrigin("app2."+proxyDomain, addr)
	r := proxyStart(t, proxyDomain, []string{app1, app2}, nil, false)
	r.nginx(t, addr, "app1."+proxyDomain, "app2."+proxyDomain)
	email, id := proxyUser(t, r)
	c := r.client(t)
	page1, page2 := app1+"/inbox?folder=1", app2+"/settings"

	login := wantLoginRedirect(t, r, "app1, signed out", proxyDo(c, http.MethodGet, page1, proxyBrowserAccept, nil), page1)
	wantLoginRedirect(t, r, "app2, signed out", proxyDo(c, http.MethodGet, page2, proxyBrowserAccept, nil), page2)
	proxySignIn(t, c, login, email, page1)
	ck := c.Cookie(testkit.CookieName)
	if ck == nil {
		t.Fatalf("no session cookie after signing in")
	}
	wantAppFor(t, "app1 after signing in", proxyDo(c, http.MethodGet, page1, proxyBrowserAccept, nil), page1, id, email)
	wantAppFor(t, "app2 without a second sign-in", proxyDo(c, http.MethodGet, page2, proxyBrowserAccept, nil), page2, id, email)

	proxySignOut(t, c)
	wantLoginRedirect(t, r, "app1 after sign-out", proxyDo(c, http.MethodGet, page1, proxyBrowserAccept, nil), page1)
	wantLoginRedirect(t, r, "app2 after sign-out", proxyDo(c, http.MethodGet, page2, proxyBrowserAccept, nil), page2)
	// The cookie as it was before sign-out opens neither app (SE-3).
	copied := r.client(t)
	copied.SetCookie(&http.Cookie{Name: ck.Name, Value: ck.Value, Domain: r.domain, Path: "/"})
	wantUnauthorized(t, "app2 with the copied cookie after sign-out", proxyDo(copied, http.MethodGet, page2, proxyAPIAccept, nil))
}

// TestProxyReturnToAllowList: the forwarded original URL and return_to
// only ever lead to allow-listed origins or relative paths (RD-1), through
// nginx and at /auth/check directly with crafted X-Forwarded-* headers.
func TestProxyReturnToAllowList(t *testing.T) {
	t.Parallel()
	testkit.RequireNginx(t)
	addr := testkit.FreeAddr(t)
	origin := proxyOrigin(proxyAppHost, addr)
	_, port, _ := net.SplitHostPort(addr)
	r := proxyStart(t, proxyDomain, []string{origin}, nil, false)
	r.nginx(t, addr, proxyAppHost)

	t.Run("through nginx", func(t *testing.T) {
		c := r.client(t)
		// nginx's only server block answers any Host; Gatehouse sends
		// nobody to a host that is not allow-listed.
		evil := proxyOrigin("evil."+proxyDomain, addr) + "/x"
		wantUnauthorized(t, "a browser at a host that is not allow-listed", proxyDo(c, http.MethodGet, evil, proxyBrowserAccept, nil))
		req := c.NewRequest(http.MethodGet, origin+"/x", nil)
		req.Host = "evil.example.test:" + port
		req.Header.Set("Accept", proxyBrowserAccept)
		wantUnauthorized(t, "Host header of a host that is not allow-listed", c.Do(req))
	})

	t.Run("auth check", func(t *testing.T) {
		c := r.g.Client(t)
		appHost := proxyAppHost + ":" + port
		for _, tc := range []struct {
			name, proto, host, uri string
			want                   string // the return_to of a 302; "" for 401
		}{
			{"allowed", "http", appHost, "/x?y=1&z=%2F", origin + "/x?y=1&z=%2F"},
			{"allowed, proto in capitals", "HTTP", appHost, "/x", origin + "/x"},
			{"no uri", "http", appHost, "", origin + "/"},
			{"no forwarded host", "http", "", "/x", ""},
			{"host not allowed", "http", "evil.example.test:" + port, "/x", ""},
			{"another port", "http", proxyAppHost + ":1", "/x", ""},
			{"default port", "http", proxyAppHost, "/x", ""},
			{"https instead of http", "https", appHost, "/x", ""},
			{"userinfo in host", "http", appHost + "@evil.example.test", "/x", ""},
			{"path in host", "http", "evil.example.test/" + appHost, "/x", ""},
			{"trailing dot", "http", proxyAppHost + ".:" + port, "/x", ""},
			{"double slash uri", "http", appHost, "//evil.example.test/x", origin + "//evil.example.test/x"},
			{"backslash uri", "http", appHost, `/\evil.example.test/x`, ""},
			{"leading backslash uri", "http", appHost, `\evil.example.test`, origin + "/"},
			{"absolute uri", "http", appHost, "http://evil.example.test/x", origin + "/"},
			{"tab in uri", "http", appHost, "/x\ty", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				req := c.NewRequest(http.MethodGet, "/auth/check", nil)
				req.Header.Set("Accept", proxyBrowserAccept)
				req.Header.Set("X-Forwarded-Proto", tc.proto)
				if tc.host != "" {
					req.Header.Set("X-Forwarded-Host", tc.host)
				}
				req.Header.Set("X-Forwarded-Uri", tc.uri)
				resp := c.Do(req)
				if tc.want == "" {
					wantUnauthorized(t, "crafted check", resp)
					return
				}
				wantLoginRedirect(t, r, "crafted check", resp, tc.want)
				proxyWantOrigin(t, tc.want, origin)
			})
		}
		// Control characters that Go's client will not send: the gateway
		// must not answer them with a redirect either.
		for _, uri := range []string{"/x\x01y", "/x\x7fy", "/x\x00y"} {
			status := proxyRawCheck(t, r.g.Addr, appHost, uri)
			if status == http.StatusFound {
				t.Errorf("X-Forwarded-Uri %q: status %d; want no redirect", uri, status)
			}
		}
		req := c.NewRequest(http.MethodGet, "/auth/check", nil)
		req.Header.Set("Accept", proxyAPIAccept)
		req.Header.Set("X-Forwarded-Host", appHost)
		req.Header.Set("X-Forwarded-Uri", "/x")
		wantUnauthorized(t, "allowed host, API client", c.Do(req))
	})

	t.Run("login return_to", func(t *testing.T) {
		email, _ := proxyUser(t, r)
		c := r.client(t)
		for _, tc := range []struct{ returnTo, want string }{
			{origin + "/x?y=1", origin + "/x?y=1"},
			{"/account/../relative", "/relative"},
			{"/%2F%2Fevil.example.test/", "/%2F%2Fevil.example.test/"},
			{"http://evil.example.test/", "/account"},
			{"//evil.example.test/", "/account"},
			{`/\evil.example.test/`, "/account"},
			{"https://" + proxyAppHost + ":" + port + "/", "/account"},
			{origin + "@evil.example.test/", "/account"},
			{"http://" + proxyAppHost + "/", "/account"},
			{"/x\ty", "/account"},
			{"javascript:alert(1)", "/account"},
		} {
			resp := c.PostForm("/login", url.Values{"email": {email}, "password": {proxyPassword}, "return_to": {tc.returnTo}})
			if loc := resp.Header.Get("Location"); resp.Status != http.StatusSeeOther || loc != tc.want {
				t.Errorf("sign in with return_to %q: status %d, Location %q; want 303 to %q", tc.returnTo, resp.Status, loc, tc.want)
			}
		}
	})

	t.Run("redirect off", func(t *testing.T) {
		g := start(t, map[string]string{
			"GATEHOUSE_FORWARD_AUTH_REDIRECT":   "false",
			"GATEHOUSE_REDIRECTS_ALLOWED_HOSTS": origin,
		})
		c := g.Client(t)
		req := c.NewRequest(http.MethodGet, "/auth/check", nil)
		req.Header.Set("Accept", proxyBrowserAccept)
		req.Header.Set("X-Forwarded-Host", proxyAppHost+":"+port)
		req.Header.Set("X-Forwarded-Uri", "/x")
		wantUnauthorized(t, "browser with forward_auth.redirect off", c.Do(req))
	})
}

// proxyWantOrigin checks that the absolute URL u is on origin exactly.
func proxyWantOrigin(tb testing.TB, u, origin string) {
	tb.Helper()
	p, err := url.Parse(u)
	if err != nil || p.Scheme+"://"+p.Host != origin || p.User != nil {
		tb.Errorf("return_to %q leaves %s", u, origin)
	}
}

// proxyRawCheck sends GET /auth/check with a raw X-Forwarded-Uri value
// over a plain connection and returns the status.
func proxyRawCheck(tb testing.TB, addr, host, uri string) int {
	tb.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /auth/check HTTP/1.1\r\nHost: %s\r\nAccept: text/html\r\nX-Forwarded-Host: %s\r\nX-Forwarded-Uri: %s\r\nConnection: close\r\n\r\n", addr, host, uri)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		tb.Fatalf("raw check with X-Forwarded-Uri %q: %v", uri, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestProxySignOutAcrossInstances: three instances on one database; a
// sign-out on g1 closes /auth/check on g1 at once, on an instance without
// a session cache (cache_ttl 0s) at once, and on one with cache_ttl 1s
// within that bound plus slack (issue 4, point 5; SE-3, RL-6).
func TestProxySignOutAcrossInstances(t *testing.T) {
	t.Parallel()
	db := testkit.StartDB(t)
	smtp := testkit.StartSMTP(t)
	env := func(ttl string) map[string]string {
		return map[string]string{"GATEHOUSE_SESSION_SECRET": proxySecret, "GATEHOUSE_SESSION_CACHE_TTL": ttl}
	}
	g1 := testkit.Start(t, run, smtp, testkit.Options{MongoURI: db.URI, Env: env("1s")})
	g2 := testkit.Start(t, run, smtp, testkit.Options{MongoURI: db.URI, Database: g1.Database, Env: env("1s")})
	g3 := testkit.Start(t, run, smtp, testkit.Options{MongoURI: db.URI, Database: g1.Database, Env: env("0s")})
	c, email := testkit.NewUser(t, g1, proxyPassword)
	ck := c.Cookie(testkit.CookieName)
	if ck == nil {
		t.Fatal("no session cookie after verification")
	}
	// The browser's cookie as a proxy forwards it, to any instance.
	copied := testkit.NewClient(t, g1.URL)
	check := func(g *testkit.Gateway) *testkit.Response {
		req := copied.NewRequest(http.MethodGet, g.URL+"/auth/check", nil)
		req.Header.Set("Accept", proxyAPIAccept)
		req.Header.Set("Cookie", ck.Name+"="+ck.Value)
		return copied.Do(req)
	}
	for i, g := range []*testkit.Gateway{g1, g2, g3} {
		resp := check(g)
		if resp.Status != http.StatusOK || resp.Header.Get("X-Auth-Request-Email") != email {
			t.Fatalf("g%d before sign-out: status %d, X-Auth-Request-Email %q; want 200, %s", i+1, resp.Status, resp.Header.Get("X-Auth-Request-Email"), email)
		}
	}

	proxySignOut(t, c)
	signedOut := time.Now()
	wantUnauthorized(t, "g1, right after its own sign-out", check(g1))
	wantUnauthorized(t, "g3 (cache_ttl 0s), right after the sign-out on g1", check(g3))

	const ttl, slack = time.Second, 2 * time.Second
	for {
		resp := check(g2)
		if resp.Status == http.StatusUnauthorized {
			t.Logf("g2 (cache_ttl 1s) refused the session %s after the sign-out on g1", time.Since(signedOut).Round(time.Millisecond))
			break
		}
		if resp.Status != http.StatusOK {
			t.Fatalf("g2 after the sign-out on g1: status %d; want 200 (cached) or 401", resp.Status)
		}
		if time.Since(signedOut) > ttl+slack {
			t.Fatalf("g2 (cache_ttl 1s) still accepts the session %s after the sign-out on g1; want 401 within %s", time.Since(signedOut).Round(time.Millisecond), ttl+slack)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for range 3 {
		wantUnauthorized(t, "g2, once refused", check(g2))
	}
}

// TestProxySPA: a single-page app on http://localhost:5173 calling the
// gateway on http://localhost:<port> with credentials, as
// examples/spa/index.html does: every call works from the allowed origin
// with CORS headers for credentials; from http://localhost:5174 (the same
// site, another origin) state changes are refused and nothing is readable
// (CS-1, CS-2).
func TestProxySPA(t *testing.T) {
	t.Parallel()
	const spa, other = "http://localhost:5173", "http://localhost:5174"
	addr := testkit.FreeAddr(t)
	public := proxyOrigin("localhost", addr)
	g := testkit.Start(t, run, testkit.StartSMTP(t), testkit.Options{Addr: addr, Env: map[string]string{
		"GATEHOUSE_SERVER_PUBLIC_URL":       public,
		"GATEHOUSE_CORS_ALLOWED_ORIGINS":    spa,
		"GATEHOUSE_REDIRECTS_ALLOWED_HOSTS": spa,
	}})
	c := testkit.NewLoopbackClient(t, public)
	email := testkit.Email(t)

	// fetch is what the SPA's fetch(gatehouse + path, {credentials:
	// "include"}) sends from origin.
	fetch := func(origin, method, path string, body any) *testkit.Response {
		t.Helper()
		var payload string
		if body != nil {
			payload = proxyJSON(t, body)
		}
		req := c.NewRequest(method, path, strings.NewReader(payload))
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		req.Header.Set("Origin", origin)
		req.Header.Set("Sec-Fetch-Site", "same-site")
		req.Header.Set("Sec-Fetch-Mode", "cors")
		req.Header.Set("Accept", "*/*")
		return c.Do(req)
	}
	wantCORS := func(what string, resp *testkit.Response, status int, origin string) {
		t.Helper()
		if resp.Status != status {
			t.Fatalf("%s: status %d; want %d\n%s", what, resp.Status, status, proxyShort(resp.Body))
		}
		acao, acac := resp.Header.Get("Access-Control-Allow-Origin"), resp.Header.Get("Access-Control-Allow-Credentials")
		if origin == "" && (acao != "" || acac != "") {
			t.Errorf("%s: Access-Control-Allow-Origin %q, -Credentials %q; want none", what, acao, acac)
		}
		if origin != "" && (acao != origin || acac != "true") {
			t.Errorf("%s: Access-Control-Allow-Origin %q, -Credentials %q; want %q, true", what, acao, acac, origin)
		}
	}

	t.Run("allowed origin", func(t *testing.T) {
		pre := c.NewRequest(http.MethodOptions, "/api/v1/login", nil)
		pre.Header.Set("Origin", spa)
		pre.Header.Set("Access-Control-Request-Method", "POST")
		pre.Header.Set("Access-Control-Request-Headers", "content-type")
		resp := c.Do(pre)
		wantCORS("preflight", resp, http.StatusNoContent, spa)
		if h := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers")); !strings.Contains(h, "content-type") {
			t.Errorf("preflight: Access-Control-Allow-Headers %q; want Content-Type allowed", h)
		}

		wantCORS("signup", fetch(spa, http.MethodPost, "/api/v1/signup", map[string]string{"email": email, "password": proxyPassword}), http.StatusAccepted, spa)
		m := g.SMTP.WaitMail(t, email, 1, 15*time.Second)
		resp = fetch(spa, http.MethodPost, "/api/v1/verify", map[string]string{"token": m.Token(t), "password": proxyPassword})
		wantCORS("verify", resp, http.StatusOK, spa)
		if c.Cookie(testkit.CookieName) == nil {
			t.Fatal("verify: no session cookie")
		}
		resp = fetch(spa, http.MethodGet, "/api/v1/session", nil)
		wantCORS("session", resp, http.StatusOK, spa)
		if got := resp.JSON(t)["user"].(map[string]any)["email"]; got != email {
			t.Errorf("session: user email %v; want %s", got, email)
		}
		wantCORS("logout", fetch(spa, http.MethodPost, "/api/v1/logout", nil), http.StatusNoContent, spa)
		wantCORS("session after logout", fetch(spa, http.MethodGet, "/api/v1/session", nil), http.StatusUnauthorized, spa)
		wantCORS("login", fetch(spa, http.MethodPost, "/api/v1/login", map[string]string{"email": email, "password": proxyPassword}), http.StatusOK, spa)
		wantCORS("session after login", fetch(spa, http.MethodGet, "/api/v1/session", nil), http.StatusOK, spa)
		// "Sign in with Google" is a link with return_to to the SPA.
		login := c.Get("/login?return_to=" + url.QueryEscape(spa+"/"))
		if login.Status != http.StatusSeeOther || login.Header.Get("Location") != spa+"/" {
			t.Errorf("signed-in GET /login?return_to=%s/: status %d, Location %q; want 303 back to the SPA", spa, login.Status, login.Header.Get("Location"))
		}
	})

	t.Run("other origin", func(t *testing.T) {
		// Signed in from the allowed origin above; another origin of the
		// same site can neither read nor change anything.
		if r := fetch(spa, http.MethodGet, "/api/v1/session", nil); r.Status != http.StatusOK {
			t.Fatalf("session from the SPA: status %d; want 200 (signed in by the previous subtest)", r.Status)
		}
		for _, origin := range []string{other, "null"} {
			pre := c.NewRequest(http.MethodOptions, "/api/v1/logout", nil)
			pre.Header.Set("Origin", origin)
			pre.Header.Set("Access-Control-Request-Method", "POST")
			wantCORS(origin+": preflight", c.Do(pre), http.StatusForbidden, "")
			wantCORS(origin+": session", fetch(origin, http.MethodGet, "/api/v1/session", nil), http.StatusOK, "")
			resp := fetch(origin, http.MethodPost, "/api/v1/login", map[string]string{"email": email, "password": proxyPassword})
			wantCORS(origin+": login", resp, http.StatusForbidden, "")
			if len(resp.Header.Values("Set-Cookie")) != 0 {
				t.Errorf("%s: refused login set a cookie", origin)
			}
			wantCORS(origin+": signup", fetch(origin, http.MethodPost, "/api/v1/signup", map[string]string{"email": "other-" + email, "password": proxyPassword}), http.StatusForbidden, "")
			wantCORS(origin+": logout", fetch(origin, http.MethodPost, "/api/v1/logout", nil), http.StatusForbidden, "")
			if r := fetch(spa, http.MethodGet, "/api/v1/session", nil); r.Status != http.StatusOK {
				t.Errorf("%s: the session ended after a refused logout: status %d; want 200", origin, r.Status)
			}
		}
		g.NoMoreMail(t, "other-"+email, 0)
	})
}

// proxyJSON encodes v for a request body.
func proxyJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}
