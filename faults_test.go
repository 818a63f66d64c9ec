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

const (
	// faultPW is the password of the users these tests create.
	faultPW = "steady as the northern star"
	// Subjects of the verification and reset mails (case-insensitive parts).
	faultVerifySubject = "confirm"
	faultResetSubject  = "reset"
	// faultMailWait bounds the wait for one mail, retries after an outage included.
	faultMailWait = 20 * time.Second
	// faultQuick bounds the answers that must not wait for a dead
	// dependency. It is a bound on a hang, not a performance claim.
	faultQuick = 10 * time.Second
)

// faultPassword is the i-th of a set of distinct acceptable passwords.
func faultPassword(i int) string { return fmt.Sprintf("parallel pass phrase %02d", i) }

// faultResult is the outcome of one request sent from a goroutine.
type faultResult struct {
	resp *testkit.Response
	err  error
}

// faultParallel runs f(0)…f(n-1) in n goroutines released together and
// returns their results in order.
func faultParallel(n int, f func(i int) (*testkit.Response, error)) []faultResult {
	res := make([]faultResult, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			r, err := f(i)
			res[i] = faultResult{r, err}
		})
	}
	close(start)
	wg.Wait()
	return res
}

// faultUntilServed repeats a request that the gateway turned away as
// overloaded (503 "overloaded": the password-hashing queue was full and
// nothing was done, PW-4), as a client honouring Retry-After would, at most
// ten times. Parallel bursts on a busy machine can meet that bound.
func faultUntilServed(f func() (*testkit.Response, error)) (*testkit.Response, error) {
	for i := 0; ; i++ {
		r, err := f()
		if err != nil || i == 9 || !faultOverloaded(r) {
			return r, err
		}
		time.Sleep(time.Second)
	}
}

func faultOverloaded(r *testkit.Response) bool {
	return r.Status == http.StatusServiceUnavailable && r.ErrorCode() == "overloaded"
}

// faultTally fails the test for requests that were cut off or answered with
// a status outside allowed (a 500 above all), and counts the statuses.
func faultTally(tb testing.TB, what string, res []faultResult, allowed ...int) map[int]int {
	tb.Helper()
	counts := map[int]int{}
	for i, r := range res {
		if r.err != nil {
			tb.Errorf("%s #%d: %v; want an answer", what, i, r.err)
			continue
		}
		counts[r.resp.Status]++
		if !slices.Contains(allowed, r.resp.Status) {
			tb.Errorf("%s #%d: status %d; want one of %v\n%s", what, i, r.resp.Status, allowed, r.resp.Body)
		}
	}
	return counts
}

