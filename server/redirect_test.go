package server

import (
	"net/url"
	"strings"
	"testing"
)

// testRedirectHosts is the allow-list the return_to tests use, in the
// canonical form main builds from redirects.allowed_hosts.
var testRedirectHosts = map[string]bool{"http://app.example:8081": true}

// returnToSeeds are the inputs of RD-1: the table below and the fuzz
// corpus both start from them.
var returnToSeeds = []string{
	"",
	"/account",
	"/some/path?x=1",
	"/a#frag",
	"/?next=//evil.com",
	"/%2f%2fevil.com",
	"/%0d%0aSet-Cookie:x",
	"http://app.example:8081/x",
	"HTTP://APP.EXAMPLE:8081/x",
	"http://app.example:8081",
	"//evil.com",
	"///evil.com",
	`/\evil.com`,
	`\\evil.com`,
	`\/evil.com`,
	"https://evil.com",
	"http://app.example:8082/x",
	"https://app.example:8081/x",
	"http://app.example/x",
	"http://app.example:8081@evil.com/",
	"http://evil.com@app.example:8081/",
	"http://app.example:8081.evil.com/",
	"javascript:alert(1)",
	"JavaScript:alert(1)",
	"data:text/html,<script>alert(1)</script>",
	"/\r\nSet-Cookie:x",
	"/a\tb",
	"/a\nb",
	"/\t/evil.com",
	"/a\x00b",
	"/a\x7fb",
	"http:evil.com",
	"http:/evil.com",
	"https:///evil.com",
	" /account",
	"account",
	"../evil",
	"/" + strings.Repeat("a", 3000),
}

func TestReturnTo(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		raw  string
		want string
	}{
		{"empty", "", "/account"},
		{"account", "/account", "/account"},
		{"path with query", "/some/path?x=1", "/some/path?x=1"},
		{"path with fragment", "/a#frag", "/a#frag"},
		{"slashes only in the query", "/?next=//evil.com", "/?next=//evil.com"},
		{"encoded slashes stay a path", "/%2f%2fevil.com", "/%2f%2fevil.com"},
		{"allowed host", "http://app.example:8081/x", "http://app.example:8081/x"},
		{"allowed host without path", "http://app.example:8081", "http://app.example:8081"},
		{"protocol-relative", "//evil.com", "/account"},
		{"triple slash", "///evil.com", "/account"},
		{"slash backslash", `/\evil.com`, "/account"},
		{"double backslash", `\\evil.com`, "/account"},
		{"backslash slash", `\/evil.com`, "/account"},
		{"foreign https", "https://evil.com", "/account"},
		{"other port", "http://app.example:8082/x", "/account"},
		{"other scheme", "https://app.example:8081/x", "/account"},
		{"default port is another origin", "http://app.example/x", "/account"},
		{"userinfo looks like the host", "http://app.example:8081@evil.com/", "/account"},
		{"userinfo before the allowed host", "http://evil.com@app.example:8081/", "/account"},
		{"allowed host as a prefix", "http://app.example:8081.evil.com/", "/account"},
		{"javascript", "javascript:alert(1)", "/account"},
		{"javascript mixed case", "JavaScript:alert(1)", "/account"},
		{"data", "data:text/html,<script>alert(1)</script>", "/account"},
		{"CRLF", "/\r\nSet-Cookie:x", "/account"},
		{"tab", "/a\tb", "/account"},
		{"newline", "/a\nb", "/account"},
		{"tab before slash", "/\t/evil.com", "/account"},
		{"NUL", "/a\x00b", "/account"},
		{"DEL", "/a\x7fb", "/account"},
		{"opaque http", "http:evil.com", "/account"},
		{"http without host", "http:/evil.com", "/account"},
		{"https empty host", "https:///evil.com", "/account"},
		{"leading space", " /account", "/account"},
		{"relative without slash", "account", "/account"},
		{"dot dot", "../evil", "/account"},
		{"too long", "/" + strings.Repeat("a", 3000), "/account"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := returnTo(tt.raw, testRedirectHosts); got != tt.want {
				t.Errorf("returnTo(%q) = %q; want %q", tt.raw, got, tt.want)
			}
		})
	}

	// Scheme and host are case-insensitive: the allow-list still matches,
	// and the answer is on the allowed origin.
	if got := returnTo("HTTP://APP.EXAMPLE:8081/x", testRedirectHosts); got == "/account" || checkReturnTo(got, testRedirectHosts) != "" {
		t.Errorf("returnTo(upper-case allowed URL) = %q; want that URL on the allowed origin", got)
	}
	// A percent-encoded CR LF is a harmless same-origin path, never a header
	// break: either refused or passed on still encoded.
	if got := returnTo("/%0d%0aSet-Cookie:x", testRedirectHosts); got != "/account" && got != "/%0d%0aSet-Cookie:x" {
		t.Errorf("returnTo(encoded CRLF) = %q; want /account or the encoded path unchanged", got)
	}
	// No allow-list: absolute URLs are never accepted.
	if got := returnTo("http://app.example:8081/x", nil); got != "/account" {
		t.Errorf("returnTo with no allowed hosts = %q; want /account", got)
	}
}

// checkReturnTo states RD-1 for one answer of returnTo: "" when got is safe,
// otherwise what is wrong with it.
func checkReturnTo(got string, allowed map[string]bool) string {
	if got == defaultReturnTo {
		return ""
	}
	for i := 0; i < len(got); i++ {
		if c := got[i]; c < 0x20 || c == 0x7f {
			return "contains a control character"
		}
	}
	if strings.HasPrefix(got, "/") {
		if len(got) > 1 && (got[1] == '/' || got[1] == '\\') {
			return "starts with // or /\\"
		}
		if strings.Contains(got, `\`) {
			return "contains a backslash"
		}
		return ""
	}
	u, err := url.Parse(got)
	if err != nil {
		return "does not parse: " + err.Error()
	}
	if u.User != nil {
		return "has userinfo"
	}
	if u.Host == "" || !allowed[strings.ToLower(u.Scheme+"://"+u.Host)] {
		return "origin " + u.Scheme + "://" + u.Host + " is not allowed"
	}
	return ""
}

// FuzzReturnTo checks RD-1 for any input: the answer is /account, a path
// with one leading slash and no control characters, or a URL on an allowed
// origin.
func FuzzReturnTo(f *testing.F) {
	for _, s := range returnToSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got := returnTo(raw, testRedirectHosts)
		if problem := checkReturnTo(got, testRedirectHosts); problem != "" {
			t.Fatalf("returnTo(%q) = %q: %s", raw, got, problem)
		}
		if got != defaultReturnTo && strings.HasPrefix(got, "/") && got != raw {
			t.Fatalf("returnTo(%q) = %q; a relative path must be passed on unchanged", raw, got)
		}
	})
}
