package main

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

// outageTimeout is mongodb.timeout in the outage tests: the bound every
// answer must keep during an outage, plus outageSlack for the hash and HTTP.
const (
	outageTimeout = 1500 * time.Millisecond
	outageSlack   = time.Second
)

// TestOutagePasswordEndpointsFailFast: with the database cut off, password
// endpoints called in parallel answer 503 unavailable within mongodb.timeout
// as every other endpoint does, not after waiting for a hashing slot held
// by other requests through their own timeouts, and never 503 overloaded.
// One hashing slot makes the queue long.
func TestOutagePasswordEndpointsFailFast(t *testing.T) {
	t.Parallel()
	db := testkit.StartDB(t)
	proxy, uri := testkit.StartProxy(t, db.URI)
	g := testkit.Start(t, run, testkit.StartSMTP(t), testkit.Options{MongoURI: uri, Env: map[string]string{
		"GATEHOUSE_MONGODB_TIMEOUT":                outageTimeout.String(),
		"GATEHOUSE_SESSION_CACHE_TTL":              "0s",
		"GATEHOUSE_PASSWORD_ARGON2_MAX_CONCURRENT": "1",
		"GATEHOUSE_PASSWORD_ARGON2_MAX_WAIT":       "20s",
		"GATEHOUSE_SERVER_REQUEST_TIMEOUT":         "60s",
	}})
	signedIn, email := testkit.NewUser(t, g, faultPW)

	proxy.Cut()
	type call struct {
		name string
		do   func() (*testkit.Response, error)
	}
	var calls []call
	for i := range 4 {
		c := g.Client(t)
		calls = append(calls, call{fmt.Sprintf("login %d", i), func() (*testkit.Response, error) {
			return c.TryJSON(http.MethodPost, "/api/v1/login", map[string]string{"email": email, "password": faultPW})
		}})
	}
	for i := range 2 {
		c := g.Client(t)
		calls = append(calls, call{fmt.Sprintf("signup %d", i), func() (*testkit.Response, error) {
			return c.TryJSON(http.MethodPost, "/api/v1/signup", map[string]string{"email": testkit.Email(t), "password": faultPW})
		}})
	}
	page := g.Client(t)
	calls = append(calls,
		call{"login form", func() (*testkit.Response, error) {
			return page.TryForm("/login", url.Values{"email": {email}, "password": {faultPW}})
		}},
		call{"password change", func() (*testkit.Response, error) {
			return signedIn.TryJSON(http.MethodPost, "/api/v1/password/change", map[string]string{"current_password": faultPW, "new_password": faultPW + " again"})
		}},
		call{"forgot", func() (*testkit.Response, error) {
			return g.Client(t).TryJSON(http.MethodPost, "/api/v1/password/forgot", map[string]string{"email": email})
		}},
	)

	type result struct {
		name string
		r    *testkit.Response
		err  error
		took time.Duration
	}
	results := make([]result, len(calls))
	var wg sync.WaitGroup
	for i, c := range calls {
		wg.Go(func() {
			began := time.Now()
			r, err := c.do()
			results[i] = result{c.name, r, err, time.Since(began)}
		})
	}
	wg.Wait()
	var took []time.Duration
	for _, res := range results {
		if res.err != nil {
			t.Errorf("%s: %v", res.name, res.err)
			continue
		}
		took = append(took, res.took)
		t.Logf("%s during the outage: %d %s after %s", res.name, res.r.Status, res.r.ErrorCode(), res.took.Round(time.Millisecond))
		if res.r.Status != http.StatusServiceUnavailable {
			t.Errorf("%s: status %d; want 503\n%s", res.name, res.r.Status, res.r.Body)
		}
		if strings.HasPrefix(res.r.Header.Get("Content-Type"), "application/json") && res.r.ErrorCode() != "unavailable" {
			t.Errorf("%s: code %q; want unavailable (not overloaded)", res.name, res.r.ErrorCode())
		}
		if res.r.Header.Get("Retry-After") == "" {
			t.Errorf("%s: no Retry-After", res.name)
		}
		if res.took > outageTimeout+outageSlack {
			t.Errorf("%s: answered after %s; want within mongodb.timeout %s (+%s)", res.name, res.took.Round(time.Millisecond), outageTimeout, outageSlack)
		}
	}
	slices.Sort(took)
	if len(took) > 0 {
		t.Logf("answers during the outage: median %s, max %s (mongodb.timeout %s)", took[len(took)/2].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond), outageTimeout)
	}

	proxy.Restore()
	faultEventually(t, 15*time.Second, "login after the database returned", func() (bool, string) {
		r, err := g.Client(t).TryJSON(http.MethodPost, "/api/v1/login", map[string]string{"email": email, "password": faultPW})
		if err != nil {
			return false, err.Error()
		}
		return r.Status == http.StatusOK, fmt.Sprintf("status %d", r.Status)
	})
}