// faultEventually polls cond until it holds, failing the test after timeout
// with the last explanation cond gave.
func faultEventually(tb testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not reached within %s: %s", what, timeout, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// faultSettledMails waits for the first mail to `to` whose subject contains
// sub, then for a barrier through g (its worker has then delivered every
// mail queued before, duplicates included), and returns all of them. g
// must be the only gateway on its database.
func faultSettledMails(tb testing.TB, g *testkit.Gateway, to, sub string) []testkit.Mail {
	tb.Helper()
	g.SMTP.WaitSubject(tb, to, sub, faultMailWait)
	g.MailBarrier(tb)
	return g.SMTP.MailsWithSubject(to, sub)
}

// TestFaultSMTPDownThenUp: while SMTP refuses mail, signup and forgot-password
// answer normally; once it accepts again, each mail arrives exactly once and
// its link works (RL-2). (That a crashed worker's expired claim is retried
// is covered on the real store by mongostore's
// TestOutboxCrashedWorkerLeaseExpiry; a worker stopped by SIGTERM by
// TestMailReleasedAtShutdown.)
func TestFaultSMTPDownThenUp(t *testing.T) {
	t.Parallel()
	smtp := testkit.StartSMTP(t)
	g := testkit.Start(t, run, smtp, testkit.Options{})
	_, owner := testkit.NewUser(t, g, faultPW)
	newcomer := testkit.Email(t)

	smtp.Refuse(true)
	outage := time.Now()
	c := g.Client(t)
	if r := c.PostJSON("/api/v1/signup", map[string]string{"email": newcomer, "password": faultPW}); r.Status != http.StatusAccepted {
		t.Fatalf("signup while SMTP is down: %d %s; want 202", r.Status, r.Body)
	}
	if r := c.PostJSON("/api/v1/password/forgot", map[string]string{"email": owner}); r.Status != http.StatusAccepted {
		t.Fatalf("forgot while SMTP is down: %d %s; want 202", r.Status, r.Body)
	}
	if d := time.Since(outage); d > faultQuick {
		t.Errorf("signup and forgot took %s while SMTP was down; want them not to wait for SMTP", d)
	}
	faultEventually(t, faultQuick, "SMTP refused both mails", func() (bool, string) {
		return smtp.Refused() >= 2, fmt.Sprintf("%d refused", smtp.Refused())
	})
	if n, m := len(smtp.Mails(newcomer)), len(smtp.MailsWithSubject(owner, faultResetSubject)); n != 0 || m != 0 {
		t.Fatalf("got %d verification and %d reset mails while SMTP refused; want 0", n, m)
	}
	// Keep SMTP down long enough for a retry to fail too, but short: the
	// worker backs off exponentially from 1s.
	time.Sleep(time.Until(outage.Add(2500 * time.Millisecond)))
	refused := smtp.Refused()
	smtp.Refuse(false)
	t.Logf("SMTP refused %d deliveries during the outage", refused)

	smtp.WaitSubject(t, owner, faultResetSubject, faultMailWait)
	verify := faultSettledMails(t, g, newcomer, faultVerifySubject)
	if len(verify) != 1 {
		t.Errorf("got %d verification mails after the outage; want exactly 1", len(verify))
	}
	reset := smtp.MailsWithSubject(owner, faultResetSubject)
	if len(reset) != 1 {
		t.Fatalf("got %d reset mails after the outage; want exactly 1", len(reset))
	}
	if len(verify) > 0 {
		if r := g.Client(t).Verify(verify[0].Token(t), faultPW); r.Status != http.StatusOK {
			t.Errorf("verify with the delayed link: %d %s; want 200", r.Status, r.Body)
		}
	}
	newPW := "a new password after the outage"
	if r := g.Client(t).PostJSON("/api/v1/password/reset", map[string]string{"token": reset[0].Token(t), "password": newPW}); r.Status != http.StatusNoContent {
		t.Errorf("reset with the delayed link: %d %s; want 204", r.Status, r.Body)
	}
}

// TestFaultDatabaseDownThenUp: with the database cut off, every request that
// needs it answers 503 within a bounded time, nothing is authenticated and
// the session is not lost; when the database returns, the same gateway
// serves the same cookie again (RL-1).
func TestFaultDatabaseDownThenUp(t *testing.T) {
	t.Parallel()
	db := testkit.StartDB(t)
	proxy, uri := testkit.StartProxy(t, db.URI)
	g := testkit.Start(t, run, testkit.StartSMTP(t), testkit.Options{MongoURI: uri, Env: map[string]string{
		"GATEHOUSE_MONGODB_TIMEOUT":   "1s",
		"GATEHOUSE_SESSION_CACHE_TTL": "0s",
	}})
	c, email := testkit.NewUser(t, g, faultPW)
	cookie := c.Cookie(testkit.CookieName)
	if cookie == nil {
		t.Fatal("no session cookie after verification")
	}

	proxy.Cut()
	stranger := g.Client(t)
	htmlGet := func(cl *testkit.Client, path string) *testkit.Response {
		req := cl.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Accept", "text/html")
		return cl.Do(req)
	}
	checks := []struct {
		name   string
		do     func() *testkit.Response
		status int
		code   string // JSON error code; "" for an HTML or plain answer
		html   bool
	}{
		{"login", func() *testkit.Response { return stranger.Login(email, faultPW) }, http.StatusServiceUnavailable, "unavailable", false},
		{"signup", func() *testkit.Response {
			return stranger.PostJSON("/api/v1/signup", map[string]string{"email": testkit.Email(t), "password": faultPW})
		}, http.StatusServiceUnavailable, "unavailable", false},
		{"session", func() *testkit.Response { return c.Get("/api/v1/session") }, http.StatusServiceUnavailable, "unavailable", false},
		{"auth check", func() *testkit.Response { return c.Get("/auth/check") }, http.StatusServiceUnavailable, "", false},
		{"auth check from a browser", func() *testkit.Response {
			req := c.NewRequest(http.MethodGet, "/auth/check", nil)
			req.Header.Set("Accept", "text/html")
			req.Header.Set("X-Forwarded-Host", "app.example.com")
			req.Header.Set("X-Forwarded-Uri", "/private")
			return c.Do(req)
		}, http.StatusServiceUnavailable, "", true},
		{"account page", func() *testkit.Response { return htmlGet(c, "/account") }, http.StatusServiceUnavailable, "", true},
		// Probed as a load balancer does: no cookie, on both listeners.
		{"readyz", func() *testkit.Response { return testkit.NewClient(t, g.URL).Get("/readyz") }, http.StatusServiceUnavailable, "", false},
		{"readyz on the ops listener", func() *testkit.Response { return testkit.NewClient(t, g.OpsURL).Get("/readyz") }, http.StatusServiceUnavailable, "", false},
		{"healthz", func() *testkit.Response { return c.Get("/healthz") }, http.StatusOK, "", false},
	}
	// One after the other in the test's goroutine: the clients belong to it.
	for _, tc := range checks {
		began := time.Now()
		r := tc.do()
		d := time.Since(began)
		t.Logf("%s during the outage: %d after %s", tc.name, r.Status, d.Round(time.Millisecond))
		if d > faultQuick {
			t.Errorf("%s: answered after %s; want a bounded wait (< %s)", tc.name, d, faultQuick)
		}
		if r.Status != tc.status {
			t.Errorf("%s: status %d; want %d\n%s", tc.name, r.Status, tc.status, r.Body)
			continue
		}
		if tc.code != "" && r.ErrorCode() != tc.code {
			t.Errorf("%s: error code %q; want %q", tc.name, r.ErrorCode(), tc.code)
		}
		if ct := r.Header.Get("Content-Type"); tc.html && !strings.HasPrefix(ct, "text/html") {
			t.Errorf("%s: Content-Type %q; want an HTML error page", tc.name, ct)
		}
		if u := r.Header.Get("X-Auth-Request-User"); u != "" {
			t.Errorf("%s: X-Auth-Request-User = %q during the outage; want none", tc.name, u)
		}
	}
	if ck := c.Cookie(testkit.CookieName); ck == nil || ck.Value != cookie.Value {
		t.Fatalf("the outage changed the client's session cookie; want it kept")
	}

	proxy.Restore()
	faultEventually(t, 15*time.Second, "/readyz after the database returned", func() (bool, string) {
		r := testkit.NewClient(t, g.URL).Get("/readyz")
		return r.Status == http.StatusOK, fmt.Sprintf("status %d", r.Status)
	})
	r := c.Get("/api/v1/session")
	if r.Status != http.StatusOK {
		t.Fatalf("session after recovery: %d %s; want 200 with the same cookie", r.Status, r.Body)
	}
	if got := r.JSON(t)["user"].(map[string]any)["email"]; got != email {
		t.Errorf("session email = %v; want %s", got, email)
	}
	if r := c.Get("/auth/check"); r.Status != http.StatusOK || r.Header.Get("X-Auth-Request-Email") != email {
		t.Errorf("auth check after recovery: %d, email %q; want 200 and %s", r.Status, r.Header.Get("X-Auth-Request-Email"), email)
	}
	if r := g.Client(t).Login(email, faultPW); r.Status != http.StatusOK {
		t.Errorf("login after recovery: %d %s; want 200", r.Status, r.Body)
	}
}

// TestFaultRestartMidFlow restarts the gateway (same data dir, address and
// database) with flows in progress: a reset link and a verification link in
// the mailbox, a signed-in session, and a mail still queued because SMTP
// refused it. After the restart each flow completes (RL-5).
func TestFaultRestartMidFlow(t *testing.T) {
	t.Parallel()
	smtp := testkit.StartSMTP(t)
	g := testkit.Start(t, run, smtp, testkit.Options{})
	signedIn, signedInEmail := testkit.NewUser(t, g, faultPW)
	cookie := signedIn.Cookie(testkit.CookieName)
	if cookie == nil {
		t.Fatal("no session cookie after verification")
	}

	_, resetEmail := testkit.NewUser(t, g, faultPW)
	if r := g.Client(t).PostJSON("/api/v1/password/forgot", map[string]string{"email": resetEmail}); r.Status != http.StatusAccepted {
		t.Fatalf("forgot: %d %s; want 202", r.Status, r.Body)
	}
	resetToken := smtp.WaitSubject(t, resetEmail, faultResetSubject, faultMailWait).Token(t)

	pendingEmail := testkit.Email(t)
	verifyToken := g.Client(t).SignUp(g, pendingEmail, faultPW).Token(t)

	smtp.Refuse(true)
	queuedEmail := testkit.Email(t)
	if r := g.Client(t).PostJSON("/api/v1/signup", map[string]string{"email": queuedEmail, "password": faultPW}); r.Status != http.StatusAccepted {
		t.Fatalf("signup while SMTP is down: %d %s; want 202", r.Status, r.Body)
	}
	faultEventually(t, faultQuick, "SMTP refused the queued mail", func() (bool, string) {
		return smtp.Refused() > 0, "nothing refused yet"
	})

	g = g.Restart(t)
	smtp.Refuse(false)

	t.Run("reset link", func(t *testing.T) {
		c := g.Client(t)
		if r := c.Get("/password/reset?token=" + url.QueryEscape(resetToken)); r.Status != http.StatusOK {
			t.Fatalf("GET reset link after restart: %d; want 200", r.Status)
		}
		newPW := "a new password after restart"
		r := c.PostForm("/password/reset", url.Values{"token": {resetToken}, "password": {newPW}})
		if r.Status != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/login") {
			t.Fatalf("POST reset after restart: %d to %q; want 303 to /login\n%s", r.Status, r.Header.Get("Location"), r.Body)
		}
		if r := g.Client(t).Login(resetEmail, newPW); r.Status != http.StatusOK {
			t.Errorf("login with the reset password: %d %s; want 200", r.Status, r.Body)
		}
	})
	t.Run("verify link", func(t *testing.T) {
		if r := g.Client(t).Verify(verifyToken, faultPW); r.Status != http.StatusOK {
			t.Fatalf("verify after restart: %d %s; want 200", r.Status, r.Body)
		}
	})
	t.Run("session", func(t *testing.T) {
		signedIn := g.Client(t)
		signedIn.SetCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
		r := signedIn.Get("/api/v1/session")
		if r.Status != http.StatusOK {
			t.Fatalf("session after restart: %d %s; want 200 with the same cookie", r.Status, r.Body)
		}
		if got := r.JSON(t)["user"].(map[string]any)["email"]; got != signedInEmail {
			t.Errorf("session email = %v; want %s", got, signedInEmail)
		}
		r = signedIn.Get("/account")
		if r.Status != http.StatusOK || !strings.Contains(r.Text(), signedInEmail) {
			t.Errorf("account page after restart: %d (email shown: %v); want 200 showing %s", r.Status, strings.Contains(r.Text(), signedInEmail), signedInEmail)
		}
	})
	t.Run("queued mail", func(t *testing.T) {
		mails := faultSettledMails(t, g, queuedEmail, faultVerifySubject)
		if len(mails) != 1 {
			t.Fatalf("got %d mails queued before the restart; want exactly 1", len(mails))
		}
		if r := g.Client(t).Verify(mails[0].Token(t), faultPW); r.Status != http.StatusOK {
			t.Errorf("verify with the mail queued across the restart: %d %s; want 200", r.Status, r.Body)
		}
	})
}
