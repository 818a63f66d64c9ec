package main

// Black-box tests of the password policy and its storage (PW-1..4).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

// acctStoredHash reads the password hash of a user straight from the database.
func acctStoredHash(tb testing.TB, uri, database, email string) string {
	tb.Helper()
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetTimeout(10 * time.Second))
	if err != nil {
		tb.Fatalf("connect to the database: %v", err)
	}
	defer client.Disconnect(context.Background())
	var doc struct {
		PasswordHash string `bson:"password_hash"`
	}
	err = client.Database(database).Collection("users").FindOne(context.Background(), bson.D{{Key: "email", Value: email}}).Decode(&doc)
	if err != nil {
		tb.Fatalf("find user %s: %v", email, err)
	}
	return doc.PasswordHash
}

// TestAccountPasswordLength is PW-1: length counted in code points, 12 to
// 128 by default, over 1 KiB refused.
func TestAccountPasswordLength(t *testing.T) {
	t.Parallel()
	g := acctStart(t, nil)
	noMail := acctNoMail(t, g)
	cases := []struct {
		name  string
		pw    string
		runes int
		ok    bool
		msg   string
	}{
		{"11 ASCII", "kq7vz2mw9xh", 11, false, "at least 12"},
		{"12 ASCII", "kq7vz2mw9xhp", 12, true, ""},
		{"11 code points in 21 bytes", "éééééééééé1", 11, false, "at least 12"},
		{"12 code points in 23 bytes", "ééééééééééé1", 12, true, ""},
		{"128 code points in 509 bytes", strings.Repeat("🔑", 127) + "x", 128, true, ""},
		{"128 ASCII", strings.Repeat("kq7vz2mw9x", 13)[:128], 128, true, ""},
		{"129 ASCII", strings.Repeat("kq7vz2mw9x", 13)[:129], 129, false, "at most 128"},
		{"129 code points", strings.Repeat("🔑", 128) + "x", 129, false, "at most 128"},
		{"over 1 KiB", strings.Repeat("kq7vz2mw9x", 110), 1100, false, "at most 128"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if n := utf8.RuneCountInString(tc.pw); n != tc.runes {
				t.Fatalf("test data: %d code points; want %d", n, tc.runes)
			}
			c := g.Client(t)
			email := acctEmail("pw1")
			r := c.PostJSON("/api/v1/signup", map[string]string{"email": email, "password": tc.pw})
			if !tc.ok {
				testkit.WantAPIError(t, "signup", r, http.StatusBadRequest, "weak_password")
				if msg := string(r.Body); !strings.Contains(msg, tc.msg) {
					t.Errorf("signup refusal %s; want it to say %q", msg, tc.msg)
				}
				page := acctForm(t, c, "/signup", "email", email, "password", tc.pw)
				acctWant(t, "POST /signup", page, http.StatusBadRequest)
				acctWantText(t, "POST /signup", page, tc.msg)
				noMail.add(email)
				return
			}
			acctWant(t, "signup", r, http.StatusAccepted)
			m := g.SMTP.WaitMail(t, email, 1, acctMailWait)
			acctWant(t, "verify", c.Verify(m.Token(t), tc.pw), http.StatusOK)
			acctWant(t, "login", g.Client(t).Login(email, tc.pw), http.StatusOK)
		})
	}

	// Sign-in and verification refuse an oversize password without a 5xx,
	// and the refusal does not use up the link.
	t.Run("over 1 KiB on login and verify", func(t *testing.T) {
		t.Parallel()
		huge := strings.Repeat("kq7vz2mw9x", 110)
		c := g.Client(t)
		email := acctEmail("pw1")
		m := c.SignUp(g, email, acctPassword)
		for _, r := range []*testkit.Response{c.Login(email, huge), c.Verify(m.Token(t), huge), g.Client(t).Login(acctEmail("pw1"), huge)} {
			if r.Status != http.StatusBadRequest && r.Status != http.StatusUnauthorized {
				t.Errorf("oversize password: got %d; want 400 or 401\n%s", r.Status, r.Body)
			}
		}
		acctWant(t, "verify after the oversize attempt", c.Verify(m.Token(t), acctPassword), http.StatusOK)
	})
}

// TestAccountPasswordMinLengthConfig: password.min_length lowers the minimum
// to 8 and the forms say so.
func TestAccountPasswordMinLengthConfig(t *testing.T) {
	t.Parallel()
	g := acctStart(t, map[string]string{"GATEHOUSE_PASSWORD_MIN_LENGTH": "8"})
	c := g.Client(t)
	r := c.PostJSON("/api/v1/signup", map[string]string{"email": acctEmail("min8"), "password": "kq7vz2m"})
	testkit.WantAPIError(t, "signup with 7 characters", r, http.StatusBadRequest, "weak_password")
	if !strings.Contains(string(r.Body), "at least 8") {
		t.Errorf("refusal %s; want it to say at least 8", r.Body)
	}
	email := acctEmail("min8")
	m := c.SignUp(g, email, "kq7vz2mw")
	acctWant(t, "verify with 8 characters", c.Verify(m.Token(t), "kq7vz2mw"), http.StatusOK)
	acctWantText(t, "GET /signup", c.Get("/signup"), `minlength="8"`)
}

