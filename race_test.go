package main

// Races: parallel signups, verifications, resets and guesses (RL-3, TK-2, AB-1).

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

// faultLiveToken reports whether the verification page accepts a token;
// GET never consumes it (TK-5).
func faultLiveToken(tb testing.TB, c *testkit.Client, token string) bool {
	tb.Helper()
	r := c.Get("/verify?token=" + url.QueryEscape(token))
	switch r.Status {
	case http.StatusOK:
		return true
	case http.StatusBadRequest:
		return false
	}
	tb.Fatalf("GET /verify: status %d; want 200 or 400\n%s", r.Status, r.Body)
	return false
}

// faultOneAccount checks what RL-3 promises after parallel signups of email
// with passwords: of the mailed links exactly one is live; it verifies with
// one of the passwords, which is then the only one that signs in, and every
// other link is dead. Between minMails and maxMails verification mails
// must have been sent.
func faultOneAccount(t *testing.T, g *testkit.Gateway, email string, passwords []string, minMails, maxMails int) {
	t.Helper()
	mails := faultSettledMails(t, g, email, faultVerifySubject)
	if len(mails) < minMails || len(mails) > maxMails {
		t.Fatalf("got %d verification mails; want %d to %d", len(mails), minMails, maxMails)
	}
	t.Logf("%d verification mails for %d signups", len(mails), len(passwords))
	c := g.Client(t)
	var live []string
	var dead []string
	for _, m := range mails {
		if tok := m.Token(t); faultLiveToken(t, c, tok) {
			live = append(live, tok)
		} else {
			dead = append(dead, tok)
		}
	}
	if len(live) != 1 {
		t.Fatalf("got %d live verification links of %d mailed; want exactly 1 pending signup", len(live), len(mails))
	}
	winner := -1
	for i, pw := range passwords {
		r := c.Verify(live[0], pw)
		if r.Status == http.StatusOK {
			winner = i
			break
		}
		if r.Status != http.StatusUnauthorized || r.ErrorCode() != "invalid_credentials" {
			t.Fatalf("verify with password #%d: %d %s; want 200, or 401 invalid_credentials for another signup's password", i, r.Status, r.Body)
		}
	}
	if winner < 0 {
		t.Fatalf("the live link verified with none of the %d signup passwords", len(passwords))
	}
	if c.Cookie(testkit.CookieName) == nil {
		t.Errorf("verify answered 200 without a session cookie")
	}
	for _, tok := range dead {
		if r := c.Verify(tok, passwords[winner]); r.Status != http.StatusBadRequest || r.ErrorCode() != "invalid_token" {
			t.Errorf("verify with a superseded link: %d %s; want 400 invalid_token", r.Status, r.Body)
		}
	}
	if r := c.Verify(live[0], passwords[winner]); r.Status != http.StatusBadRequest || r.ErrorCode() != "invalid_token" {
		t.Errorf("verify with the used link again: %d %s; want 400 invalid_token", r.Status, r.Body)
	}
	if r := g.Client(t).Login(email, passwords[winner]); r.Status != http.StatusOK {
		t.Errorf("login with the verified password: %d %s; want 200", r.Status, r.Body)
	}
	other := passwords[(winner+1)%len(passwords)]
	if r := g.Client(t).Login(email, other); r.Status != http.StatusUnauthorized {
		t.Errorf("login with another signup's password: %d %s; want 401", r.Status, r.Body)
	}
}

// TestRaceParallelSignupsAPI: 50 parallel API signups of one address with
// different passwords give no 500 and exactly one account (RL-3).
func TestRaceParallelSignupsAPI(t *testing.T) {
	t.Parallel()
	g := start(t, nil)
	email := testkit.Email(t)
	const n = 50
	passwords := make([]string, n)
	for i := range passwords {
		passwords[i] = faultPassword(i)
	}
	res := faultParallel(n, func(i int) (*testkit.Response, error) {
		return g.Client(t).TryJSON(http.MethodPost, "/api/v1/signup", map[string]string{"email": email, "password": passwords[i]})
	})
	counts := faultTally(t, "signup", res, http.StatusAccepted, http.StatusTooManyRequests, http.StatusServiceUnavailable)
	if counts[http.StatusAccepted] == 0 {
		t.Fatalf("no signup was accepted: %v", counts)
	}
	// The default quota (one signup mail a minute per address, AB-2) allows one mail.
	faultOneAccount(t, g, email, passwords, 1, 1)
}

