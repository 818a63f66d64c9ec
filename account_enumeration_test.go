package main

// Black-box tests that answers reveal no account (EN-1..4, LK-1).

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

// acctSameAnswer fails unless a and b are the same answer: status, body,
// and every header but X-Request-Id and Date. Each body's own request id,
// and the address it echoes (aEmail in a, bEmail in b; "" for none), are
// replaced before comparing; the two addresses must have the same length,
// so Content-Length is compared too. Retry-After values are not compared,
// only its presence: it counts down from each address's own first attempt,
// so it tells the time of that attempt, not whether an account exists.
func acctSameAnswer(tb testing.TB, what string, a, b *testkit.Response, aEmail, bEmail string) {
	tb.Helper()
	if len(aEmail) != len(bEmail) {
		tb.Fatalf("%s: test bug: compared addresses must have one length: %q, %q", what, aEmail, bEmail)
	}
	if a.Status != b.Status {
		tb.Errorf("%s: got status %d and %d; want the same", what, a.Status, b.Status)
	}
	if d := cmp.Diff(acctNormBody(a, aEmail), acctNormBody(b, bEmail)); d != "" {
		tb.Errorf("%s: bodies differ (-first +second):\n%s", what, d)
	}
	ha, hb := acctNormHeader(a.Header), acctNormHeader(b.Header)
	if ha.Get("Retry-After") != "" && hb.Get("Retry-After") != "" {
		hb.Set("Retry-After", ha.Get("Retry-After"))
	}
	if d := cmp.Diff(ha, hb); d != "" {
		tb.Errorf("%s: headers differ (-first +second):\n%s", what, d)
	}
}

func acctNormBody(r *testkit.Response, email string) string {
	s := r.Text()
	if id := r.Header.Get("X-Request-Id"); id != "" {
		s = strings.ReplaceAll(s, id, "REQUEST-ID")
	}
	if email != "" {
		s = strings.ReplaceAll(s, email, "EMAIL")
	}
	return s
}

func acctNormHeader(h http.Header) http.Header {
	h = h.Clone()
	h.Del("X-Request-Id")
	h.Del("Date")
	return h
}

// TestAccountLoginFailureIdentical is EN-1: a wrong password, a wrong
// password for a pending signup, and an unknown address get the same answer.
func TestAccountLoginFailureIdentical(t *testing.T) {
	t.Parallel()
	g := acctStart(t, nil)
	known, pending, unknown := acctEmail("known"), acctEmail("pendi"), acctEmail("unkno")
	acctNewUser(t, g, known, acctPassword)
	g.Client(t).SignUp(g, pending, acctPassword)

	ru := g.Client(t).Login(unknown, acctWrongPW)
	testkit.WantAPIError(t, "API login for an unknown address", ru, http.StatusUnauthorized, "invalid_credentials")
	acctSameAnswer(t, "API login: wrong password vs unknown address", g.Client(t).Login(known, acctWrongPW), ru, "", "")
	acctSameAnswer(t, "API login: pending signup, wrong password vs unknown address", g.Client(t).Login(pending, acctWrongPW), ru, "", "")

	pu := acctForm(t, g.Client(t), "/login", "email", unknown, "password", acctWrongPW)
	acctWant(t, "POST /login for an unknown address", pu, http.StatusUnauthorized)
	acctSameAnswer(t, "POST /login: wrong password vs unknown address",
		acctForm(t, g.Client(t), "/login", "email", known, "password", acctWrongPW), pu, known, unknown)
	acctSameAnswer(t, "POST /login: pending signup, wrong password vs unknown address",
		acctForm(t, g.Client(t), "/login", "email", pending, "password", acctWrongPW), pu, pending, unknown)
}