// TestAccountPasswordMinLengthFloor: a minimum below 8 stops the program at
// startup with a message naming the key (PW-1).
func TestAccountPasswordMinLengthFloor(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"7", "0"} {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			cfg := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(cfg, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			env := map[string]string{
				"GATEHOUSE_PASSWORD_MIN_LENGTH": v,
				"GATEHOUSE_DATA_DIR":            t.TempDir(),
				"GATEHOUSE_SERVER_ADDRESS":      "127.0.0.1:0",
			}
			// If the value were accepted, run would serve until the deadline.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var out testkit.SyncBuffer
			err := run(ctx, []string{"-config", cfg}, func(k string) string { return env[k] }, &out)
			if err == nil || !strings.Contains(err.Error(), "password.min_length") {
				t.Errorf("run with min_length %s: got %v; want an error naming password.min_length", v, err)
			}
		})
	}
}

// TestAccountPasswordNoTruncation is PW-2: a 100-character password is used
// whole, so no prefix of it (bcrypt's 72 bytes) signs in.
func TestAccountPasswordNoTruncation(t *testing.T) {
	t.Parallel()
	g := acctStart(t, nil)
	pw := strings.Repeat("seven pale owls guard the quiet harbor ", 3)[:100]
	email := acctEmail("pw2")
	acctNewUser(t, g, email, pw)
	for _, p := range []string{pw[:72], pw[:99], pw + "!"} {
		testkit.WantAPIError(t, fmt.Sprintf("login with %d of the 100 characters", len(p)), g.Client(t).Login(email, p), http.StatusUnauthorized, "invalid_credentials")
	}
	acctWant(t, "login with the whole password", g.Client(t).Login(email, pw), http.StatusOK)
}

// TestAccountPasswordPolicy is PW-3: common passwords and the user's own
// address are refused; no composition rules; any Unicode works.
func TestAccountPasswordPolicy(t *testing.T) {
	t.Parallel()
	g := acctStart(t, nil)
	noMail := acctNoMail(t, g)
	refused := []struct {
		name string
		pw   func(email string) string
		msg  string
	}{
		{"common", func(string) string { return "password1234" }, "too common"},
		{"common in other case", func(string) string { return "PassWord1234" }, "too common"},
		{"common digits", func(string) string { return "012345678910" }, "too common"},
		{"the address", func(e string) string { return e }, "email address"},
		{"the address inside", func(e string) string { return "my " + e + " pw" }, "email address"},
		{"the address in capitals", func(e string) string { return "MY " + strings.ToUpper(e) }, "email address"},
	}
	for _, tc := range refused {
		t.Run("refused/"+tc.name, func(t *testing.T) {
			t.Parallel()
			c := g.Client(t)
			email := acctEmail("pw3")
			r := c.PostJSON("/api/v1/signup", map[string]string{"email": email, "password": tc.pw(email)})
			testkit.WantAPIError(t, "signup", r, http.StatusBadRequest, "weak_password")
			if !strings.Contains(string(r.Body), tc.msg) {
				t.Errorf("refusal %s; want it to say %q", r.Body, tc.msg)
			}
			page := acctForm(t, c, "/signup", "email", email, "password", tc.pw(email))
			acctWant(t, "POST /signup", page, http.StatusBadRequest)
			acctWantText(t, "POST /signup", page, tc.msg)
			noMail.add(email)
		})
	}
	accepted := map[string]string{
		"lower case words only": "correct horse battery staple",
		"emoji and Cyrillic":    "🔐 мой пароль 🐎 лошадь",
		"CJK":                   "正しい馬のバッテリー留め金",
		"right-to-left":         "كلمة مرور طويلة جدا",
	}
	for name, pw := range accepted {
		t.Run("accepted/"+name, func(t *testing.T) {
			t.Parallel()
			email := acctEmail("pw3")
			acctNewUser(t, g, email, pw)
			acctWant(t, "login", g.Client(t).Login(email, pw), http.StatusOK)
			testkit.WantAPIError(t, "login with a different password", g.Client(t).Login(email, pw+"x"), http.StatusUnauthorized, "invalid_credentials")
		})
	}
}

var acctPHC = regexp.MustCompile(`^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$([A-Za-z0-9+/]{22,})\$([A-Za-z0-9+/]{43,})$`)

