package main

// Forward auth behind nginx and Caddy: return_to, sign-out across instances, SPAs, cookie domains.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

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