// TestRaceParallelSignupsForm: 30 parallel signups of one address through
// the HTML form (RL-3).
func TestRaceParallelSignupsForm(t *testing.T) {
	t.Parallel()
	g := start(t, nil)
	email := testkit.Email(t)
	const n = 30
	passwords := make([]string, n)
	for i := range passwords {
		passwords[i] = faultPassword(i)
	}
	res := faultParallel(n, func(i int) (*testkit.Response, error) {
		return g.Client(t).TryForm("/signup", url.Values{"email": {email}, "password": {passwords[i]}})
	})
	counts := faultTally(t, "signup form", res, http.StatusOK, http.StatusTooManyRequests, http.StatusServiceUnavailable)
	if counts[http.StatusOK] == 0 {
		t.Fatalf("no signup was accepted: %v", counts)
	}
	faultOneAccount(t, g, email, passwords, 1, 1)
}

// TestRaceParallelSignupsWithoutMailQuota: three waves of 17 parallel
// signups of one address, a mail interval apart (the gateway's clock moved),
// mail several links; still exactly
// one link is live and exactly one account results (RL-3, TK-4).
func TestRaceParallelSignupsWithoutMailQuota(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock()
	g := testkit.Start(t, runAt(clock), testkit.StartSMTP(t), testkit.Options{Env: map[string]string{
		"GATEHOUSE_RATE_LIMITS_MAIL_PER_HOUR": "100",
	}})
	email := testkit.Email(t)
	const waves, perWave = 3, 17
	passwords := make([]string, waves*perWave)
	for i := range passwords {
		passwords[i] = faultPassword(i)
	}
	for w := range waves {
		if w > 0 {
			g.MailBarrier(t)           // the last wave's requests are resolved
			clock.Advance(time.Minute) // past the mail interval
		}
		res := faultParallel(perWave, func(i int) (*testkit.Response, error) {
			return g.Client(t).TryJSON(http.MethodPost, "/api/v1/signup", map[string]string{"email": email, "password": passwords[w*perWave+i]})
		})
		counts := faultTally(t, fmt.Sprintf("signup wave %d", w), res, http.StatusAccepted, http.StatusTooManyRequests, http.StatusServiceUnavailable)
		if counts[http.StatusAccepted] == 0 {
			t.Fatalf("no signup of wave %d was accepted: %v", w, counts)
		}
	}
	faultOneAccount(t, g, email, passwords, 2, len(passwords))
}

// TestRaceParallelSignupsVerifiedAddress: parallel signups of an address that
// already has an account give no 500, mail no verification link and leave
// the account's password as it was (RL-3, LK-1).
func TestRaceParallelSignupsVerifiedAddress(t *testing.T) {
	t.Parallel()
	g := start(t, nil)
	_, email := testkit.NewUser(t, g, faultPW)
	const n = 20
	res := faultParallel(n, func(i int) (*testkit.Response, error) {
		return g.Client(t).TryJSON(http.MethodPost, "/api/v1/signup", map[string]string{"email": email, "password": faultPassword(i)})
	})
	faultTally(t, "signup", res, http.StatusAccepted, http.StatusTooManyRequests, http.StatusServiceUnavailable)
	g.MailBarrier(t)
	if got := len(g.SMTP.MailsWithSubject(email, faultVerifySubject)); got != 1 {
		t.Errorf("got %d verification mails; want 1 (the original signup's)", got)
	}
	if r := g.Client(t).Login(email, faultPW); r.Status != http.StatusOK {
		t.Errorf("login with the account's password: %d %s; want 200", r.Status, r.Body)
	}
	for _, i := range []int{0, n - 1} {
		if r := g.Client(t).Login(email, faultPassword(i)); r.Status != http.StatusUnauthorized {
			t.Errorf("login with a later signup's password: %d %s; want 401", r.Status, r.Body)
		}
	}
}

