package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

// Black-box tests of the HTTP security properties of SECURITY.md: headers
// (HD-1), cross-origin requests and CORS (CS-1, CS-2), return_to (RD-1), bad
// input (IN-1..3) and secrets in logs (IN-4).

// webPassword is the password of the users these tests create.
const webPassword = "correct horse battery staple 7"

const (
	webSPAOrigin  = "http://127.0.0.1:5173" // the configured single-page app
	webAppOrigin  = "http://app.example:8081"
	webEvilOrigin = "https://evil.example"
)

// webSameOrigin is what a browser sends with a form or fetch from our pages.
var webSameOrigin = map[string]string{"Sec-Fetch-Site": "same-origin"}

// webForeign are the ways a request from another origin looks: a modern
// browser's Fetch metadata, an old browser's Origin alone, a sibling origin
// on the same site, and the opaque origin of sandboxed or data: documents.
var webForeign = []struct {
	name   string
	header map[string]string
}{
	{"cross-site", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": webEvilOrigin}},
	{"origin only", map[string]string{"Origin": webEvilOrigin}},
	{"same-site other port", map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "http://127.0.0.1:1"}},
	{"null origin", map[string]string{"Origin": "null"}},
}

// webEnv configures the gateways of these tests: one SPA origin, one
// return_to host, a 1 s header timeout, and a mail quota loose enough that
// a second mail to one address a second later is sent.
func webEnv(extra map[string]string) map[string]string {
	env := map[string]string{
		"GATEHOUSE_CORS_ALLOWED_ORIGINS":       webSPAOrigin,
		"GATEHOUSE_REDIRECTS_ALLOWED_HOSTS":    webAppOrigin,
		"GATEHOUSE_SERVER_READ_HEADER_TIMEOUT": "1s",
		"GATEHOUSE_RATE_LIMITS_MAIL_INTERVAL":  "1s",
		"GATEHOUSE_RATE_LIMITS_MAIL_PER_HOUR":  "100",
	}
	maps.Copy(env, extra)
	return env
}

// webSend sends a request with a raw body, a content type (none if "") and
// extra headers.
func webSend(tb testing.TB, c *testkit.Client, method, path, contentType string, body []byte, header map[string]string) *testkit.Response {
	tb.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req := c.NewRequest(method, path, r)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return c.Do(req)
}

// webJSON sends a raw JSON body.
func webJSON(tb testing.TB, c *testkit.Client, method, path, body string, header map[string]string) *testkit.Response {
	tb.Helper()
	return webSend(tb, c, method, path, "application/json", []byte(body), header)
}

// webForm submits a form with the given headers.
func webForm(tb testing.TB, c *testkit.Client, path string, vals url.Values, header map[string]string) *testkit.Response {
	tb.Helper()
	return webSend(tb, c, http.MethodPost, path, "application/x-www-form-urlencoded", []byte(vals.Encode()), header)
}

// webMustJSON encodes v.
func webMustJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatalf("encode: %v", err)
	}
	return string(b)
}

// webMailBarrier signs up a fresh address the ordinary way and waits for
// its mail. The outbox sends in the order mails were queued, so every mail
// the requests before it queued has been delivered once it returns.
func webMailBarrier(tb testing.TB, g *testkit.Gateway) {
	tb.Helper()
	g.Client(tb).SignUp(g, testkit.Email(tb), webPassword)
}

// webMailsTo counts the captured mails to an address.
func webMailsTo(g *testkit.Gateway, to string) int { return len(g.SMTP.Mails(to)) }

// webSignedIn reports whether the client's session is valid.
func webSignedIn(tb testing.TB, c *testkit.Client) bool {
	tb.Helper()
	r := c.Get("/api/v1/session")
	switch r.Status {
	case http.StatusOK:
		return true
	case http.StatusUnauthorized:
		return false
	}
	tb.Fatalf("GET /api/v1/session: %d %s; want 200 or 401", r.Status, r.Body)
	return false
}

// webSessionID returns the id of the client's current session.
func webSessionID(tb testing.TB, c *testkit.Client) string {
	tb.Helper()
	r := c.Get("/api/v1/session")
	if r.Status != http.StatusOK {
		tb.Fatalf("GET /api/v1/session: %d %s; want 200", r.Status, r.Body)
	}
	s, _ := r.JSON(tb)["session"].(map[string]any)
	id, _ := s["id"].(string)
	if id == "" {
		tb.Fatalf("session answer has no session.id: %s", r.Body)
	}
	return id
}

// webLoginWorks reports whether email and password sign in (fresh client).
func webLoginWorks(tb testing.TB, g *testkit.Gateway, email, password string) bool {
	tb.Helper()
	r := g.Client(tb).Login(email, password)
	switch r.Status {
	case http.StatusOK:
		return true
	case http.StatusUnauthorized:
		return false
	}
	tb.Fatalf("login %s: %d %s; want 200 or 401", email, r.Status, r.Body)
	return false
}

// ---------------------------------------------------------------------------
// HD-1: security headers on every kind of response.

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

// ---------------------------------------------------------------------------
// CS-1: state-changing requests from other origins are refused and change
// nothing.