// TestAccountSignupTakenIdentical is EN-2: signing up with a verified or a
// pending address answers like a fresh signup; only the mail differs, and
// the owner's password is untouched.
func TestAccountSignupTakenIdentical(t *testing.T) {
	t.Parallel()
	g, clock := acctStartClocked(t, nil)
	// Two owners, so the API and the form each get a notice without waiting
	// out the quota twice.
	owner, owner2, pending := acctEmail("taken"), acctEmail("taken"), acctEmail("pendi")
	acctNewUser(t, g, owner, acctPassword)
	acctNewUser(t, g, owner2, acctPassword)
	g.Client(t).SignUp(g, pending, acctPassword)
	clock.Advance(time.Minute) // past the mail quota's interval

	const other = "another passphrase 42"
	c := g.Client(t)
	fresh := acctEmail("fresh")
	signup := func(email string) *testkit.Response {
		return c.PostJSON("/api/v1/signup", map[string]string{"email": email, "password": other})
	}
	rf := signup(fresh)
	acctWant(t, "API signup of a fresh address", rf, http.StatusAccepted)
	acctSameAnswer(t, "API signup: fresh vs verified address", rf, signup(owner), "", "")
	acctSameAnswer(t, "API signup: fresh vs pending address", rf, signup(pending), "", "")

	fresh2 := acctEmail("fresh")
	pf := acctForm(t, c, "/signup", "email", fresh2, "password", other)
	acctWant(t, "POST /signup of a fresh address", pf, http.StatusOK)
	acctSameAnswer(t, "POST /signup: fresh vs verified address", pf, acctForm(t, c, "/signup", "email", owner2, "password", other), fresh2, owner2)

	acctCheckVerifyMail(t, g, g.SMTP.WaitMail(t, fresh, 1, acctMailWait), fresh)
	acctCheckVerifyMail(t, g, g.SMTP.WaitMail(t, fresh2, 1, acctMailWait), fresh2)
	acctCheckVerifyMail(t, g, g.SMTP.WaitMail(t, pending, 2, acctMailWait), pending)
	for _, o := range []string{owner, owner2} {
		acctCheckExistsMail(t, g, g.SMTP.WaitMail(t, o, 2, acctMailWait), o)
		acctWant(t, "owner login with the own password", g.Client(t).Login(o, acctPassword), http.StatusOK)
		testkit.WantAPIError(t, "login with the password of the later signup", g.Client(t).Login(o, other), http.StatusUnauthorized, "invalid_credentials")
	}
	g.NoMoreMail(t, owner, 2)
}

// acctCheckExistsMail checks an "account exists" mail: to the owner, both
// parts, and nothing to redeem, only a link to sign in.
func acctCheckExistsMail(tb testing.TB, g *testkit.Gateway, m testkit.Mail, email string) {
	tb.Helper()
	if !slices.Equal(m.To, []string{email}) {
		tb.Errorf("account-exists mail to %v; want [%s]", m.To, email)
	}
	if !strings.Contains(strings.ToLower(m.Subject), "tried to sign up") {
		tb.Errorf("mail to the owner has subject %q; want the account-exists notice", m.Subject)
	}
	if strings.TrimSpace(m.Text) == "" || strings.TrimSpace(m.HTML) == "" {
		tb.Errorf("account-exists mail: text part %d bytes, HTML part %d bytes; want both", len(m.Text), len(m.HTML))
	}
	if link := m.Link(tb); link != g.URL+"/login" {
		tb.Errorf("account-exists mail link %q; want %s/login", link, g.URL)
	}
	if strings.Contains(m.Text, "token=") || strings.Contains(m.HTML, "token=") {
		tb.Error("account-exists mail carries a token")
	}
}

