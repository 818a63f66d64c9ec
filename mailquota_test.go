package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

// quotaPW is the password of the quota tests' accounts.
const quotaPW = "a quota test passphrase"

// quotaForgot asks for a reset link through the API and waits until the
// worker has resolved the request: the quota is applied then, at the
// gateway's clock, which the test moves between requests.
func quotaForgot(tb testing.TB, g *testkit.Gateway, email string) {
	tb.Helper()
	if r := g.Client(tb).PostJSON("/api/v1/password/forgot", map[string]string{"email": email}); r.Status != http.StatusAccepted {
		tb.Fatalf("forgot %s: %d %s; want 202", email, r.Status, r.Body)
	}
	g.MailBarrier(tb)
}

// quotaResetMails counts the reset mails email has received, after a
// barrier: every mail queued before has arrived.
func quotaResetMails(tb testing.TB, g *testkit.Gateway, email string) int {
	tb.Helper()
	g.MailBarrier(tb)
	return len(g.SMTP.MailsWithSubject(email, "reset"))
}

// TestMailQuotaExactInterval: one mail per mail_interval means exactly
// that. A request made once the interval has passed since the last mail was
// queued gets its mail, and requests refused before then consume nothing
// and do not push the next mail back.
func TestMailQuotaExactInterval(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock()
	g := testkit.Start(t, runAt(clock), testkit.StartSMTP(t), testkit.Options{})
	_, email := testkit.NewUser(t, g, quotaPW)

	quotaForgot(t, g, email)
	if n := quotaResetMails(t, g, email); n != 1 {
		t.Fatalf("reset mails after the first request: %d; want 1", n)
	}
	for _, step := range []time.Duration{0, 30 * time.Second, 29 * time.Second, 999 * time.Millisecond} {
		clock.Advance(step)
		quotaForgot(t, g, email)
	}
	if n := quotaResetMails(t, g, email); n != 1 {
		t.Fatalf("reset mails after requests within the interval: %d; want 1 (held back)", n)
	}
	clock.Advance(time.Millisecond) // exactly mail_interval (1m) since the first
	quotaForgot(t, g, email)
	if n := quotaResetMails(t, g, email); n != 2 {
		t.Fatalf("reset mails for a request one interval after the last mail: %d; want 2", n)
	}
}

// TestMailQuotaHourlyCap: at most mail_per_hour mails of a group an hour,
// counted as mails queued: the sixth within the hour is held back, and one
// comes again an hour after the first.
func TestMailQuotaHourlyCap(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock()
	g := testkit.Start(t, runAt(clock), testkit.StartSMTP(t), testkit.Options{})
	_, email := testkit.NewUser(t, g, quotaPW)
	for i := range 6 { // at 0, 1, …, 5 minutes
		if i > 0 {
			clock.Advance(time.Minute)
		}
		quotaForgot(t, g, email)
	}
	if n := quotaResetMails(t, g, email); n != 5 {
		t.Fatalf("reset mails for one request a minute for 6 minutes: %d; want 5 (mail_per_hour)", n)
	}
	clock.Advance(55 * time.Minute) // an hour after the first mail
	quotaForgot(t, g, email)
	if n := quotaResetMails(t, g, email); n != 6 {
		t.Fatalf("reset mails an hour after the first: %d; want 6", n)
	}
}

// TestMailQuotaFailedRequestConsumesNothing: a request that fails before
// its mail is queued (the database refuses to write the link) takes no
// quota: the next request gets its mail at once, rather than waiting for
// the failed one's retry.
func TestMailQuotaFailedRequestConsumesNothing(t *testing.T) {
	t.Parallel()
	db := testkit.StartDB(t)
	proxy, uri := testkit.StartProxy(t, db.URI)
	g := testkit.Start(t, run, testkit.StartSMTP(t), testkit.Options{MongoURI: uri})
	email := testkit.Email(t)
	signup := func(returnTo string) {
		t.Helper()
		r := g.Client(t).PostForm("/signup", url.Values{"email": {email}, "password": {quotaPW}, "return_to": {returnTo}})
		if r.Status != http.StatusOK {
			t.Fatalf("signup: %d %s; want 200", r.Status, r.Body)
		}
	}
	proxy.RefuseWrites(1, "InternalError", "database or disk is full (13)", "tokens")
	signup("/first")
	faultEventually(t, 15*time.Second, "the first signup's mail attempt failed", func() (bool, string) {
		v := metricValue(t, g, "gatehouse_mail_failed_attempts_total")
		return v >= 1, fmt.Sprintf("failed attempts %v", v)
	})
	proxy.AcceptWrites()
	signup("/second")
	m := g.SMTP.WaitMail(t, email, 1, 15*time.Second)
	if link := m.Link(t); !strings.Contains(link, "return_to=%2Fsecond") {
		t.Fatalf("first verification mail links to %s; want the second signup's (return_to=/second): the failed one held its quota", link)
	}
}

// metricValue reads one sample of a counter or gauge without labels from
// the gateway's operations listener (0 when absent).
func metricValue(tb testing.TB, g *testkit.Gateway, name string) float64 {
	tb.Helper()
	r := testkit.NewClient(tb, g.OpsURL).Get("/metrics")
	for _, line := range strings.Split(r.Text(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				tb.Fatalf("metric %s: %q", name, v)
			}
			return f
		}
	}
	return 0
}

