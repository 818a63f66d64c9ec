package testkit

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// serverError matches the log lines of a server error: a 500 answer (in
// the access log or the responder's "request failed"), a recovered panic,
// or a page that failed to render. A 502 or 503 is a dependency that is
// down, not a bug; tests that must not see one check the status.
var serverError = regexp.MustCompile(`status=500\b|msg=panic|msg="render page"`)

// NoServerErrors fails the test at its end if g logged a server error.
func NoServerErrors(tb testing.TB, g *Gateway) {
	tb.Helper()
	tb.Cleanup(func() {
		for _, line := range strings.Split(g.Logs(), "\n") {
			if serverError.MatchString(line) {
				tb.Errorf("gateway logged a server error: %s", line)
			}
		}
	})
}

// WantAPIError checks an API error answer: its status and error code.
func WantAPIError(tb testing.TB, what string, r *Response, status int, code string) {
	tb.Helper()
	if r.Status != status || r.ErrorCode() != code {
		tb.Fatalf("%s: got %d %q; want %d %q\n%s", what, r.Status, r.ErrorCode(), status, code, Short(r.Body))
	}
}

// WantRedirect checks a redirect's status and that its Location starts
// with prefix, and returns the Location.
func WantRedirect(tb testing.TB, what string, r *Response, status int, prefix string) string {
	tb.Helper()
	loc := r.Header.Get("Location")
	if r.Status != status || !strings.HasPrefix(loc, prefix) {
		tb.Fatalf("%s: got %d Location %q; want %d %s to %s…\n%s", what, r.Status, loc, status, http.StatusText(status), prefix, Short(r.Body))
	}
	return loc
}

// Short keeps failure messages readable: pages are long.
func Short(b []byte) string {
	if len(b) > 1500 {
		return string(b[:1500]) + "…"
	}
	return string(b)
}