// TestAccountForgotResendIdentical is EN-3: forgot-password and resend answer
// the same for unknown, pending and verified addresses, API and forms.
func TestAccountForgotResendIdentical(t *testing.T) {
	t.Parallel()
	g := acctStart(t, nil)
	known, pending, unknown := acctEmail("known"), acctEmail("pendi"), acctEmail("unkno")
	acctNewUser(t, g, known, acctPassword)
	g.Client(t).SignUp(g, pending, acctPassword)
	c := g.Client(t)
	post := func(path, email string) *testkit.Response {
		return c.PostJSON(path, map[string]string{"email": email})
	}

	fu := post("/api/v1/password/forgot", unknown)
	acctWant(t, "API forgot for an unknown address", fu, http.StatusAccepted)
	acctSameAnswer(t, "API forgot: known vs unknown address", post("/api/v1/password/forgot", known), fu, "", "")
	acctSameAnswer(t, "API forgot: pending vs unknown address", post("/api/v1/password/forgot", pending), fu, "", "")
	g.SMTP.WaitSubject(t, known, "reset", acctMailWait) // the known address got what the others did not

	ru := post("/api/v1/verify/resend", unknown)
	acctWant(t, "API resend for an unknown address", ru, http.StatusAccepted)
	acctSameAnswer(t, "API resend: verified vs unknown address", post("/api/v1/verify/resend", known), ru, "", "")
	acctSameAnswer(t, "API resend: pending vs unknown address", post("/api/v1/verify/resend", pending), ru, "", "")

	for _, path := range []string{"/password/forgot", "/verify/resend"} {
		pu := acctForm(t, c, path, "email", unknown)
		acctWant(t, "POST "+path+" for an unknown address", pu, http.StatusOK)
		acctSameAnswer(t, "POST "+path+": known vs unknown address", acctForm(t, c, path, "email", known), pu, known, unknown)
		acctSameAnswer(t, "POST "+path+": pending vs unknown address", acctForm(t, c, path, "email", pending), pu, pending, unknown)
	}
	g.NoMoreMail(t, unknown, 0)
}

// TestAccountRateLimitIdentical is EN-4: the per-address limit answers the
// same for an account and for an unknown address.
func TestAccountRateLimitIdentical(t *testing.T) {
	t.Parallel()
	g := acctStart(t, map[string]string{"GATEHOUSE_RATE_LIMITS_PER_ADDRESS": "2"})
	known, unknown := acctEmail("known"), acctEmail("unkno")
	acctNewUser(t, g, known, acctPassword)
	c := g.Client(t)

	// limited sends twice within the limit, then compares the third answers;
	// the two addresses take turns.
	limited := func(what string, send func(email string) *testkit.Response) {
		t.Helper()
		for i := range 2 {
			for _, email := range []string{known, unknown} {
				if r := send(email); r.Status == http.StatusTooManyRequests || r.Status >= 500 {
					t.Fatalf("%s #%d for %s: got %d; want it within the limit", what, i+1, email, r.Status)
				}
			}
		}
		rk, ru := send(known), send(unknown)
		testkit.WantAPIError(t, what+" #3", rk, http.StatusTooManyRequests, "rate_limited")
		acctRetryAfter(t, what+" #3", rk)
		acctRetryAfter(t, what+" #3", ru)
		acctSameAnswer(t, what+" over the limit: known vs unknown address", rk, ru, "", "")
	}
	limited("API login", func(email string) *testkit.Response { return c.Login(email, acctWrongPW) })
	limited("API forgot", func(email string) *testkit.Response {
		return c.PostJSON("/api/v1/password/forgot", map[string]string{"email": email})
	})

	// The login budget of both addresses is spent: the form is limited too.
	pk := acctForm(t, c, "/login", "email", known, "password", acctPassword)
	acctWant(t, "POST /login over the limit", pk, http.StatusTooManyRequests)
	acctRetryAfter(t, "POST /login over the limit", pk)
	acctSameAnswer(t, "POST /login over the limit: known vs unknown address", pk, acctForm(t, c, "/login", "email", unknown, "password", acctPassword), known, unknown)
}