func TestWebCrossOriginRefused(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock()
	g := testkit.Start(t, runAt(clock), testkit.StartSMTP(t), testkit.Options{Env: webEnv(nil)})

	// A pending signup, whose verification and resend must not be
	// triggered from another origin.
	pending := testkit.Email(t)
	pendingToken := g.Client(t).SignUp(g, pending, webPassword).Token(t)

	// A user with two sessions.
	owner, ownerEmail := testkit.NewUser(t, g, webPassword)
	second := g.Client(t)
	if r := second.Login(ownerEmail, webPassword); r.Status != http.StatusOK {
		t.Fatalf("second login: %d %s; want 200", r.Status, r.Body)
	}
	secondID := webSessionID(t, second)

	// A user with a live reset link.
	_, resetEmail := testkit.NewUser(t, g, webPassword)
	if r := g.Client(t).PostJSON("/api/v1/password/forgot", map[string]string{"email": resetEmail}); r.Status != http.StatusAccepted {
		t.Fatalf("forgot: %d %s; want 202", r.Status, r.Body)
	}
	resetToken := g.SMTP.WaitSubject(t, resetEmail, "reset", 15*time.Second).Token(t)
	ownerMails := webMailsTo(g, ownerEmail)

	// Past the mail interval, so a resend that got through would be sent
	// and seen.
	clock.Advance(time.Minute)

	const newPassword = "a brand new passphrase 9"
	var signupVictims []string
	attacks := []struct {
		name string
		// send makes the request with the foreign headers, with a client
		// of its choice.
		send func(t *testing.T, h map[string]string) *testkit.Response
		// after checks right away that nothing happened.
		after func(t *testing.T, r *testkit.Response)
	}{
		{"form login", func(t *testing.T, h map[string]string) *testkit.Response {
			c := g.Client(t)
			r := webForm(t, c, "/login", url.Values{"email": {ownerEmail}, "password": {webPassword}}, h)
			if webSignedIn(t, c) {
				t.Error("cross-origin login form signed the client in")
			}
			return r
		}, webNoCookie},
		{"API login", func(t *testing.T, h map[string]string) *testkit.Response {
			c := g.Client(t)
			r := webJSON(t, c, "POST", "/api/v1/login", webMustJSON(t, map[string]string{"email": ownerEmail, "password": webPassword}), h)
			if webSignedIn(t, c) {
				t.Error("cross-origin API login signed the client in")
			}
			return r
		}, webNoCookie},
		{"form logout", func(t *testing.T, h map[string]string) *testkit.Response {
			return webForm(t, owner, "/logout", url.Values{}, h)
		}, func(t *testing.T, r *testkit.Response) {
			if !webSignedIn(t, owner) {
				t.Fatal("cross-origin logout form ended the session")
			}
		}},
		{"API logout", func(t *testing.T, h map[string]string) *testkit.Response {
			return webSend(t, owner, "POST", "/api/v1/logout", "", nil, h)
		}, func(t *testing.T, r *testkit.Response) {
			if !webSignedIn(t, owner) {
				t.Fatal("cross-origin API logout ended the session")
			}
		}},
		{"form signup", func(t *testing.T, h map[string]string) *testkit.Response {
			victim := testkit.Email(t)
			signupVictims = append(signupVictims, victim)
			return webForm(t, g.Client(t), "/signup", url.Values{"email": {victim}, "password": {webPassword}}, h)
		}, nil},
		{"API signup", func(t *testing.T, h map[string]string) *testkit.Response {
			victim := testkit.Email(t)
			signupVictims = append(signupVictims, victim)
			return webJSON(t, g.Client(t), "POST", "/api/v1/signup", webMustJSON(t, map[string]string{"email": victim, "password": webPassword}), h)
		}, nil},
		{"form verify", func(t *testing.T, h map[string]string) *testkit.Response {
			c := g.Client(t)
			r := webForm(t, c, "/verify", url.Values{"token": {pendingToken}, "password": {webPassword}}, h)
			if webSignedIn(t, c) {
				t.Error("cross-origin verify form signed the client in")
			}
			return r
		}, webNoCookie},
		{"API verify", func(t *testing.T, h map[string]string) *testkit.Response {
			c := g.Client(t)
			r := webJSON(t, c, "POST", "/api/v1/verify", webMustJSON(t, map[string]string{"token": pendingToken, "password": webPassword}), h)
			if webSignedIn(t, c) {
				t.Error("cross-origin API verify signed the client in")
			}
			return r
		}, webNoCookie},
		{"form resend", func(t *testing.T, h map[string]string) *testkit.Response {
			return webForm(t, g.Client(t), "/verify/resend", url.Values{"email": {pending}}, h)
		}, nil},
		{"API resend", func(t *testing.T, h map[string]string) *testkit.Response {
			return webJSON(t, g.Client(t), "POST", "/api/v1/verify/resend", webMustJSON(t, map[string]string{"email": pending}), h)
		}, nil},
		{"form forgot", func(t *testing.T, h map[string]string) *testkit.Response {
			return webForm(t, g.Client(t), "/password/forgot", url.Values{"email": {ownerEmail}}, h)
		}, nil},
		{"API forgot", func(t *testing.T, h map[string]string) *testkit.Response {
			return webJSON(t, g.Client(t), "POST", "/api/v1/password/forgot", webMustJSON(t, map[string]string{"email": ownerEmail}), h)
		}, nil},
		{"form reset", func(t *testing.T, h map[string]string) *testkit.Response {
			return webForm(t, g.Client(t), "/password/reset", url.Values{"token": {resetToken}, "password": {newPassword}}, h)
		}, func(t *testing.T, r *testkit.Response) {
			if !webLoginWorks(t, g, resetEmail, webPassword) {
				t.Fatal("after a cross-origin reset form the old password no longer works")
			}
		}},
		{"API reset", func(t *testing.T, h map[string]string) *testkit.Response {
			return webJSON(t, g.Client(t), "POST", "/api/v1/password/reset", webMustJSON(t, map[string]string{"token": resetToken, "password": newPassword}), h)
		}, func(t *testing.T, r *testkit.Response) {
			if !webLoginWorks(t, g, resetEmail, webPassword) {
				t.Fatal("after a cross-origin API reset the old password no longer works")
			}
		}},
		{"form change password", func(t *testing.T, h map[string]string) *testkit.Response {
			return webForm(t, owner, "/account/password", url.Values{"current_password": {webPassword}, "new_password": {newPassword}}, h)
		}, func(t *testing.T, r *testkit.Response) {
			if !webLoginWorks(t, g, ownerEmail, webPassword) {
				t.Fatal("after a cross-origin password form the old password no longer works")
			}
		}},
		{"API change password", func(t *testing.T, h map[string]string) *testkit.Response {
			return webJSON(t, owner, "POST", "/api/v1/password/change", webMustJSON(t, map[string]string{"current_password": webPassword, "new_password": newPassword}), h)
		}, func(t *testing.T, r *testkit.Response) {
			if !webLoginWorks(t, g, ownerEmail, webPassword) {
				t.Fatal("after a cross-origin API password change the old password no longer works")
			}
		}},
		{"form revoke others", func(t *testing.T, h map[string]string) *testkit.Response {
			return webForm(t, owner, "/account/sessions/revoke-others", url.Values{}, h)
		}, func(t *testing.T, r *testkit.Response) {
			if !webSignedIn(t, second) {
				t.Fatal("cross-origin revoke-others form ended the other session")
			}
		}},
		{"API revoke others", func(t *testing.T, h map[string]string) *testkit.Response {
			return webSend(t, owner, "DELETE", "/api/v1/sessions", "", nil, h)
		}, func(t *testing.T, r *testkit.Response) {
			if !webSignedIn(t, second) {
				t.Fatal("cross-origin DELETE /api/v1/sessions ended the other session")
			}
		}},
		{"form revoke one", func(t *testing.T, h map[string]string) *testkit.Response {
			return webForm(t, owner, "/account/sessions/"+url.PathEscape(secondID)+"/revoke", url.Values{}, h)
		}, func(t *testing.T, r *testkit.Response) {
			if !webSignedIn(t, second) {
				t.Fatal("cross-origin revoke form ended the session")
			}
		}},
		{"API revoke one", func(t *testing.T, h map[string]string) *testkit.Response {
			return webSend(t, owner, "DELETE", "/api/v1/sessions/"+url.PathEscape(secondID), "", nil, h)
		}, func(t *testing.T, r *testkit.Response) {
			if !webSignedIn(t, second) {
				t.Fatal("cross-origin DELETE /api/v1/sessions/{id} ended the session")
			}
		}},
	}
	for _, a := range attacks {
		for _, f := range webForeign {
			t.Run(a.name+"/"+f.name, func(t *testing.T) {
				r := a.send(t, f.header)
				if r.Status != http.StatusForbidden {
					t.Errorf("status %d; want 403\n%.300s", r.Status, r.Body)
				}
				if a.after != nil {
					a.after(t, r)
				}
			})
		}
	}

	// Nothing was mailed: no signup links, no resend, no reset link.
	webMailBarrier(t, g)
	for _, v := range signupVictims {
		if n := webMailsTo(g, v); n != 0 {
			t.Errorf("cross-origin signup of %s sent %d mails; want 0", v, n)
		}
	}
	if n := webMailsTo(g, pending); n != 1 {
		t.Errorf("pending signup got %d mails; want 1 (cross-origin resends send nothing)", n)
	}
	if n := webMailsTo(g, ownerEmail); n != ownerMails {
		t.Errorf("owner got %d mails; want %d (cross-origin forgot sends nothing)", n, ownerMails)
	}
	// The links were not used up.
	if r := g.Client(t).Verify(pendingToken, webPassword); r.Status != http.StatusOK {
		t.Errorf("same-origin verify after the attacks: %d %s; want 200", r.Status, r.Body)
	}
	if r := g.Client(t).PostJSON("/api/v1/password/reset", map[string]string{"token": resetToken, "password": newPassword}); r.Status != http.StatusNoContent {
		t.Errorf("same-origin reset after the attacks: %d %s; want 204", r.Status, r.Body)
	}
}

