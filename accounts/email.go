package accounts

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Limits from RFC 5321 (path and local part) as browsers and MTAs apply them.
const (
	maxEmailBytes     = 254
	maxLocalPartBytes = 64
)

// NormalizeEmail returns the canonical form of an address used as a username:
// trimmed, NFC-normalized and lower-cased. It refuses anything that could be
// a header injection (control characters), a display name or group ("Bob
// <bob@x.y>"), a quoted or commented local part, or a domain without a dot.
// The result is what is stored, compared and mailed to.
func NormalizeEmail(s string) (string, error) {
	if len(s) > 4*maxEmailBytes || !utf8.ValidString(s) {
		return "", ErrInvalidEmail
	}
	// NFC again after lower-casing: case mapping can undo a composition
	// (J+caron lowers to j+caron, which composes to ǰ), and the result must
	// be the same whichever spelling came in.
	s = norm.NFC.String(strings.ToLower(norm.NFC.String(strings.TrimSpace(s))))
	if len(s) > maxEmailBytes {
		return "", ErrInvalidEmail
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return "", ErrInvalidEmail
	}
	local, domain := s[:at], s[at+1:]
	if len(local) > maxLocalPartBytes || !validLocalPart(local) || !validDomain(domain) {
		return "", ErrInvalidEmail
	}
	return s, nil
}

// validLocalPart accepts the dot-atom form: printable characters other than
// specials, no leading, trailing or double dots. Quoted local parts are
// legal in RFC 5322 but are refused: no provider hands them out, and they are
// a classic source of parser disagreements.
func validLocalPart(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) || strings.ContainsRune(`"(),:;<>@[\]`, r) {
			return false
		}
	}
	return true
}

// validDomain accepts host names with at least one dot, labels of letters,
// digits and hyphens (Unicode letters allowed for IDNs), no IP literals.
func validDomain(s string) bool {
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if r != '-' && !unicode.IsLetter(r) && !unicode.IsDigit(r) {
				return false
			}
		}
	}
	// A top-level domain is never all digits; this also refuses IPv4 addresses.
	tld := labels[len(labels)-1]
	return strings.IndexFunc(tld, func(r rune) bool { return !unicode.IsDigit(r) }) >= 0
}
