package accounts

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// emailSeeds are the inputs of the NormalizeEmail table, shared with the
// fuzz corpus.
var emailSeeds = []string{
	"user@example.com",
	"  User.Name+tag@Example.COM \t",
	"Jos\u0065\u0301@example.com",
	"jos\u00e9@example.com",
	"J\u030cosh@example.com",
	"\u0386\u0345@example.com",
	"\u00e9l\u00e8ve@\u00e9cole.example",
	"o'brien@example.co.uk",
	"a@b.co",
	"user\r\n@example.com",
	"user@example.com\r\nBcc: x@evil.example",
	"user@exa\nmple.com",
	"us\x00er@example.com",
	"us\ter@example.com",
	"us er@example.com",
	"user@exa mple.com",
	"Bob <bob@example.com>",
	"bob@example.com <bob@example.com>",
	`"bob"@example.com`,
	`"bob smith"@example.com`,
	"bob(comment)@example.com",
	"userexample.com",
	"",
	"@example.com",
	"user@",
	"a@b@example.com",
	"user@localhost",
	"user@[127.0.0.1]",
	"user@127.0.0.1",
	"user@[IPv6:::1]",
	strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 57) + ".com",
	strings.Repeat("a", 64) + "@example.com",
	strings.Repeat("a", 65) + "@example.com",
	".user@example.com",
	"user.@example.com",
	"us..er@example.com",
	"user@.example.com",
	"user@example.com.",
	"user@example..com",
	"user@-example.com",
	"user@example-.com",
	"user@exa_mple.com",
	"user\xff@example.com",
	"user@exam\xc3ple.com",
	"user\u202e@example.com",
	"user\u200b@example.com",
	"user\u2028@example.com",
	"user@example.com\u00a0",
	"user,other@example.com",
	"user;x@example.com",
	`us\er@example.com`,
	"user@example.123",
	"user@b\u00fccher.example",
	"USER@XN--BCHER-KVA.EXAMPLE",
	"\u212aevin@example.com",
	"\u0130nci@example.com",
	"stra\u00dfe@example.com",
	"\uff21bc@example.com",
	"abc@\uff45xample.com",
	"user@xn--.example",
	"user@xn--a-ecp.example",
	"a\u037eb@example.com",
}