// TestRaceParallelVerify: 20 parallel redemptions of one verification link
// with the right password: exactly one wins and gets a session, the others
// get invalid_token, and one user exists (TK-2).
func TestRaceParallelVerify(t *testing.T) {
	t.Parallel()
	g := start(t, nil)
	email := testkit.Email(t)
	token := g.Client(t).SignUp(g, email, faultPW).Token(t)
	const n = 20
	clients := make([]*testkit.Client, n)
	for i := range clients {
		clients[i] = g.Client(t)
	}
	res := faultParallel(n, func(i int) (*testkit.Response, error) {
		return faultUntilServed(func() (*testkit.Response, error) {
			return clients[i].TryJSON(http.MethodPost, "/api/v1/verify", map[string]string{"token": token, "password": faultPW})
		})
	})
	counts := faultTally(t, "verify", res, http.StatusOK, http.StatusBadRequest)
	if counts[http.StatusOK] != 1 {
		t.Fatalf("got %d successful redemptions of one link; want exactly 1 (%v)", counts[http.StatusOK], counts)
	}
	var winner *testkit.Client
	var userID string
	for i, r := range res {
		if r.err != nil {
			continue
		}
		if r.resp.Status == http.StatusOK {
			winner = clients[i]
			userID, _ = r.resp.JSON(t)["user"].(map[string]any)["id"].(string)
			continue
		}
		if code := r.resp.ErrorCode(); code != "invalid_token" {
			t.Errorf("losing redemption #%d: code %q; want invalid_token", i, code)
		}
		if clients[i].Cookie(testkit.CookieName) != nil {
			t.Errorf("losing redemption #%d got a session cookie", i)
		}
	}
	if r := winner.Get("/api/v1/session"); r.Status != http.StatusOK {
		t.Fatalf("winner's session: %d %s; want 200", r.Status, r.Body)
	}
	login := g.Client(t)
	r := login.Login(email, faultPW)
	if r.Status != http.StatusOK {
		t.Fatalf("login after verification: %d %s; want 200", r.Status, r.Body)
	}
	if got := r.JSON(t)["user"].(map[string]any)["id"]; got != userID {
		t.Errorf("login user id = %v; want the verified user %s", got, userID)
	}
	r = login.Get("/api/v1/sessions")
	if r.Status != http.StatusOK {
		t.Fatalf("sessions: %d %s; want 200", r.Status, r.Body)
	}
	if got := len(r.JSON(t)["sessions"].([]any)); got != 2 {
		t.Errorf("user has %d sessions; want 2 (the one redemption that won and the login)", got)
	}
}