// webNoCookie checks that a refused sign-in set no cookie.
func webNoCookie(t *testing.T, r *testkit.Response) {
	t.Helper()
	if sc := r.Header.Values("Set-Cookie"); len(sc) != 0 {
		t.Errorf("refused cross-origin sign-in set cookies %q; want none", sc)
	}
}

// TestWebSameOriginForms: forms work without JavaScript from our own pages,
// from old browsers that send only Origin, and from non-browser clients;
// cross-site navigations (GET) still work.
func TestWebSameOriginForms(t *testing.T) {
	t.Parallel()
	g := start(t, webEnv(nil))

	for path, action := range map[string]string{"/login": "/login", "/signup": "/signup", "/password/forgot": "/password/forgot"} {
		r := webSend(t, g.Client(t), "GET", path, "", nil, map[string]string{"Sec-Fetch-Site": "cross-site"})
		if r.Status != http.StatusOK {
			t.Fatalf("GET %s from a link on another site: %d; want 200", path, r.Status)
		}
		body := r.Text()
		if !strings.Contains(body, `<form method="post" action="`+action+`"`) {
			t.Errorf("GET %s has no plain <form method=\"post\" action=%q>", path, action)
		}
		if strings.Contains(strings.ToLower(body), "<script") {
			t.Errorf("GET %s contains a <script>; the pages must work without JavaScript", path)
		}
		for _, name := range []string{`name="email"`} {
			if !strings.Contains(body, name) {
				t.Errorf("GET %s has no input %s", path, name)
			}
		}
	}

	// Signup, verify, logout and login, all by plain form posts.
	c := g.Client(t)
	email := testkit.Email(t)
	if r := c.PostForm("/signup", url.Values{"email": {email}, "password": {webPassword}}); r.Status != http.StatusOK {
		t.Fatalf("signup form: %d; want 200", r.Status)
	}
	token := g.SMTP.WaitMail(t, email, 1, 15*time.Second).Token(t)
	if r := c.PostForm("/verify", url.Values{"token": {token}, "password": {webPassword}}); r.Status != http.StatusSeeOther {
		t.Fatalf("verify form: %d; want 303", r.Status)
	}
	if !webSignedIn(t, c) {
		t.Fatal("not signed in after the verify form")
	}
	if r := c.PostForm("/logout", nil); r.Status != http.StatusSeeOther {
		t.Fatalf("logout form: %d; want 303", r.Status)
	}
	if webSignedIn(t, c) {
		t.Fatal("still signed in after the logout form")
	}
	creds := url.Values{"email": {email}, "password": {webPassword}}
	for name, h := range map[string]map[string]string{
		"Sec-Fetch-Site same-origin": {"Sec-Fetch-Site": "same-origin", "Origin": g.URL},
		"old browser, own Origin":    {"Origin": g.URL},
		"no browser headers":         nil,
	} {
		c := g.Client(t)
		r := webForm(t, c, "/login", creds, h)
		if r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/account" {
			t.Errorf("%s: login form %d to %q; want 303 to /account", name, r.Status, r.Header.Get("Location"))
			continue
		}
		if !webSignedIn(t, c) {
			t.Errorf("%s: not signed in after the login form", name)
		}
	}
}

