package accounts

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"
)

// Limits from RFC 5321 (path and local part) as browsers and MTAs apply them.
const (
	maxEmailBytes     = 254
	maxLocalPartBytes = 64
)

// domainProfile maps a domain as a resolver would (UTS #46 for lookup, RFC
// 5891): case, width and compatibility forms fold, punycode labels decode
// and are checked, invalid labels (hyphens, bidi, joiners, STD3
// characters) are refused. Two spellings of one domain — Unicode or
// punycode, any case — map to one form.
var domainProfile = idna.New(
	idna.MapForLookup(),
	idna.BidiRule(),
	idna.VerifyDNSLength(true),
	idna.Transitional(false),
)

// NormalizeEmail returns the canonical form of an address used as a username.
// It refuses anything that could be a header injection (control characters),
// a display name or group ("Bob <bob@x.y>"), a quoted or commented local
// part, or a domain without a dot. The result is what is stored, compared
// and mailed to.
//
// One mailbox, one account, and never two mailboxes in one:
//   - the domain is mapped for lookup (see domainProfile) and kept in its
//     Unicode form: "bücher.example" and "XN--BCHER-KVA.example" are one
//     domain, as DNS says;
//   - the local part, which only the receiving server interprets, is
//     NFC-normalized and lower-cased, but a character outside ASCII never
//     becomes ASCII: such an address is refused. Case folding and Unicode
//     equivalence would otherwise turn "\u212Aevin@d" (KELVIN SIGN) into
//     "kevin@d", someone else's mailbox.
func NormalizeEmail(s string) (string, error) {
	if len(s) > 4*maxEmailBytes || !utf8.ValidString(s) {
		return "", ErrInvalidEmail
	}
	s = strings.TrimSpace(s)
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return "", ErrInvalidEmail
	}
	local, ok := normalizeLocalPart(s[:at])
	if !ok || len(local) > maxLocalPartBytes || !validLocalPart(local) {
		return "", ErrInvalidEmail
	}
	domain, ok := normalizeDomain(s[at+1:])
	if !ok {
		return "", ErrInvalidEmail
	}
	s = local + "@" + domain
	if len(s) > maxEmailBytes {
		return "", ErrInvalidEmail
	}
	return s, nil
}

// normalizeLocalPart lower-cases and NFC-normalizes a local part. NFC runs
// again after lower-casing, which can undo a composition (J+caron lowers to
// j+caron, which composes to ǰ), so the result is the same whichever
// spelling came in. ok is false when a non-ASCII character would become
// ASCII: by lower-casing (KELVIN SIGN to k, İ to i) or by canonical
// equivalence (KELVIN SIGN is canonically K, GREEK QUESTION MARK is ";").
func normalizeLocalPart(local string) (string, bool) {
	ascii := countASCII(local)
	var b strings.Builder
	for _, r := range norm.NFC.String(local) {
		l := unicode.ToLower(r)
		if r >= utf8.RuneSelf && l < utf8.RuneSelf {
			return "", false
		}
		b.WriteRune(l)
	}
	out := norm.NFC.String(b.String())
	return out, countASCII(out) <= ascii
}

func countASCII(s string) int {
	n := 0
	for _, r := range s {
		if r < utf8.RuneSelf {
			n++
		}
	}
	return n
}

// normalizeDomain maps a domain for lookup and returns its Unicode form, if
// it is a valid host name with at least one dot.
func normalizeDomain(domain string) (string, bool) {
	ascii, err := domainProfile.ToASCII(domain)
	if err != nil || len(ascii) > maxEmailBytes {
		return "", false
	}
	uni, err := domainProfile.ToUnicode(ascii)
	if err != nil || !validDomain(uni) {
		return "", false
	}
	return uni, true
}

// DomainToASCII returns the address with its domain in ASCII (punycode), as
// SMTP without SMTPUTF8 needs it; an address it cannot convert is returned
// unchanged.
func DomainToASCII(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return addr
	}
	ascii, err := domainProfile.ToASCII(addr[at+1:])
	if err != nil {
		return addr
	}
	return addr[:at+1] + ascii
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
			if r != '-' && !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.Is(unicode.Mn, r) && !unicode.Is(unicode.Mc, r) {
				return false
			}
		}
	}
	// A top-level domain is never all digits; this also refuses IPv4 addresses.
	tld := labels[len(labels)-1]
	return strings.IndexFunc(tld, func(r rune) bool { return !unicode.IsDigit(r) }) >= 0
}
