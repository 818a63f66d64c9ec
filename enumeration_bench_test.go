package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

// BenchmarkEnumerationTiming measures, for each endpoint that takes an
// address, how long it answers for an address with an account (or a pending
// signup) and for an unknown one, in interleaved pairs, and reports the
// medians and their difference (EN-1, EN-3: a probe must not tell them
// apart by time). Run it with
//
//	go test -run '^$' -bench EnumerationTiming -benchtime 60x .
//
// -benchtime Nx sets the number of pairs per endpoint.
func BenchmarkEnumerationTiming(b *testing.B) {
	g := start(b, map[string]string{
		"GATEHOUSE_RATE_LIMITS_PER_ADDRESS":   "100000",
		"GATEHOUSE_RATE_LIMITS_LOCKOUT_AFTER": "1000000",
	})
	const pw = "a benchmark passphrase"
	_, user := testkit.NewUser(b, g, pw)
	pending := testkit.Email(b)
	g.Client(b).SignUp(g, pending, pw)
	// One unknown address per endpoint, asked as often as the known one:
	// per-address state (the lockout's count, the mail quota) then differs
	// only by whether the account exists.
	unknown := fmt.Sprintf("nobody-%d@example.com", time.Now().UnixNano())

	endpoints := []struct {
		name  string
		known string
		body  func(email string) map[string]string
		path  string
	}{
		{"forgot", user, func(e string) map[string]string { return map[string]string{"email": e} }, "/api/v1/password/forgot"},
		{"resend", pending, func(e string) map[string]string { return map[string]string{"email": e} }, "/api/v1/verify/resend"},
		{"login", user, func(e string) map[string]string {
			return map[string]string{"email": e, "password": "a wrong passphrase!"}
		}, "/api/v1/login"},
		{"signup", user, func(e string) map[string]string { return map[string]string{"email": e, "password": pw} }, "/api/v1/signup"},
	}
	c := g.Client(b)
	timed := func(path string, body map[string]string) time.Duration {
		began := time.Now()
		r := c.PostJSON(path, body)
		d := time.Since(began)
		if r.Status >= 500 {
			b.Fatalf("%s: %d %s", path, r.Status, r.Body)
		}
		return d
	}
	b.ResetTimer()
	var report []string
	for _, ep := range endpoints {
		var known, other []time.Duration
		for i := range b.N {
			if ep.name == "signup" {
				// A signup makes its address pending: a fresh one each time.
				unknown = fmt.Sprintf("fresh-%d-%d@example.com", time.Now().UnixNano(), i)
			}
			// Alternate which goes first, so drift hits both alike.
			if i%2 == 0 {
				known = append(known, timed(ep.path, ep.body(ep.known)))
				other = append(other, timed(ep.path, ep.body(unknown)))
			} else {
				other = append(other, timed(ep.path, ep.body(unknown)))
				known = append(known, timed(ep.path, ep.body(ep.known)))
			}
		}
		mk, mu := median(known), median(other)
		diff := mk - mu
		b.ReportMetric(ms(mk), ep.name+"-known-p50-ms")
		b.ReportMetric(ms(mu), ep.name+"-unknown-p50-ms")
		b.ReportMetric(ms(diff), ep.name+"-diff-ms")
		report = append(report, fmt.Sprintf("%-7s known p50 %7.2f ms  unknown p50 %7.2f ms  difference %+6.2f ms  (%d pairs)", ep.name, ms(mk), ms(mu), ms(diff), b.N))
	}
	b.Log("\n" + strings.Join(report, "\n"))
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