// TestWebCORSOriginMayPost: the configured SPA origin may sign in, read the
// session and sign out across origins, with credentials.
func TestWebCORSOriginMayPost(t *testing.T) {
	t.Parallel()
	g := start(t, webEnv(nil))
	_, email := testkit.NewUser(t, g, webPassword)
	spa := map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": webSPAOrigin}
	c := g.Client(t)
	r := webJSON(t, c, "POST", "/api/v1/login", webMustJSON(t, map[string]string{"email": email, "password": webPassword}), spa)
	if r.Status != http.StatusOK {
		t.Fatalf("SPA login: %d %s; want 200", r.Status, r.Body)
	}
	if got := r.Header.Get("Access-Control-Allow-Origin"); got != webSPAOrigin {
		t.Errorf("SPA login: Access-Control-Allow-Origin = %q; want %s", got, webSPAOrigin)
	}
	if got := r.Header.Get("Access-Control-Allow-Credentials"); got != "true" {
		t.Errorf("SPA login: Access-Control-Allow-Credentials = %q; want true", got)
	}
	if len(r.Header.Values("Set-Cookie")) == 0 {
		t.Error("SPA login set no session cookie")
	}
	if r := webSend(t, c, "GET", "/api/v1/session", "", nil, spa); r.Status != http.StatusOK {
		t.Fatalf("SPA session: %d; want 200", r.Status)
	}
	if r := webSend(t, c, "POST", "/api/v1/logout", "", nil, spa); r.Status != http.StatusNoContent {
		t.Fatalf("SPA logout: %d %s; want 204", r.Status, r.Body)
	}
	if webSignedIn(t, c) {
		t.Error("still signed in after the SPA's logout")
	}
}

// ---------------------------------------------------------------------------
// CS-2: CORS only for the exact configured origins.

func TestWebCORS(t *testing.T) {
	t.Parallel()
	g := start(t, webEnv(nil))
	user, _ := testkit.NewUser(t, g, webPassword)
	anon := g.Client(t)

	preflight := func(origin string) *testkit.Response {
		return webSend(t, anon, "OPTIONS", "/api/v1/login", "", nil, map[string]string{
			"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
	}
	t.Run("preflight allowed", func(t *testing.T) {
		r := preflight(webSPAOrigin)
		if r.Status != http.StatusNoContent {
			t.Errorf("status %d; want 204", r.Status)
		}
		if got := r.Header.Get("Access-Control-Allow-Origin"); got != webSPAOrigin {
			t.Errorf("Access-Control-Allow-Origin = %q; want %s", got, webSPAOrigin)
		}
		if got := r.Header.Get("Access-Control-Allow-Credentials"); got != "true" {
			t.Errorf("Access-Control-Allow-Credentials = %q; want true", got)
		}
		if got := r.Header.Get("Access-Control-Allow-Methods"); !strings.Contains(got, "POST") {
			t.Errorf("Access-Control-Allow-Methods = %q; want POST in it", got)
		}
		if got := strings.ToLower(r.Header.Get("Access-Control-Allow-Headers")); !strings.Contains(got, "content-type") {
			t.Errorf("Access-Control-Allow-Headers = %q; want Content-Type in it", got)
		}
	})
	refused := []string{
		"http://127.0.0.1:5174",
		"http://127.0.0.1:5173.evil.example",
		"null",
		"http://127.0.0.1:5173/",
		"https://127.0.0.1:5173",
		"http://localhost:5173",
		"http://127.0.0.1",
		"http://127.0.0.1:51730",
		webEvilOrigin,
		"*",
	}
	for _, origin := range refused {
		t.Run("preflight refused "+origin, func(t *testing.T) {
			r := preflight(origin)
			if got := r.Header.Get("Access-Control-Allow-Origin"); got != "" {
				t.Errorf("Access-Control-Allow-Origin = %q; want none", got)
			}
			if got := r.Header.Get("Access-Control-Allow-Credentials"); got != "" {
				t.Errorf("Access-Control-Allow-Credentials = %q; want none", got)
			}
			if r.Status == http.StatusNoContent || r.Status == http.StatusOK {
				t.Errorf("status %d; want the preflight refused", r.Status)
			}
		})
		t.Run("request refused "+origin, func(t *testing.T) {
			r := webSend(t, user, "GET", "/api/v1/session", "", nil, map[string]string{"Origin": origin, "Sec-Fetch-Site": "cross-site"})
			if got := r.Header.Get("Access-Control-Allow-Origin"); got != "" {
				t.Errorf("Access-Control-Allow-Origin = %q; want none", got)
			}
			if got := r.Header.Get("Access-Control-Allow-Credentials"); got != "" {
				t.Errorf("Access-Control-Allow-Credentials = %q; want none", got)
			}
			if !webVaryOrigin(r) {
				t.Errorf("Vary = %q; want Origin, since the answer depends on it", r.Header.Values("Vary"))
			}
		})
	}
	for name, c := range map[string]*testkit.Client{"signed in": user, "signed out": anon} {
		t.Run("request allowed "+name, func(t *testing.T) {
			r := webSend(t, c, "GET", "/api/v1/session", "", nil, map[string]string{"Origin": webSPAOrigin, "Sec-Fetch-Site": "cross-site"})
			if got := r.Header.Get("Access-Control-Allow-Origin"); got != webSPAOrigin {
				t.Errorf("Access-Control-Allow-Origin = %q; want %s", got, webSPAOrigin)
			}
			if got := r.Header.Get("Access-Control-Allow-Credentials"); got != "true" {
				t.Errorf("Access-Control-Allow-Credentials = %q; want true", got)
			}
			if !webVaryOrigin(r) {
				t.Errorf("Vary = %q; want Origin", r.Header.Values("Vary"))
			}
		})
	}
}

func webVaryOrigin(r *testkit.Response) bool {
	for _, v := range r.Header.Values("Vary") {
		for _, f := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), "Origin") {
				return true
			}
		}
	}
	return false
}