func TestNormalizeEmail(t *testing.T) {
	t.Parallel()
	local254 := strings.Repeat("a", 64) + "@" + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 57) + ".com"
	if len(local254) != 254 {
		t.Fatalf("test setup: address is %d bytes; want 254", len(local254))
	}
	accepted := []struct {
		name, in, want string
	}{
		{"plain", "user@example.com", "user@example.com"},
		{"trim and lower case", "  User.Name+tag@Example.COM \t", "user.name+tag@example.com"},
		{"decomposed é becomes NFC", "Jos\u0065\u0301@example.com", "jos\u00e9@example.com"},
		{"composed é unchanged", "jos\u00e9@example.com", "jos\u00e9@example.com"},
		// Lower-casing can undo NFC: J + combining caron lower-cases to j +
		// caron, whose composed form is U+01F0. The stored form must be NFC.
		{"lower case then NFC", "J\u030cosh@example.com", "\u01f0osh@example.com"},
		{"internationalized domain", "\u00c9l\u00e8ve@\u00c9cole.example", "\u00e9l\u00e8ve@\u00e9cole.example"},
		{"apostrophe", "o'brien@example.co.uk", "o'brien@example.co.uk"},
		{"short", "a@b.co", "a@b.co"},
		{"exactly 254 bytes", local254, local254},
		{"IDN domain in Unicode", "user@B\u00dcCHER.example", "user@b\u00fccher.example"},
		{"IDN domain in punycode, any case", "USER@XN--BCHER-KVA.EXAMPLE", "user@b\u00fccher.example"},
		{"fullwidth domain maps as DNS does", "abc@\uff45xample.com", "abc@example.com"},
		{"sharp s stays (not ss)", "stra\u00dfe@example.com", "stra\u00dfe@example.com"},
		{"fullwidth local part stays non-ASCII", "\uff21bc@example.com", "\uff41bc@example.com"},
		{"local part of 64 bytes", strings.Repeat("a", 64) + "@example.com", strings.Repeat("a", 64) + "@example.com"},
	}
	for _, tt := range accepted {
		t.Run("accepted/"+tt.name, func(t *testing.T) {
			got, err := NormalizeEmail(tt.in)
			if err != nil {
				t.Fatalf("NormalizeEmail(%+q) error %v; want %+q", tt.in, err, tt.want)
			}
			if got != tt.want {
				t.Errorf("NormalizeEmail(%+q) = %+q; want %+q", tt.in, got, tt.want)
			}
		})
	}

	refused := []struct {
		name, in string
	}{
		{"CR LF", "user\r\n@example.com"},
		{"header injection", "user@example.com\r\nBcc: x@evil.example"},
		{"LF in domain", "user@exa\nmple.com"},
		{"CR alone", "user@example.com\rx"},
		{"NUL", "us\x00er@example.com"},
		{"tab inside", "us\ter@example.com"},
		{"space in local part", "us er@example.com"},
		{"space in domain", "user@exa mple.com"},
		{"no-break space inside", "us\u00a0er@example.com"},
		{"display name", "Bob <bob@example.com>"},
		{"address twice", "bob@example.com <bob@example.com>"},
		{"quoted local part", `"bob"@example.com`},
		{"quoted with space", `"bob smith"@example.com`},
		{"comment", "bob(comment)@example.com"},
		{"no @", "userexample.com"},
		{"empty", ""},
		{"only spaces", "   "},
		{"empty local part", "@example.com"},
		{"empty domain", "user@"},
		{"two @", "a@b@example.com"},
		{"two @ both sides dotted", "a@b.co@example.com"},
		{"no dot in domain", "user@localhost"},
		{"IP literal", "user@[127.0.0.1]"},
		{"IPv4 as domain", "user@127.0.0.1"},
		{"IPv6 literal", "user@[IPv6:::1]"},
		{"numeric top-level domain", "user@example.123"},
		{"255 bytes", "a" + local254},
		{"far too long", strings.Repeat("a", 5000) + "@example.com"},
		{"local part of 65 bytes", strings.Repeat("a", 65) + "@example.com"},
		{"label over 63 bytes", "user@" + strings.Repeat("b", 64) + ".com"},
		{"leading dot", ".user@example.com"},
		{"trailing dot in local part", "user.@example.com"},
		{"double dot in local part", "us..er@example.com"},
		{"leading dot in domain", "user@.example.com"},
		{"trailing dot in domain", "user@example.com."},
		{"empty label", "user@example..com"},
		{"label starts with hyphen", "user@-example.com"},
		{"label ends with hyphen", "user@example-.com"},
		{"underscore in domain", "user@exa_mple.com"},
		{"invalid UTF-8 in local part", "user\xff@example.com"},
		{"invalid UTF-8 in domain", "user@exam\xc3ple.com"},
		{"right-to-left override", "user\u202e@example.com"},
		{"zero-width space", "user\u200b@example.com"},
		{"line separator", "user\u2028@example.com"},
		{"comma", "user,other@example.com"},
		{"semicolon", "user;x@example.com"},
		{"backslash", `us\er@example.com`},
		// A non-ASCII local part must never become someone's ASCII one.
		{"Kelvin sign (case folds and is canonically K)", "\u212aevin@example.com"},
		{"capital I with dot (lower-cases to i)", "\u0130nci@example.com"},
		{"Greek question mark (canonically ;)", "a\u037eb@example.com"},
		{"invalid punycode label", "user@xn--.example"},
		{"label with a hyphen in places 3-4", "user@ab--cd.example"},
	}
	for _, tt := range refused {
		t.Run("refused/"+tt.name, func(t *testing.T) {
			got, err := NormalizeEmail(tt.in)
			if !errors.Is(err, ErrInvalidEmail) {
				t.Errorf("NormalizeEmail(%+q) = %+q, %v; want ErrInvalidEmail", tt.in, got, err)
			}
			if err != nil && got != "" {
				t.Errorf("NormalizeEmail(%+q) returned %+q with its error; want \"\"", tt.in, got)
			}
		})
	}
}

// checkNormalized states what a normalized address is: "" when s is one,
// otherwise what is wrong with it.
func checkNormalized(s string) string {
	switch {
	case !utf8.ValidString(s):
		return "not valid UTF-8"
	case len(s) > 254:
		return "longer than 254 bytes"
	case strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }):
		return "contains a control character or a space"
	case strings.ContainsAny(s, "<>\"()"):
		return "contains a display-name or quoting character"
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 {
		return "has no local part"
	}
	local, domain := s[:at], s[at+1:]
	switch {
	case strings.Contains(local, "@"):
		return "has more than one @"
	case len(local) > 64:
		return "local part longer than 64 bytes"
	case strings.Contains(domain, "@"):
		return "domain contains @"
	case !strings.Contains(domain, "."):
		return "domain has no dot"
	case strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, ".."):
		return "domain has an empty label"
	}
	return ""
}

// FuzzNormalizeEmail checks for any input: no panic; a normalized address
// is stable (normalizing it again changes nothing), has no control
// characters or spaces, fits 254 bytes, and splits at its only @ into a
// local part and a dotted domain.
func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range emailSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := NormalizeEmail(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidEmail) {
				t.Fatalf("NormalizeEmail(%+q) error %v; want ErrInvalidEmail", in, err)
			}
			return
		}
		if problem := checkNormalized(got); problem != "" {
			t.Fatalf("NormalizeEmail(%+q) = %+q: %s", in, got, problem)
		}
		if at := strings.LastIndexByte(strings.TrimSpace(in), "@"[0]); at >= 0 {
			inLocal := strings.TrimSpace(in)[:at]
			outLocal := got[:strings.LastIndexByte(got, '@')]
			if countASCII(outLocal) > countASCII(inLocal) {
				t.Fatalf("NormalizeEmail(%+q) = %+q: a non-ASCII character of the local part became ASCII", in, got)
			}
		}
		again, err := NormalizeEmail(got)
		if err != nil {
			t.Fatalf("NormalizeEmail(%+q) = %+q, which is then refused: %v", in, got, err)
		}
		if again != got {
			t.Fatalf("NormalizeEmail is not idempotent: %+q -> %+q -> %+q", in, got, again)
		}
	})
}