// TestOutageStorageRefusesWrites: a database that answers but cannot write
// (a full disk, a read-only file system, a primary stepping down) gets 503
// with Retry-After on the pages and the API, never 500, and the service
// resumes by itself when writes work again.
func TestOutageStorageRefusesWrites(t *testing.T) {
	t.Parallel()
	db := testkit.StartDB(t)
	proxy, uri := testkit.StartProxy(t, db.URI)
	g := testkit.Start(t, run, testkit.StartSMTP(t), testkit.Options{MongoURI: uri, Env: map[string]string{
		"GATEHOUSE_SESSION_CACHE_TTL": "0s",
	}})
	_, email := testkit.NewUser(t, g, faultPW)

	refusals := []struct {
		name     string
		code     int32
		codeName string
		message  string
	}{
		{"FerretDB on a full disk", 1, "InternalError", "database or disk is full (13)"},
		{"FerretDB on a read-only file system", 1, "InternalError", "attempt to write a readonly database (8)"},
		{"MongoDB out of disk space", 14031, "OutOfDiskSpace", "Out of disk space"},
	}
	for _, rf := range refusals {
		t.Run(rf.name, func(t *testing.T) {
			proxy.RefuseWrites(rf.code, rf.codeName, rf.message)
			c := g.Client(t)
			checks := []struct {
				name string
				do   func() *testkit.Response
				html bool
			}{
				{"API signup", func() *testkit.Response {
					return c.PostJSON("/api/v1/signup", map[string]string{"email": testkit.Email(t), "password": faultPW})
				}, false},
				{"API login", func() *testkit.Response { return c.Login(email, faultPW) }, false},
				{"API forgot", func() *testkit.Response {
					return c.PostJSON("/api/v1/password/forgot", map[string]string{"email": email})
				}, false},
				{"signup form", func() *testkit.Response {
					return c.PostForm("/signup", url.Values{"email": {testkit.Email(t)}, "password": {faultPW}})
				}, true},
				{"login form", func() *testkit.Response {
					return c.PostForm("/login", url.Values{"email": {email}, "password": {faultPW}})
				}, true},
			}
			for _, ck := range checks {
				r := ck.do()
				if r.Status != http.StatusServiceUnavailable {
					t.Errorf("%s: status %d; want 503\n%s", ck.name, r.Status, r.Body)
					continue
				}
				if r.Header.Get("Retry-After") == "" {
					t.Errorf("%s: 503 without Retry-After", ck.name)
				}
				if !ck.html && r.ErrorCode() != "unavailable" {
					t.Errorf("%s: code %q; want unavailable", ck.name, r.ErrorCode())
				}
			}
			proxy.AcceptWrites()
			if r := g.Client(t).Login(email, faultPW); r.Status != http.StatusOK {
				t.Errorf("login once writes work again: %d %s; want 200", r.Status, r.Body)
			}
		})
	}
}
