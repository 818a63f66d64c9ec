package main

// Black-box tests of the security headers (HD-1).

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

// webCheckHeaders checks the headers every answer carries. noStore asks for
// Cache-Control: no-store; tokenPage for Referrer-Policy: no-referrer.
func webCheckHeaders(t *testing.T, r *testkit.Response, noStore, tokenPage bool) {
	t.Helper()
	directives := map[string]bool{}
	for _, csp := range r.Header.Values("Content-Security-Policy") {
		for _, d := range strings.Split(csp, ";") {
			directives[strings.ToLower(strings.Join(strings.Fields(d), " "))] = true
		}
	}
	for _, want := range []string{"frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'"} {
		if !directives[want] {
			t.Errorf("status %d: Content-Security-Policy %q lacks %s", r.Status, r.Header.Values("Content-Security-Policy"), want)
		}
	}
	if got := r.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("status %d: X-Content-Type-Options = %q; want nosniff", r.Status, got)
	}
	rp := r.Header.Get("Referrer-Policy")
	switch {
	case tokenPage && rp != "no-referrer":
		t.Errorf("token page: Referrer-Policy = %q; want no-referrer", rp)
	case !map[string]bool{"no-referrer": true, "same-origin": true, "strict-origin": true, "strict-origin-when-cross-origin": true}[rp]:
		t.Errorf("status %d: Referrer-Policy = %q; want a policy that keeps paths from other sites", r.Status, rp)
	}
	if noStore && !strings.Contains(r.Header.Get("Cache-Control"), "no-store") {
		t.Errorf("status %d: Cache-Control = %q; want no-store", r.Status, r.Header.Get("Cache-Control"))
	}
}

func TestWebSecurityHeaders(t *testing.T) {
	t.Parallel()
	// Few password and mail requests per IP, so that a 429 is easy to get.
	g := start(t, webEnv(map[string]string{"GATEHOUSE_RATE_LIMITS_PER_IP": "3"}))
	user, _ := testkit.NewUser(t, g, webPassword)
	anon := g.Client(t)
	big := []byte(`{"email":"` + strings.Repeat("a", 70000) + `","password":"x"}`)

	probes := []struct {
		name      string
		do        func() *testkit.Response
		status    int
		static    bool
		tokenPage bool
	}{
		{"page /login", func() *testkit.Response { return anon.Get("/login") }, 200, false, false},
		{"page /signup", func() *testkit.Response { return anon.Get("/signup") }, 200, false, false},
		{"page /password/forgot", func() *testkit.Response { return anon.Get("/password/forgot") }, 200, false, false},
		{"token page /verify", func() *testkit.Response { return anon.Get("/verify?token=" + strings.Repeat("A", 43)) }, 400, false, true},
		{"token page /password/reset", func() *testkit.Response { return anon.Get("/password/reset?token=" + strings.Repeat("A", 43)) }, 400, false, true},
		{"page /account signed in", func() *testkit.Response { return user.Get("/account") }, 200, false, false},
		{"redirect /account signed out", func() *testkit.Response { return anon.Get("/account") }, 303, false, false},
		{"redirect /", func() *testkit.Response { return anon.Get("/") }, 303, false, false},
		{"API 200 session", func() *testkit.Response { return user.Get("/api/v1/session") }, 200, false, false},
		{"API 200 sessions", func() *testkit.Response { return user.Get("/api/v1/sessions") }, 200, false, false},
		{"API 202 forgot", func() *testkit.Response {
			return anon.PostJSON("/api/v1/password/forgot", map[string]string{"email": testkit.Email(t)})
		}, 202, false, false},
		{"API 401", func() *testkit.Response { return anon.Get("/api/v1/session") }, 401, false, false},
		{"API 400", func() *testkit.Response {
			return webJSON(t, anon, "POST", "/api/v1/login", `{"email":1}`, webSameOrigin)
		}, 400, false, false},
		{"API 404 unknown path", func() *testkit.Response { return anon.Get("/api/v1/nope") }, 404, false, false},
		{"API 404 unknown session", func() *testkit.Response {
			return webSend(t, user, "DELETE", "/api/v1/sessions/"+strings.Repeat("A", 22), "", nil, webSameOrigin)
		}, 404, false, false},
		{"page 404", func() *testkit.Response { return anon.Get("/nope") }, 404, false, false},
		{"API 405", func() *testkit.Response { return webJSON(t, anon, "PUT", "/api/v1/login", `{}`, webSameOrigin) }, 405, false, false},
		{"page 405", func() *testkit.Response { return webSend(t, anon, "DELETE", "/login", "", nil, webSameOrigin) }, 405, false, false},
		{"API 413", func() *testkit.Response {
			return webSend(t, anon, "POST", "/api/v1/login", "application/json", big, webSameOrigin)
		}, 413, false, false},
		{"API 415", func() *testkit.Response {
			return webSend(t, anon, "POST", "/api/v1/login", "text/plain", []byte(`{}`), webSameOrigin)
		}, 415, false, false},
		{"API 403 cross-origin", func() *testkit.Response {
			return webJSON(t, anon, "POST", "/api/v1/login", `{}`, webForeign[0].header)
		}, 403, false, false},
		{"page 403 cross-origin", func() *testkit.Response {
			return webForm(t, anon, "/login", url.Values{"email": {"a@b.co"}}, webForeign[0].header)
		}, 403, false, false},
		{"CORS preflight", func() *testkit.Response {
			return webSend(t, anon, "OPTIONS", "/api/v1/login", "", nil, map[string]string{"Origin": webSPAOrigin, "Access-Control-Request-Method": "POST"})
		}, 204, false, false},
		{"forward auth 401", func() *testkit.Response { return anon.Get("/auth/check") }, 401, false, false},
		{"forward auth 200", func() *testkit.Response { return user.Get("/auth/check") }, 200, false, false},
		{"forward auth 302", func() *testkit.Response {
			return webSend(t, anon, "GET", "/auth/check", "", nil, map[string]string{
				"Accept": "text/html", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "app.example:8081", "X-Forwarded-Uri": "/x"})
		}, 302, false, false},
		{"static CSS", func() *testkit.Response { return anon.Get("/static/style.css") }, 200, true, false},
		{"static 404", func() *testkit.Response { return anon.Get("/static/nope.css") }, 404, true, false},
		{"healthz", func() *testkit.Response { return anon.Get("/healthz") }, 200, false, false},
		{"readyz", func() *testkit.Response { return anon.Get("/readyz") }, 200, false, false},
		{"metrics 404 on the public listener", func() *testkit.Response { return anon.Get("/metrics") }, 404, false, false},
		{"metrics on the ops listener", func() *testkit.Response { return testkit.NewClient(t, g.OpsURL).Get("/metrics") }, 200, false, false},
		{"logout 303", func() *testkit.Response { return g.Client(t).PostForm("/logout", nil) }, 303, false, false},
	}
	for _, p := range probes {
		t.Run(p.name, func(t *testing.T) {
			r := p.do()
			if r.Status != p.status {
				t.Fatalf("status %d; want %d\n%s", r.Status, p.status, r.Body)
			}
			webCheckHeaders(t, r, !p.static, p.tokenPage)
			if got := r.Header.Get("Strict-Transport-Security"); got != "" {
				t.Errorf("plain-HTTP gateway sends Strict-Transport-Security %q; want none", got)
			}
		})
	}
	t.Run("API 429", func(t *testing.T) {
		var r *testkit.Response
		for range 10 {
			r = anon.PostJSON("/api/v1/password/forgot", map[string]string{"email": testkit.Email(t)})
			if r.Status == http.StatusTooManyRequests {
				break
			}
		}
		if r.Status != http.StatusTooManyRequests {
			t.Fatalf("10 forgot requests with per_ip 3: last status %d; want 429", r.Status)
		}
		webCheckHeaders(t, r, true, false)
	})
	t.Run("page 429", func(t *testing.T) {
		var r *testkit.Response
		for range 10 {
			r = anon.PostForm("/password/forgot", url.Values{"email": {testkit.Email(t)}})
			if r.Status == http.StatusTooManyRequests {
				break
			}
		}
		if r.Status != http.StatusTooManyRequests {
			t.Fatalf("10 forgot forms with per_ip 3: last status %d; want 429", r.Status)
		}
		webCheckHeaders(t, r, true, false)
	})
}

