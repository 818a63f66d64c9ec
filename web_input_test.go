package main

// Black-box tests of bad input: JSON, headers (IN-1..3).

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

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
