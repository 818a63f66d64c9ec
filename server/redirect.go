package server

import (
	"net/url"
	"strings"
)

// defaultReturnTo is where a signed-in user lands when no (valid) return_to
// is given.
const defaultReturnTo = "/account"

// returnTo decides where to send a user after signing in (RD-1). It accepts
// a relative path with a single leading slash, or an absolute http(s) URL
// whose origin is exactly one of allowed; anything else falls back to
// /account. Backslashes and control characters are refused outright
// because browsers "fix" them into other URLs (/\evil.com is //evil.com).
func returnTo(raw string, allowed map[string]bool) string {
	if raw == "" || len(raw) > 2048 {
		return defaultReturnTo
	}
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return defaultReturnTo
		}
	}
	if raw[0] == '/' {
		if strings.HasPrefix(raw, "//") {
			return defaultReturnTo
		}
		u, err := url.Parse(raw)
		if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
			return defaultReturnTo
		}
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Opaque != "" {
		return defaultReturnTo
	}
	if !allowed[strings.ToLower(u.Scheme+"://"+u.Host)] {
		return defaultReturnTo
	}
	return u.String()
}