// TestAccountPasswordHashStorage is PW-4 as stored: argon2id PHC strings with
// OWASP's cost and a unique salt, upgraded at the next sign-in when the
// configured cost rises, and only then.
func TestAccountPasswordHashStorage(t *testing.T) {
	t.Parallel()
	db := testkit.StartDB(t)
	g := acctStartWith(t, testkit.Options{MongoURI: db.URI})
	a, b := acctEmail("hash"), acctEmail("hash")
	acctNewUser(t, g, a, acctPassword)
	acctNewUser(t, g, b, acctPassword)

	ha, hb := acctStoredHash(t, db.URI, g.Database, a), acctStoredHash(t, db.URI, g.Database, b)
	pa, pb := acctPHC.FindStringSubmatch(ha), acctPHC.FindStringSubmatch(hb)
	if pa == nil || pb == nil {
		t.Fatalf("stored hashes %q, %q; want argon2id PHC strings", ha, hb)
	}
	if !strings.HasPrefix(ha, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("stored hash %q; want $argon2id$v=19$m=19456,t=2,p=1$…", ha)
	}
	if pa[4] == pb[4] || pa[5] == pb[5] {
		t.Errorf("two users with one password: salts %s, %s; want different salts and hashes", pa[4], pb[4])
	}
	if strings.Contains(ha, acctPassword) {
		t.Error("the stored hash contains the password")
	}

	// A restart with a higher memory cost upgrades a hash at its next sign-in.
	if err := g.Stop(t); err != nil {
		t.Fatalf("stop gateway: %v", err)
	}
	g2 := acctStartWith(t, testkit.Options{MongoURI: db.URI, Database: g.Database,
		Env: map[string]string{"GATEHOUSE_PASSWORD_ARGON2_MEMORY_KIB": "20480"}})
	testkit.WantAPIError(t, "login with a wrong password", g2.Client(t).Login(b, acctWrongPW), http.StatusUnauthorized, "invalid_credentials")
	if got := acctStoredHash(t, db.URI, g.Database, b); got != hb {
		t.Errorf("a failed login changed the stored hash: %q; want %q", got, hb)
	}
	acctWant(t, "login after the cost rose", g2.Client(t).Login(a, acctPassword), http.StatusOK)
	ha2 := acctStoredHash(t, db.URI, g.Database, a)
	if !strings.HasPrefix(ha2, "$argon2id$v=19$m=20480,t=2,p=1$") || acctPHC.FindStringSubmatch(ha2) == nil {
		t.Errorf("hash after login with the higher cost = %q; want $argon2id$v=19$m=20480,t=2,p=1$…", ha2)
	}
	acctWant(t, "login with the upgraded hash", g2.Client(t).Login(a, acctPassword), http.StatusOK)
	testkit.WantAPIError(t, "wrong password against the upgraded hash", g2.Client(t).Login(a, acctWrongPW), http.StatusUnauthorized, "invalid_credentials")
}

// TestAccountPasswordHashingBounded is PW-4's bound: with one hash at a time
// and one waiter, a burst of sign-ins gets fast 503 overloaded answers with
// Retry-After, never a 500.
func TestAccountPasswordHashingBounded(t *testing.T) {
	t.Parallel()
	g := acctStart(t, map[string]string{
		"GATEHOUSE_PASSWORD_ARGON2_MAX_CONCURRENT": "1",
		"GATEHOUSE_PASSWORD_ARGON2_MAX_WAITING":    "1",
		"GATEHOUSE_PASSWORD_ARGON2_MAX_WAIT":       "100ms",
	})
	email := acctEmail("flood")
	acctNewUser(t, g, email, acctPassword)

	const n = 30
	body, _ := json.Marshal(map[string]string{"email": email, "password": acctPassword})
	type result struct {
		status     int
		code       string
		retryAfter string
		err        error
	}
	results := make([]result, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 30 * time.Second}
	for i := range n {
		wg.Go(func() {
			<-start
			req, _ := http.NewRequest(http.MethodPost, g.URL+"/api/v1/login", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Sec-Fetch-Site", "same-origin")
			resp, err := client.Do(req)
			if err != nil {
				results[i].err = err
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			r := &testkit.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
			results[i] = result{status: r.Status, code: r.ErrorCode(), retryAfter: r.Header.Get("Retry-After")}
		})
	}
	close(start)
	wg.Wait()

	counts := map[int]int{}
	for _, r := range results {
		if r.err != nil {
			t.Errorf("login: %v", r.err)
			continue
		}
		counts[r.status]++
		switch r.status {
		case http.StatusOK:
		case http.StatusServiceUnavailable:
			if r.code != "overloaded" || r.retryAfter == "" {
				t.Errorf("503 with code %q, Retry-After %q; want overloaded with a Retry-After", r.code, r.retryAfter)
			}
		default:
			t.Errorf("login under load: got %d %q; want 200 or 503", r.status, r.code)
		}
	}
	t.Logf("statuses of %d concurrent logins: %v", n, counts)
	if counts[http.StatusServiceUnavailable] == 0 {
		t.Errorf("no login of %d was turned away; want some 503 overloaded", n)
	}
	if counts[http.StatusOK] == 0 {
		t.Errorf("no login of %d succeeded; want the hashing slot to serve some", n)
	}
}
