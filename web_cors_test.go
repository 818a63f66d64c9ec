package main

// Black-box tests of CORS (CS-2) and return_to (RD-1).

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

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