// TestWebHSTS: HSTS on every answer when the public URL is https (TLS ends
// at a proxy in front of the gateway), never on a plain-HTTP gateway, and
// not because a client claims X-Forwarded-Proto: https.
func TestWebHSTS(t *testing.T) {
	t.Parallel()
	addr := testkit.FreeAddr(t)
	https := testkit.Start(t, run, testkit.StartSMTP(t), testkit.Options{
		Addr: addr,
		Env:  webEnv(map[string]string{"GATEHOUSE_SERVER_PUBLIC_URL": "https://" + addr}),
	})
	plain := start(t, webEnv(nil))

	probes := []struct {
		name   string
		method string
		path   string
		body   string
		status int
	}{
		{"page", "GET", "/login", "", 200},
		{"API 401", "GET", "/api/v1/session", "", 401},
		{"API 400", "POST", "/api/v1/login", `[]`, 400},
		{"404", "GET", "/nope", "", 404},
		{"405", "DELETE", "/login", "", 405},
		{"forward auth", "GET", "/auth/check", "", 401},
		{"static", "GET", "/static/style.css", "", 200},
		{"healthz", "GET", "/healthz", "", 200},
	}
	for _, p := range probes {
		t.Run("https/"+p.name, func(t *testing.T) {
			var body []byte
			if p.body != "" {
				body = []byte(p.body)
			}
			r := webSend(t, https.Client(t), p.method, p.path, "application/json", body, webSameOrigin)
			if r.Status != p.status {
				t.Fatalf("status %d; want %d", r.Status, p.status)
			}
			hsts := r.Header.Get("Strict-Transport-Security")
			age := -1
			for _, part := range strings.Split(hsts, ";") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(strings.ToLower(part)), "max-age="); ok {
					age, _ = strconv.Atoi(v)
				}
			}
			if age < 365*24*3600 {
				t.Errorf("Strict-Transport-Security = %q; want max-age of at least a year", hsts)
			}
		})
		t.Run("plain/"+p.name, func(t *testing.T) {
			var body []byte
			if p.body != "" {
				body = []byte(p.body)
			}
			r := webSend(t, plain.Client(t), p.method, p.path, "application/json", body,
				map[string]string{"Sec-Fetch-Site": "same-origin", "X-Forwarded-Proto": "https"})
			if r.Status != p.status {
				t.Fatalf("status %d; want %d", r.Status, p.status)
			}
			if got := r.Header.Get("Strict-Transport-Security"); got != "" {
				t.Errorf("plain gateway, untrusted X-Forwarded-Proto: https: Strict-Transport-Security = %q; want none", got)
			}
		})
	}
}