// ---------------------------------------------------------------------------
// RD-1: return_to.

// webReturnToCases are the values the server receives (after URL decoding);
// ok ones are followed, the others fall back to /account.
var webReturnToCases = []struct {
	name string
	raw  string
	ok   bool
}{
	{"account", "/account", true},
	{"path with query", "/some/path?x=1", true},
	{"allowed host", "http://app.example:8081/x", true},
	{"protocol-relative", "//evil.com", false},
	{"slash backslash", `/\evil.com`, false},
	{"double backslash", `\\evil.com`, false},
	{"foreign https", "https://evil.com", false},
	{"allowed host other port", "http://app.example:8082/x", false},
	{"allowed host other scheme", "https://app.example:8081/x", false},
	{"javascript", "javascript:alert(1)", false},
	{"CRLF (/%0d%0a in a link)", "/\r\nSet-Cookie:x=1", false},
	{"tab", "/a\tb", false},
	{"tab before slashes", "/\t/evil.com", false},
	{"newline", "/a\nb", false},
	{"userinfo", "http://app.example:8081@evil.com/", false},
	{"data URL", "data:text/html,<script>alert(1)</script>", false},
}

// webCheckRedirect checks a 303 after sign-in against a return_to case.
func webCheckRedirect(t *testing.T, r *testkit.Response, raw string, ok bool) {
	t.Helper()
	if r.Status != http.StatusSeeOther {
		t.Fatalf("status %d; want 303\n%.300s", r.Status, r.Body)
	}
	loc := r.Header.Get("Location")
	want := "/account"
	if ok {
		want = raw
	}
	if loc != want {
		t.Errorf("return_to %q: Location %q; want %q", raw, loc, want)
	}
	for _, ck := range r.Header.Values("Set-Cookie") {
		if strings.HasPrefix(ck, "x=") || strings.HasPrefix(ck, "x ") {
			t.Errorf("return_to %q injected a cookie: %q", raw, ck)
		}
	}
}

func TestWebReturnTo(t *testing.T) {
	t.Parallel()
	g := start(t, webEnv(nil))
	_, email := testkit.NewUser(t, g, webPassword)

	for _, tc := range webReturnToCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			t.Run("POST /login", func(t *testing.T) {
				r := g.Client(t).PostForm("/login", url.Values{"email": {email}, "password": {webPassword}, "return_to": {tc.raw}})
				webCheckRedirect(t, r, tc.raw, tc.ok)
			})
			t.Run("GET /login signed in", func(t *testing.T) {
				signedIn := g.Client(t)
				if r := signedIn.Login(email, webPassword); r.Status != http.StatusOK {
					t.Fatalf("login: %d; want 200", r.Status)
				}
				r := signedIn.Get("/login?return_to=" + url.QueryEscape(tc.raw))
				webCheckRedirect(t, r, tc.raw, tc.ok)
			})
			t.Run("POST /verify", func(t *testing.T) {
				c := g.Client(t)
				token := c.SignUp(g, testkit.Email(t), webPassword).Token(t)
				r := c.PostForm("/verify", url.Values{"token": {token}, "password": {webPassword}, "return_to": {tc.raw}})
				webCheckRedirect(t, r, tc.raw, tc.ok)
			})
		})
	}

	// A percent-encoded CR LF that reaches the server still encoded is a
	// harmless path on the gateway: either refused or passed on encoded,
	// never a header break.
	t.Run("encoded CRLF stays encoded", func(t *testing.T) {
		t.Parallel()
		const raw = "/%0d%0aSet-Cookie:x=1"
		r := g.Client(t).PostForm("/login", url.Values{"email": {email}, "password": {webPassword}, "return_to": {raw}})
		if r.Status != http.StatusSeeOther {
			t.Fatalf("status %d; want 303", r.Status)
		}
		if loc := r.Header.Get("Location"); loc != "/account" && loc != raw {
			t.Errorf("Location %q; want /account or %q", loc, raw)
		}
		for _, ck := range r.Header.Values("Set-Cookie") {
			if strings.HasPrefix(ck, "x=") {
				t.Errorf("injected cookie %q", ck)
			}
		}
	})
}

// ---------------------------------------------------------------------------
// IN-1: strict JSON.