// TestMailQuotaAcrossInstances: parallel requests for one address on three
// instances sharing the database yield exactly one mail.
func TestMailQuotaAcrossInstances(t *testing.T) {
	t.Parallel()
	db := testkit.StartDB(t)
	g := testkit.Start(t, run, testkit.StartSMTP(t), testkit.Options{MongoURI: db.URI})
	gs := []*testkit.Gateway{g, g.Twin(t), g.Twin(t)}
	_, email := testkit.NewUser(t, g, quotaPW)
	res := faultParallel(12, func(i int) (*testkit.Response, error) {
		return gs[i%3].Client(t).TryJSON(http.MethodPost, "/api/v1/password/forgot", map[string]string{"email": email})
	})
	faultTally(t, "parallel forgot", res, http.StatusAccepted)
	g.SMTP.WaitSubject(t, email, "reset", 15*time.Second)
	// Any instance's worker may take any request, so a barrier proves
	// something only with one worker left: stop the twins (a request they
	// were resolving is released to the remaining one), then barrier.
	for _, x := range gs[1:] {
		if err := x.Stop(t); err != nil {
			t.Fatalf("stop a twin: %v", err)
		}
	}
	g.MailBarrier(t)
	if n := len(g.SMTP.MailsWithSubject(email, "reset")); n != 1 {
		t.Fatalf("reset mails after 12 parallel requests on 3 instances: %d; want 1", n)
	}
}

// TestMailQuotaStated: every check-inbox answer states the quota, the same
// way for an existing account, a pending signup and an unknown address; the
// development mailbox lists the mails it held back.
func TestMailQuotaStated(t *testing.T) {
	t.Parallel()
	g := testkit.Start(t, run, nil, testkit.Options{}) // development mailbox
	c := g.Client(t)
	known := testkit.Email(t)
	if r := c.PostJSON("/api/v1/signup", map[string]string{"email": known, "password": quotaPW}); r.Status != http.StatusAccepted {
		t.Fatalf("signup: %d %s", r.Status, r.Body)
	}
	unknown := testkit.Email(t)

	answers := map[string]string{}
	for _, email := range []string{known, unknown} {
		for _, path := range []string{"/api/v1/verify/resend", "/api/v1/password/forgot", "/api/v1/signup"} {
			body := map[string]string{"email": email}
			if path == "/api/v1/signup" {
				body["password"] = quotaPW
			}
			r := c.PostJSON(path, body)
			var got struct {
				Status              string `json:"status"`
				MailIntervalSeconds int    `json:"mail_interval_seconds"`
				MailPerHour         int    `json:"mail_per_hour"`
				Message             string `json:"message"`
			}
			if r.Status != http.StatusAccepted || json.Unmarshal(r.Body, &got) != nil {
				t.Fatalf("%s %s: %d %s; want 202 JSON", path, email, r.Status, r.Body)
			}
			if got.MailIntervalSeconds != 60 || got.MailPerHour != 5 || !strings.Contains(got.Message, "in the last 1 minute, use that one") {
				t.Errorf("%s: %s; want the quota stated (60 s, 5 an hour, \"use that one\")", path, r.Body)
			}
			if prev, ok := answers[path]; ok && prev != string(r.Body) {
				t.Errorf("%s answers differ for known and unknown addresses:\n%s\n%s", path, prev, r.Body)
			}
			answers[path] = string(r.Body)
		}
	}
	page := c.PostForm("/password/forgot", url.Values{"email": {unknown}})
	if page.Status != http.StatusOK || !strings.Contains(page.Text(), "If we sent you a link in the last 1 minute, use that one") {
		t.Errorf("check-inbox page: %d; want the quota stated\n%s", page.Status, page.Body)
	}

	// The known address's second signup and its resend were held back.
	deadline := time.Now().Add(15 * time.Second)
	for {
		box := c.Get("/dev/mailbox").Text()
		if strings.Count(box, "Held back:") >= 1 && strings.Contains(box, known) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the development mailbox lists no held-back mail:\n%s", box)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestVerifyExpiredLinkNotDeadEnd: a person whose verification link expired
// gets a working link by doing what the page offers, and signing in with
// the signup's password says to verify; only the newest link verifies.
func TestVerifyExpiredLinkNotDeadEnd(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock()
	g := testkit.Start(t, runAt(clock), testkit.StartSMTP(t), testkit.Options{})
	c := g.Client(t)
	email := testkit.Email(t)
	first := c.SignUp(g, email, quotaPW)
	clock.Advance(25 * time.Hour) // past tokens.verify_ttl (24h)

	page := c.Get("/verify?token=" + url.QueryEscape(first.Token(t)))
	if !strings.Contains(page.Text(), `action="/verify/resend"`) {
		t.Fatalf("expired link page offers no new link:\n%s", page.Body)
	}
	if r := c.Login(email, quotaPW); r.Status != http.StatusForbidden || r.ErrorCode() != "email_not_verified" {
		t.Errorf("login with the password of a lapsed signup: %d %s; want 403 email_not_verified", r.Status, r.Body)
	}
	if r := c.Login(email, "not the signup password"); r.Status != http.StatusUnauthorized {
		t.Errorf("login with another password: %d; want 401", r.Status)
	}
	if r := c.PostForm("/verify/resend", url.Values{"email": {email}}); r.Status != http.StatusOK {
		t.Fatalf("resend form: %d %s; want 200", r.Status, r.Body)
	}
	second := g.SMTP.WaitMail(t, email, 2, 15*time.Second)
	if r := c.Verify(first.Token(t), quotaPW); r.Status != http.StatusBadRequest {
		t.Errorf("verify with the expired link: %d; want 400", r.Status)
	}
	if r := c.Verify(second.Token(t), "not the signup password"); r.Status != http.StatusUnauthorized {
		t.Errorf("verify with the new link and another password: %d; want 401", r.Status)
	}
	if r := c.Verify(second.Token(t), quotaPW); r.Status != http.StatusOK {
		t.Fatalf("verify with the new link: %d %s; want 200", r.Status, r.Body)
	}
}
