package main

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/url"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

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