func TestWebBadJSON(t *testing.T) {
	t.Parallel()
	g := start(t, webEnv(nil))
	user, email := testkit.NewUser(t, g, webPassword)

	// Login bodies that a lax decoder would take as valid credentials (last
	// key wins, case-insensitive keys, unknown fields ignored, trailing data
	// ignored) or that smuggle a query operator.
	creds := func(email, password string) string {
		return webMustJSON(t, map[string]string{"email": email, "password": password})
	}
	type badBody struct {
		name string
		body func(email string) string
	}
	bodies := []badBody{
		{"unknown field", func(e string) string { return fmt.Sprintf(`{"email":%q,"password":%q,"admin":true}`, e, webPassword) }},
		{"duplicate key", func(e string) string {
			return fmt.Sprintf(`{"email":"nobody@example.com","password":"wrong password 12","email":%q,"password":%q}`, e, webPassword)
		}},
		{"duplicate key, first wins", func(e string) string {
			return fmt.Sprintf(`{"email":%q,"password":%q,"email":"nobody@example.com"}`, e, webPassword)
		}},
		{"case-variant key", func(e string) string {
			return fmt.Sprintf(`{"email":%q,"password":"wrong password 12","PASSWORD":%q}`, e, webPassword)
		}},
		{"case-variant key alone", func(e string) string { return fmt.Sprintf(`{"Email":%q,"password":%q}`, e, webPassword) }},
		{"wrong type", func(e string) string { return fmt.Sprintf(`{"email":1,"password":%q}`, webPassword) }},
		{"wrong type password", func(e string) string { return fmt.Sprintf(`{"email":%q,"password":["%s"]}`, e, webPassword) }},
		{"NoSQL operator", func(e string) string { return `{"email":{"$ne":null},"password":"x"}` }},
		{"NoSQL operator in password", func(e string) string { return fmt.Sprintf(`{"email":%q,"password":{"$ne":null}}`, e) }},
		{"NoSQL regex", func(e string) string { return fmt.Sprintf(`{"email":{"$regex":".*"},"password":%q}`, webPassword) }},
		{"invalid UTF-8", func(e string) string {
			return fmt.Sprintf("{\"email\":%q,\"password\":\"%s\xff\"}", e, webPassword)
		}},
		{"trailing object", func(e string) string { return creds(e, webPassword) + ` {}` }},
		{"trailing garbage", func(e string) string { return creds(e, webPassword) + `x` }},
		{"top-level array", func(e string) string { return "[" + creds(e, webPassword) + "]" }},
		{"top-level null", func(e string) string { return `null` }},
		{"top-level string", func(e string) string { return fmt.Sprintf("%q", e) }},
		{"byte order mark", func(e string) string { return "\xef\xbb\xbf" + creds(e, webPassword) }},
		{"empty body", func(e string) string { return `` }},
	}
	for _, b := range bodies {
		t.Run("login/"+b.name, func(t *testing.T) {
			c := g.Client(t)
			r := webJSON(t, c, "POST", "/api/v1/login", b.body(email), webSameOrigin)
			if r.Status != http.StatusBadRequest {
				t.Errorf("status %d; want 400\n%.300s", r.Status, r.Body)
			}
			if r.ErrorCode() == "" {
				t.Errorf("body %.200q; want the API error shape", r.Body)
			}
			if sc := r.Header.Values("Set-Cookie"); len(sc) != 0 {
				t.Errorf("refused login set cookies %q", sc)
			}
			if webSignedIn(t, c) {
				t.Error("refused login signed the client in")
			}
		})
	}
	var victims []string
	for _, b := range bodies {
		t.Run("signup/"+b.name, func(t *testing.T) {
			victim := testkit.Email(t)
			victims = append(victims, victim)
			r := webJSON(t, g.Client(t), "POST", "/api/v1/signup", b.body(victim), webSameOrigin)
			if r.Status != http.StatusBadRequest {
				t.Errorf("status %d; want 400\n%.300s", r.Status, r.Body)
			}
		})
	}

	// Content type and size, on every JSON endpoint.
	signupVictim := testkit.Email(t)
	victims = append(victims, signupVictim)
	endpoints := []struct {
		path string
		c    *testkit.Client
		body string
	}{
		{"/api/v1/signup", g.Client(t), creds(signupVictim, webPassword)},
		{"/api/v1/verify", g.Client(t), `{"token":"x","password":"y"}`},
		{"/api/v1/verify/resend", g.Client(t), `{"email":"a@b.co"}`},
		{"/api/v1/login", g.Client(t), creds(email, webPassword)},
		{"/api/v1/password/forgot", g.Client(t), `{"email":"a@b.co"}`},
		{"/api/v1/password/reset", g.Client(t), `{"token":"x","password":"y"}`},
		{"/api/v1/password/change", user, `{"current_password":"x","new_password":"y"}`},
	}
	for _, e := range endpoints {
		cases := []struct {
			name        string
			contentType string
			body        string
			want        int
		}{
			{"text/plain", "text/plain", e.body, http.StatusUnsupportedMediaType},
			{"no content type", "", e.body, http.StatusUnsupportedMediaType},
			{"form content type", "application/x-www-form-urlencoded", e.body, http.StatusUnsupportedMediaType},
			{"latin1 charset", "application/json; charset=iso-8859-1", e.body, http.StatusUnsupportedMediaType},
			{"oversize", "application/json", `{"email":"` + strings.Repeat("a", 70000) + `"}`, http.StatusRequestEntityTooLarge},
			{"oversize with valid prefix", "application/json", e.body + strings.Repeat(" ", 70000), http.StatusRequestEntityTooLarge},
			{"unknown field", "application/json", `{"nope":1}`, http.StatusBadRequest},
			{"top-level array", "application/json", `[]`, http.StatusBadRequest},
			{"truncated", "application/json", `{"email":`, http.StatusBadRequest},
			{"deep nesting", "application/json", `{"email":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, http.StatusBadRequest},
		}
		for _, tc := range cases {
			t.Run(e.path+"/"+tc.name, func(t *testing.T) {
				r := webSend(t, e.c, "POST", e.path, tc.contentType, []byte(tc.body), webSameOrigin)
				if r.Status != tc.want {
					t.Errorf("status %d; want %d\n%.300s", r.Status, tc.want, r.Body)
				}
				if e.path == "/api/v1/login" && len(r.Header.Values("Set-Cookie")) != 0 {
					t.Errorf("refused login set cookies %q", r.Header.Values("Set-Cookie"))
				}
			})
		}
	}
	if webLoginWorks(t, g, email, webPassword) != true {
		t.Fatal("the user's password no longer works after the bad requests")
	}

	// Forms: oversize and malformed bodies get 4xx, not 500.
	t.Run("form oversize", func(t *testing.T) {
		r := webSend(t, g.Client(t), "POST", "/login", "application/x-www-form-urlencoded",
			[]byte("email=a%40b.co&password="+strings.Repeat("a", 100000)), webSameOrigin)
		if r.Status != http.StatusRequestEntityTooLarge {
			t.Errorf("status %d; want 413", r.Status)
		}
	})
	t.Run("form bad encoding", func(t *testing.T) {
		r := webSend(t, g.Client(t), "POST", "/signup", "application/x-www-form-urlencoded", []byte("email=%zz&password=%"), webSameOrigin)
		if r.Status != http.StatusBadRequest {
			t.Errorf("status %d; want 400", r.Status)
		}
	})

	// None of the refused signups sent a mail.
	webMailBarrier(t, g)
	for _, v := range victims {
		if n := webMailsTo(g, v); n != 0 {
			t.Errorf("refused signup of %s sent %d mails; want 0", v, n)
		}
	}
	if strings.Contains(g.Logs(), "panic") {
		t.Errorf("the gateway logged a panic:\n%s", webLogLines(g.Logs(), "panic"))
	}
}

// ---------------------------------------------------------------------------
// IN-2: no header injection through addresses.

func TestWebHeaderInjection(t *testing.T) {
	t.Parallel()
	g := start(t, webEnv(nil))
	victim := testkit.Email(t)
	addresses := []string{
		victim + "\r\nBcc: x@evil.example",
		victim + "\nBcc: x@evil.example",
		victim + "\rBcc: x@evil.example",
		victim + "\r\n\r\nx@evil.example",
		"x@evil.example\r\nCc: " + victim,
		victim + ">\r\nBcc: <x@evil.example",
		"Eve <x@evil.example>",
		victim + ", x@evil.example",
		victim + "\x00x@evil.example",
		strings.Repeat("x", 250) + "@evil.example",
		"x@evil-example",
		"x@[127.0.0.1]",
	}
	for i, addr := range addresses {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			for _, path := range []string{"/api/v1/signup", "/api/v1/password/forgot", "/api/v1/verify/resend"} {
				body := map[string]string{"email": addr}
				if path == "/api/v1/signup" {
					body["password"] = webPassword
				}
				r := g.Client(t).PostJSON(path, body)
				if r.Status != http.StatusBadRequest || r.ErrorCode() != "invalid_email" {
					t.Errorf("%s with %q: %d %s; want 400 invalid_email", path, addr, r.Status, r.Body)
				}
			}
			for _, path := range []string{"/signup", "/password/forgot", "/verify/resend"} {
				r := g.Client(t).PostForm(path, url.Values{"email": {addr}, "password": {webPassword}})
				if r.Status != http.StatusBadRequest {
					t.Errorf("%s form with %q: %d; want 400", path, addr, r.Status)
				}
			}
		})
	}
	webMailBarrier(t, g)
	for _, m := range g.SMTP.Mails("") {
		if strings.Contains(strings.ToLower(strings.Join(m.To, ",")), "evil") || bytes.Contains(bytes.ToLower(m.Raw), []byte("evil.example")) || bytes.Contains(bytes.ToLower(m.Raw), []byte("evil-example")) {
			t.Errorf("a mail went out with the injected address: to %q, subject %q", m.To, m.Subject)
		}
	}
	if n := webMailsTo(g, victim); n != 0 {
		t.Errorf("%s got %d mails; want 0", victim, n)
	}
}

// ---------------------------------------------------------------------------
// IN-3: slow and huge headers.

// TestWebSlowHeaders: a client that dribbles its headers (or sends nothing)
// is cut off after server.read_header_timeout (1 s here), not held open.
func TestWebSlowHeaders(t *testing.T) {
	t.Parallel()
	g := start(t, webEnv(nil))
	const limit = 4 * time.Second // 1 s timeout plus generous slack
	for _, tc := range []struct {
		name  string
		first string
		drip  bool
	}{
		{"nothing sent", "", false},
		{"partial request line", "GET /hea", false},
		{"headers dribbled", "GET /healthz HTTP/1.1\r\nHost: x\r\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			conn, err := net.DialTimeout("tcp", g.Addr, 5*time.Second)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer conn.Close()
			begin := time.Now()
			if tc.first != "" {
				if _, err := io.WriteString(conn, tc.first); err != nil {
					t.Fatalf("write: %v", err)
				}
			}
			stop := make(chan struct{})
			defer close(stop)
			if tc.drip {
				go func() {
					for i := 0; i < 100; i++ {
						select {
						case <-stop:
							return
						case <-time.After(200 * time.Millisecond):
						}
						if _, err := fmt.Fprintf(conn, "X-Slow-%d: a\r\n", i); err != nil {
							return
						}
					}
				}()
			}
			_ = conn.SetReadDeadline(time.Now().Add(limit))
			got, err := io.ReadAll(conn)
			elapsed := time.Since(begin)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("connection still open after %s; want it closed after the 1 s read_header_timeout", elapsed.Round(time.Millisecond))
			}
			if bytes.HasPrefix(got, []byte("HTTP/1.1 200")) {
				t.Errorf("the incomplete request was served: %q", got)
			}
			t.Logf("closed after %s (answer %q)", elapsed.Round(time.Millisecond), webFirstLine(got))
		})
	}
}

// TestWebHugeHeaders: a request with ~100 KB of headers is refused with
// 431 (or the connection closed) and never reaches a handler.
func TestWebHugeHeaders(t *testing.T) {
	t.Parallel()
	g := start(t, webEnv(nil))
	for _, tc := range []struct {
		name    string
		headers string
	}{
		{"one huge header", "X-Big: " + strings.Repeat("a", 100<<10) + "\r\n"},
		{"many headers", strings.Repeat("X-Many: "+strings.Repeat("b", 40)+"\r\n", 2000)},
		{"huge cookie", "Cookie: gatehouse=" + strings.Repeat("c", 100<<10) + "\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			probe := "/in3-probe-" + strconv.FormatInt(time.Now().UnixNano(), 36)
			conn, err := net.DialTimeout("tcp", g.Addr, 5*time.Second)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
			go func() {
				_, _ = io.WriteString(conn, "GET "+probe+" HTTP/1.1\r\nHost: "+g.Addr+"\r\n"+tc.headers+"\r\n")
			}()
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
					t.Errorf("status %d; want 431 or the connection closed", resp.StatusCode)
				}
			} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("no answer and the connection is still open after 15 s")
			}
			// Give a handler that wrongly got the request time to log it.
			g.Client(t).Get("/healthz")
			if strings.Contains(g.Logs(), probe) {
				t.Errorf("the request with huge headers reached the server:\n%s", webLogLines(g.Logs(), probe))
			}
		})
	}
	// A sanity check that the probe would be seen if it got through.
	probe := "/in3-probe-normal"
	g.Client(t).Get(probe)
	if !strings.Contains(g.Logs(), probe) {
		t.Fatalf("the access log does not show %s; the check above proves nothing", probe)
	}
}

func webFirstLine(b []byte) string {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	return strings.TrimSpace(string(line))
}

// ---------------------------------------------------------------------------
// IN-4: no secrets in logs.

// webSessionToken decodes the session token from a session cookie value
// (gorilla/securecookie: base64url("date|base64url(value)|mac")), or "" if
// the value does not have that shape.
func webSessionToken(value string) string {
	raw, err := base64.URLEncoding.DecodeString(value)
	if err != nil {
		return ""
	}
	parts := bytes.SplitN(raw, []byte("|"), 3)
	if len(parts) != 3 {
		return ""
	}
	tok, err := base64.URLEncoding.DecodeString(string(parts[1]))
	if err != nil {
		return ""
	}
	return string(tok)
}

// webLogLines returns the log lines containing s, for failure messages.
func webLogLines(logs, s string) string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
			if len(out) == 5 {
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

func TestWebNoSecretsInLogs(t *testing.T) {
	t.Parallel()
	g := start(t, nil) // real SMTP: links are not logged by a dev mailbox
	secrets := map[string]string{}
	pw := map[string]string{
		"password at signup":         "in4 first passphrase Alpha-1",
		"wrong password":             "in4-wrong-Passphrase-Bravo2",
		"password of the attacker":   "in4 attacker passphrase Foxtrot",
		"password after reset":       "in4 second passphrase Charlie3",
		"password after API change":  "in4-third-Passphrase-Delta4",
		"password after form change": "in4 fourth passphrase Echo5",
	}
	for k, v := range pw {
		secrets[k] = v
	}
	addSession := func(name string, c *testkit.Client) {
		t.Helper()
		ck := c.Cookie(testkit.CookieName)
		if ck == nil {
			t.Fatalf("%s: no session cookie", name)
		}
		secrets[name+" cookie"] = ck.Value
		tok := webSessionToken(ck.Value)
		if tok == "" {
			t.Logf("%s: cookie is not in securecookie form; checking the raw value only", name)
			return
		}
		secrets[name+" token"] = tok
		if _, secret, ok := strings.Cut(tok, "."); ok {
			secrets[name+" token secret"] = secret
		}
	}
	addMail := func(name string, m testkit.Mail) string {
		t.Helper()
		secrets[name+" link"] = m.Link(t)
		tok := m.Token(t)
		secrets[name+" token"] = tok
		return tok
	}
	expect := func(what string, r *testkit.Response, want int) {
		t.Helper()
		if r.Status != want {
			t.Fatalf("%s: %d; want %d\n%.300s", what, r.Status, want, r.Body)
		}
	}

	email := testkit.Email(t)
	c := g.Client(t)
	expect("signup form", c.PostForm("/signup", url.Values{"email": {email}, "password": {pw["password at signup"]}}), 200)
	verifyMail := g.SMTP.WaitMail(t, email, 1, 15*time.Second)
	verifyToken := addMail("verify", verifyMail)
	expect("verify page", c.Get("/verify?token="+verifyToken), 200)
	expect("verify with a wrong password", c.PostForm("/verify", url.Values{"token": {verifyToken}, "password": {pw["wrong password"]}}), 401)
	expect("verify", c.PostForm("/verify", url.Values{"token": {verifyToken}, "password": {pw["password at signup"]}}), 303)
	addSession("session after verify", c)

	// Someone signs up with the taken address; the owner is told.
	expect("signup of a taken address", g.Client(t).PostJSON("/api/v1/signup", map[string]string{"email": email, "password": pw["password of the attacker"]}), 202)
	expect("logout", c.PostForm("/logout", nil), 303)
	expect("login wrong password (form)", c.PostForm("/login", url.Values{"email": {email}, "password": {pw["wrong password"]}}), 401)
	expect("login wrong password (API)", c.Login(email, pw["wrong password"]), 401)
	expect("login unknown address", c.Login(testkit.Email(t), pw["wrong password"]), 401)
	expect("login (form)", c.PostForm("/login", url.Values{"email": {email}, "password": {pw["password at signup"]}}), 303)
	addSession("session after login", c)

	// Forgot and reset by forms.
	expect("forgot form", g.Client(t).PostForm("/password/forgot", url.Values{"email": {email}}), 200)
	resetToken := addMail("reset", g.SMTP.WaitSubject(t, email, "reset your password", 15*time.Second))
	expect("reset page", g.Client(t).Get("/password/reset?token="+resetToken), 200)
	expect("reset form", g.Client(t).PostForm("/password/reset", url.Values{"token": {resetToken}, "password": {pw["password after reset"]}}), 303)
	expect("replayed reset link", g.Client(t).PostForm("/password/reset", url.Values{"token": {resetToken}, "password": {pw["password after reset"]}}), 400)

	// Sign in through the API, change the password twice.
	c = g.Client(t)
	expect("login (API)", c.Login(email, pw["password after reset"]), 200)
	addSession("session after API login", c)
	expect("change password (API)", c.PostJSON("/api/v1/password/change", map[string]string{
		"current_password": pw["password after reset"], "new_password": pw["password after API change"]}), 204)
	expect("change password (form)", c.PostForm("/account/password", url.Values{
		"current_password": {pw["password after API change"]}, "new_password": {pw["password after form change"]}}), 303)
	expect("account page", c.Get("/account"), 200)
	old := c.Cookie(testkit.CookieName)
	expect("logout (API)", c.PostJSON("/api/v1/logout", nil), 204)
	replay := g.Client(t)
	replay.SetCookie(old)
	expect("replayed cookie after logout", replay.Get("/api/v1/session"), 401)

	// Wait for the last mails, so their sending is logged too.
	g.SMTP.WaitSubject(t, email, "password was changed", 15*time.Second)
	webMailBarrier(t, g)

	logs := g.Logs()
	if !strings.Contains(logs, "path=/verify") || !strings.Contains(logs, "path=/password/reset") {
		t.Fatalf("the logs have no access lines for /verify and /password/reset; the scan would prove nothing:\n%.2000s", logs)
	}
	for name, s := range secrets {
		forms := map[string]bool{s: true, url.QueryEscape(s): true, url.PathEscape(s): true}
		for form := range forms {
			if strings.Contains(logs, form) {
				t.Errorf("the logs contain the %s:\n%s", name, webLogLines(logs, form))
			}
		}
	}
}
