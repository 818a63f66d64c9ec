package web

import "strings"

// deviceSummary turns a User-Agent header into a short label such as
// "Chrome on Linux" for the session list. It knows the common browsers and
// systems only; it is a hint for the user, never a security decision.
func deviceSummary(userAgent string) string {
	browser := firstMatch(userAgent, []match{
		// Order matters: Edge and Opera also say "Chrome", Chrome also says "Safari".
		{"Edg", "Edge"}, {"OPR/", "Opera"},
		{"Firefox/", "Firefox"}, {"FxiOS/", "Firefox"},
		{"Chrome/", "Chrome"}, {"CriOS/", "Chrome"},
		{"Safari/", "Safari"},
		{"curl/", "curl"},
	})
	system := firstMatch(userAgent, []match{
		{"Windows", "Windows"}, {"Android", "Android"},
		{"iPhone", "iOS"}, {"iPad", "iPadOS"},
		{"Mac OS X", "macOS"}, {"CrOS", "ChromeOS"}, {"Linux", "Linux"},
	})
	switch {
	case browser != "" && system != "":
		return browser + " on " + system
	case browser != "":
		return browser
	case system != "":
		return "Browser on " + system
	default:
		return "Unknown device"
	}
}

type match struct{ token, name string }

func firstMatch(s string, ms []match) string {
	for _, m := range ms {
		if strings.Contains(s, m.token) {
			return m.name
		}
	}
	return ""
}