// TestRaceParallelReset: 20 parallel redemptions of one reset link with
// different new passwords: exactly one wins, and its password is the one
// that works afterwards (TK-2).
func TestRaceParallelReset(t *testing.T) {
	t.Parallel()
	g := start(t, nil)
	old, email := testkit.NewUser(t, g, faultPW)
	if r := g.Client(t).PostJSON("/api/v1/password/forgot", map[string]string{"email": email}); r.Status != http.StatusAccepted {
		t.Fatalf("forgot: %d %s; want 202", r.Status, r.Body)
	}
	token := g.SMTP.WaitSubject(t, email, faultResetSubject, faultMailWait).Token(t)
	const n = 20
	res := faultParallel(n, func(i int) (*testkit.Response, error) {
		return faultUntilServed(func() (*testkit.Response, error) {
			return g.Client(t).TryJSON(http.MethodPost, "/api/v1/password/reset", map[string]string{"token": token, "password": faultPassword(i)})
		})
	})
	counts := faultTally(t, "reset", res, http.StatusNoContent, http.StatusBadRequest)
	if counts[http.StatusNoContent] != 1 {
		t.Fatalf("got %d successful redemptions of one reset link; want exactly 1 (%v)", counts[http.StatusNoContent], counts)
	}
	winner := -1
	for i, r := range res {
		if r.err != nil {
			continue
		}
		if r.resp.Status == http.StatusNoContent {
			winner = i
		} else if code := r.resp.ErrorCode(); code != "invalid_token" {
			t.Errorf("losing redemption #%d: code %q; want invalid_token", i, code)
		}
	}
	if r := g.Client(t).Login(email, faultPassword(winner)); r.Status != http.StatusOK {
		t.Errorf("login with the winning password: %d %s; want 200", r.Status, r.Body)
	}
	if r := g.Client(t).Login(email, faultPW); r.Status != http.StatusUnauthorized {
		t.Errorf("login with the old password: %d %s; want 401", r.Status, r.Body)
	}
	if r := g.Client(t).Login(email, faultPassword((winner+1)%n)); r.Status != http.StatusUnauthorized {
		t.Errorf("login with a losing password: %d %s; want 401", r.Status, r.Body)
	}
	if r := old.Get("/api/v1/session"); r.Status != http.StatusUnauthorized {
		t.Errorf("session from before the reset: %d; want 401 (SE-5)", r.Status)
	}
}

// TestRaceParallelLoginFailures: of 20 wrong passwords guessed in
// parallel, exactly lockout_after are checked and the rest refused with 429
// before any hash, whichever ran beside which, on one instance and on three
// sharing the database; a lockout that loses concurrent failures, or admits
// guesses that all read the count at once, lets a parallel brute force run
// past it (AB-1 under the race conditions of RL-3 and RL-6).
func TestRaceParallelLoginFailures(t *testing.T) {
	t.Parallel()
	const n, lockoutAfter = 20, 5 // rate_limits.lockout_after's default
	// Eight hashing slots per instance let the guesses run side by side.
	env := map[string]string{"GATEHOUSE_PASSWORD_ARGON2_MAX_CONCURRENT": "8"}
	for _, instances := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d instances", instances), func(t *testing.T) {
			t.Parallel()
			// A stopped clock: however long the guesses take on a busy
			// machine, the first back-off step never ends during the test.
			db := testkit.StartDB(t)
			gs := []*testkit.Gateway{testkit.Start(t, runAt(testkit.NewClock()), testkit.StartSMTP(t), testkit.Options{MongoURI: db.URI, Env: env})}
			for len(gs) < instances {
				gs = append(gs, gs[0].Twin(t))
			}
			_, email := testkit.NewUser(t, gs[0], faultPW)
			res := faultParallel(n, func(i int) (*testkit.Response, error) {
				return faultUntilServed(func() (*testkit.Response, error) {
					return gs[i%len(gs)].Client(t).TryJSON(http.MethodPost, "/api/v1/login", map[string]string{"email": email, "password": faultPassword(i)})
				})
			})
			counts := faultTally(t, "wrong login", res, http.StatusUnauthorized, http.StatusTooManyRequests)
			t.Logf("parallel wrong logins on %d instances: %v", instances, counts)
			checked := counts[http.StatusUnauthorized]
			if checked != lockoutAfter {
				t.Errorf("%d of %d parallel wrong logins were checked before the lockout; want exactly %d", checked, n, lockoutAfter)
			}
			// The lockout lasts 1 s after lockout_after failures and doubles
			// with each further one, from the last attempt.
			r := gs[0].Client(t).Login(email, faultPW)
			if r.Status != http.StatusTooManyRequests {
				t.Fatalf("login with the right password after %d parallel failures: %d %s; want 429 (locked out)", checked, r.Status, r.Body)
			}
			if retry, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || retry != 1 {
				t.Errorf("Retry-After %q after %d failures; want 1 s, the lockout of %d failures", r.Header.Get("Retry-After"), checked, lockoutAfter)
			}
		})
	}
}
