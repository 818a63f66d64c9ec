package main

import (
	"html"
	"maps"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

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