// TestAccountPreHijack is LK-1: someone who signs up with a victim's
// address and their own password never gets into the victim's account, nor
// plants a password on it.
func TestAccountPreHijack(t *testing.T) {
	t.Parallel()
	g, clock := acctStartClocked(t, nil)
	const attackerPW, victimPW = "the attacker's passphrase 1", "the victim's own passphrase 2"

	t.Run("victim signs up later", func(t *testing.T) {
		t.Parallel()
		victim := acctEmail("victim")
		attacker := g.Client(t)
		leaked := attacker.SignUp(g, victim, attackerPW).Token(t) // as if leaked from the victim's inbox
		clock.Advance(time.Minute)                                // past the mail quota's interval

		v := g.Client(t)
		own := v.SignUp(g, victim, victimPW).Token(t)
		if own == leaked {
			t.Fatal("the victim's signup mailed the attacker's token")
		}
		testkit.WantAPIError(t, "attacker login after the victim's signup", attacker.Login(victim, attackerPW), http.StatusUnauthorized, "invalid_credentials")
		testkit.WantAPIError(t, "attacker verifies with the replaced link", attacker.Verify(leaked, attackerPW), http.StatusBadRequest, "invalid_token")
		testkit.WantAPIError(t, "replaced link with the victim's password", attacker.Verify(leaked, victimPW), http.StatusBadRequest, "invalid_token")
		acctWant(t, "GET /verify with the replaced link", attacker.Get("/verify?token="+url.QueryEscape(leaked)), http.StatusBadRequest)
		r := acctForm(t, attacker, "/verify", "token", leaked, "password", attackerPW)
		acctWant(t, "POST /verify with the replaced link", r, http.StatusBadRequest)
		if attacker.Cookie(testkit.CookieName) != nil {
			t.Fatal("the attacker got a session cookie")
		}

		acctWant(t, "victim verifies", v.Verify(own, victimPW), http.StatusOK)
		testkit.WantAPIError(t, "attacker login after verification", attacker.Login(victim, attackerPW), http.StatusUnauthorized, "invalid_credentials")
		testkit.WantAPIError(t, "attacker's link after verification", attacker.Verify(leaked, attackerPW), http.StatusBadRequest, "invalid_token")
		acctWant(t, "victim login", g.Client(t).Login(victim, victimPW), http.StatusOK)
	})

	t.Run("victim clicks the attacker's link", func(t *testing.T) {
		t.Parallel()
		victim := acctEmail("victim")
		m := g.Client(t).SignUp(g, victim, attackerPW)
		v := g.Client(t)
		r := v.Get(m.Link(t))
		acctWant(t, "victim opens the link", r, http.StatusOK)
		acctWantText(t, "victim opens the link", r, "Enter the password you chose when you signed up")
		for _, pw := range []string{victimPW, "password1234567", ""} {
			r := acctForm(t, v, "/verify", "token", m.Token(t), "password", pw)
			acctWant(t, fmt.Sprintf("verify with %q", pw), r, http.StatusUnauthorized)
			acctWantText(t, "verify with another password", r, "not the password you chose")
			testkit.WantAPIError(t, "API verify with another password", v.Verify(m.Token(t), pw), http.StatusUnauthorized, "invalid_credentials")
		}
		if v.Cookie(testkit.CookieName) != nil {
			t.Fatal("a refused verification signed the victim in")
		}
		testkit.WantAPIError(t, "login with the victim's password", g.Client(t).Login(victim, victimPW), http.StatusUnauthorized, "invalid_credentials")
		// No account exists, so a reset mails nothing.
		acctWant(t, "forgot", v.PostJSON("/api/v1/password/forgot", map[string]string{"email": victim}), http.StatusAccepted)
		g.NoMoreMail(t, victim, 1)
	})

	t.Run("attacker signs up after the victim", func(t *testing.T) {
		t.Parallel()
		victim := acctEmail("victim")
		acctNewUser(t, g, victim, victimPW)
		clock.Advance(time.Minute) // past the mail quota's interval
		attacker := g.Client(t)
		signup := func(email string) *testkit.Response {
			return attacker.PostJSON("/api/v1/signup", map[string]string{"email": email, "password": attackerPW})
		}
		acctSameAnswer(t, "attacker's signup: fresh vs the victim's address", signup(acctEmail("fresh0")), signup(victim), "", "")
		acctCheckExistsMail(t, g, g.SMTP.WaitMail(t, victim, 2, acctMailWait), victim)
		testkit.WantAPIError(t, "attacker login", attacker.Login(victim, attackerPW), http.StatusUnauthorized, "invalid_credentials")
		acctWant(t, "victim login", g.Client(t).Login(victim, victimPW), http.StatusOK)
	})
}
