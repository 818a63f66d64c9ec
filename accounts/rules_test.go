package accounts_test

import (
	"context"
	"errors"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/accounts/accountstest"
)

// The domain's rules, tested in milliseconds against the in-memory store
// with a stopped clock. The black-box suite at the repository's root keeps
// the journeys over real HTTP.

const (
	rightPW = "the right long passphrase"
	wrongPW = "a wrong long passphrase"
)

var client = accounts.Client{IP: "192.0.2.1", UserAgent: "test"}

// token returns the token of a mailed link.
func token(tb testing.TB, m accounts.Mail) string {
	tb.Helper()
	u, err := url.Parse(m.Link)
	if err != nil || u.Query().Get("token") == "" {
		tb.Fatalf("mail %s has no token link: %q", m.Kind, m.Link)
	}
	return u.Query().Get("token")
}

// resolve has the mail worker's turn and returns the mails that result.
func resolve(tb testing.TB, e *accountstest.Env) []accounts.Mail {
	tb.Helper()
	mails, err := e.Resolve(context.Background())
	if err != nil {
		tb.Fatalf("resolve queued requests: %v", err)
	}
	return mails
}

// newUser signs up and verifies email with rightPW.
func newUser(tb testing.TB, e *accountstest.Env, email string) accounts.User {
	tb.Helper()
	ctx := context.Background()
	if err := e.Service.Signup(ctx, email, rightPW, "", client); err != nil {
		tb.Fatalf("signup: %v", err)
	}
	mails := resolve(tb, e)
	if len(mails) != 1 || mails[0].Kind != accounts.MailVerify {
		tb.Fatalf("signup mails %v; want one verification", mails)
	}
	u, _, err := e.Service.Verify(ctx, token(tb, mails[0]), rightPW, "", client)
	if err != nil {
		tb.Fatalf("verify: %v", err)
	}
	return u
}

func retryAfter(err error) time.Duration {
	var rl *accounts.RateLimitError
	if errors.As(err, &rl) {
		return rl.RetryAfter
	}
	return 0
}

// TestLockoutBackoff: after lockout_after failures the address waits 1 s,
// then 2 s, then 4 s between checked guesses, the right password included;
// forgot-password is never locked out, and a reset lifts the lockout.
func TestLockoutBackoff(t *testing.T) {
	e := accountstest.New(nil)
	ctx := context.Background()
	const email = "ann@example.com"
	newUser(t, e, email)
	for i := range 5 {
		if _, _, err := e.Service.Login(ctx, email, wrongPW, "", client); !errors.Is(err, accounts.ErrInvalidCredentials) {
			t.Fatalf("wrong password #%d: %v; want ErrInvalidCredentials", i+1, err)
		}
	}
	for _, step := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		if _, _, err := e.Service.Login(ctx, email, rightPW, "", client); retryAfter(err) != step {
			t.Fatalf("right password during the %s lockout: %v; want a wait of %s", step, err, step)
		}
		e.Clock.Advance(step - time.Millisecond)
		if _, _, err := e.Service.Login(ctx, email, wrongPW, "", client); retryAfter(err) != time.Millisecond {
			t.Fatalf("a millisecond before the %s lockout ends: %v; want a wait of 1ms", step, err)
		}
		e.Clock.Advance(time.Millisecond)
		if _, _, err := e.Service.Login(ctx, email, wrongPW, "", client); !errors.Is(err, accounts.ErrInvalidCredentials) {
			t.Fatalf("wrong password once the %s lockout ended: %v; want it checked", step, err)
		}
	}

	// Forgot-password works during the lockout, and the reset lifts it.
	if err := e.Service.ForgotPassword(ctx, email, client); err != nil {
		t.Fatalf("forgot during the lockout: %v", err)
	}
	mails := resolve(t, e)
	if len(mails) != 1 || mails[0].Kind != accounts.MailReset {
		t.Fatalf("mails after forgot %v; want one reset", mails)
	}
	if err := e.Service.ResetPassword(ctx, token(t, mails[0]), "a brand new passphrase", client); err != nil {
		t.Fatalf("reset: %v", err)
	}
	if _, _, err := e.Service.Login(ctx, email, wrongPW, "", client); !errors.Is(err, accounts.ErrInvalidCredentials) {
		t.Errorf("wrong password after the reset: %v; want checked (the lockout lifted)", err)
	}
	if _, _, err := e.Service.Login(ctx, email, "a brand new passphrase", "", client); err != nil {
		t.Errorf("login with the new password: %v", err)
	}
}

// TestLockoutParallel: of 20 guesses at once, exactly lockout_after are
// checked; the others wait without a hash.
func TestLockoutParallel(t *testing.T) {
	e := accountstest.New(nil)
	ctx := context.Background()
	newUser(t, e, "bob@example.com")
	var mu sync.Mutex
	checked, refused := 0, 0
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			_, _, err := e.Service.Login(ctx, "bob@example.com", wrongPW, "", client)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, accounts.ErrInvalidCredentials):
				checked++
			case retryAfter(err) > 0:
				refused++
			default:
				t.Errorf("parallel guess: %v", err)
			}
		})
	}
	wg.Wait()
	if checked != 5 || refused != 15 {
		t.Errorf("20 parallel guesses: %d checked, %d refused; want 5 and 15", checked, refused)
	}
}

// TestLockoutPasswordChange: a wrong current password counts toward the
// lockout, and a locked-out address cannot try one.
func TestLockoutPasswordChange(t *testing.T) {
	e := accountstest.New(nil)
	ctx := context.Background()
	const email = "cat@example.com"
	newUser(t, e, email)
	_, ns, err := e.Service.Login(ctx, email, rightPW, "", client)
	if err != nil {
		t.Fatal(err)
	}
	a, err := e.Service.Authenticate(ctx, ns.Token)
	if err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	for range 5 {
		if err := e.Service.ChangePassword(ctx, a, wrongPW, "a brand new passphrase", client); !errors.Is(err, accounts.ErrInvalidCredentials) {
			t.Fatalf("wrong current password: %v", err)
		}
	}
	if err := e.Service.ChangePassword(ctx, a, rightPW, "a brand new passphrase", client); retryAfter(err) == 0 {
		t.Errorf("change with the right password after 5 wrong ones: %v; want locked out", err)
	}
	if _, _, err := e.Service.Login(ctx, email, rightPW, "", client); retryAfter(err) == 0 {
		t.Errorf("login after 5 wrong current passwords: %v; want locked out", err)
	}
}

// TestMailQuotaRules: one mail per interval, exactly; requests refused
// before then consume nothing; mail_per_hour an hour; a mail that could not
// be queued takes no quota.
func TestMailQuotaRules(t *testing.T) {
	e := accountstest.New(nil)
	ctx := context.Background()
	const email = "dan@example.com"
	newUser(t, e, email)
	forgot := func() int {
		t.Helper()
		if err := e.Service.ForgotPassword(ctx, email, client); err != nil {
			t.Fatalf("forgot: %v", err)
		}
		return len(resolve(t, e))
	}
	if n := forgot(); n != 1 {
		t.Fatalf("first request: %d mails; want 1", n)
	}
	for _, d := range []time.Duration{0, 30 * time.Second, 29*time.Second + 999*time.Millisecond} {
		e.Clock.Advance(d)
		if n := forgot(); n != 0 {
			t.Fatalf("request within the interval: %d mails; want 0 (held back)", n)
		}
	}
	if n := len(e.Mailer.Held(email)); n != 3 {
		t.Errorf("held-back mails reported: %d; want 3", n)
	}
	e.Clock.Advance(time.Millisecond) // one interval after the first mail
	if n := forgot(); n != 1 {
		t.Fatalf("request one interval after the last mail: %d mails; want 1 (refusals consumed nothing)", n)
	}
	for range 3 { // mails 3 to 5 of the hour
		e.Clock.Advance(time.Minute)
		if n := forgot(); n != 1 {
			t.Fatalf("request a minute after the last mail: %d mails; want 1", n)
		}
	}
	e.Clock.Advance(time.Minute)
	if n := forgot(); n != 0 {
		t.Fatalf("sixth mail within the hour: %d mails; want 0", n)
	}
	e.Clock.Advance(56 * time.Minute) // an hour after the first mail
	if n := forgot(); n != 1 {
		t.Fatalf("an hour after the first mail: %d mails; want 1", n)
	}

	// A signup whose mail cannot be queued takes nothing from the quota.
	e.Mailer.Fail = accounts.ErrUnavailable
	if err := e.Service.Signup(ctx, "eve@example.com", rightPW, "", client); !errors.Is(err, accounts.ErrUnavailable) {
		t.Fatalf("signup with the outbox down: %v; want ErrUnavailable", err)
	}
	e.Mailer.Fail = nil
	if err := e.Service.Signup(ctx, "eve@example.com", rightPW, "", client); err != nil {
		t.Fatal(err)
	}
	if mails := resolve(t, e); len(mails) != 1 {
		t.Errorf("signup after a failed one: %d mails; want 1", len(mails))
	}
}

// TestMailQuotaConcurrent: of parallel requests for one address, the quota
// lets exactly one mail through.
func TestMailQuotaConcurrent(t *testing.T) {
	e := accountstest.New(nil)
	ctx := context.Background()
	newUser(t, e, "fay@example.com")
	var wg sync.WaitGroup
	var mu sync.Mutex
	sent := 0
	for i := range 10 {
		wg.Go(func() {
			m, ok, err := e.Service.ResolveMail(ctx, "parallel-"+string(rune('a'+i)), accounts.Mail{To: "fay@example.com", Kind: accounts.MailResetRequest})
			if err != nil {
				t.Errorf("resolve: %v", err)
			}
			if ok && m.Kind == accounts.MailReset {
				mu.Lock()
				sent++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if sent != 1 {
		t.Errorf("10 parallel reset requests: %d mails; want 1", sent)
	}
}

// TestLapsedSignup: a signup whose link expired can get a new link (and
// signing in with its password says to verify) for a week; only the newest
// link verifies; after the week, nothing is left of it.
func TestLapsedSignup(t *testing.T) {
	e := accountstest.New(nil)
	ctx := context.Background()
	const email = "gil@example.com"
	if err := e.Service.Signup(ctx, email, rightPW, "", client); err != nil {
		t.Fatal(err)
	}
	first := resolve(t, e)[0]
	e.Clock.Advance(25 * time.Hour)
	if _, _, err := e.Service.Verify(ctx, token(t, first), rightPW, "", client); !errors.Is(err, accounts.ErrTokenInvalid) {
		t.Fatalf("verify with an expired link: %v; want ErrTokenInvalid", err)
	}
	if _, _, err := e.Service.Login(ctx, email, rightPW, "", client); !errors.Is(err, accounts.ErrEmailNotVerified) {
		t.Errorf("login with a lapsed signup's password: %v; want ErrEmailNotVerified", err)
	}
	if err := e.Service.ResendVerification(ctx, email, client); err != nil {
		t.Fatal(err)
	}
	second := resolve(t, e)
	if len(second) != 1 {
		t.Fatalf("resend for a lapsed signup: %d mails; want 1", len(second))
	}
	if _, _, err := e.Service.Verify(ctx, token(t, second[0]), wrongPW, "", client); !errors.Is(err, accounts.ErrInvalidCredentials) {
		t.Errorf("new link with another password: %v; want ErrInvalidCredentials", err)
	}
	if _, _, err := e.Service.Verify(ctx, token(t, second[0]), rightPW, "", client); err != nil {
		t.Errorf("new link with the signup password: %v", err)
	}

	// Past the week a lapsed signup is gone: resend mails nothing.
	const late = "hal@example.com"
	if err := e.Service.Signup(ctx, late, rightPW, "", client); err != nil {
		t.Fatal(err)
	}
	resolve(t, e)
	e.Clock.Advance(24*time.Hour + 7*24*time.Hour + time.Minute)
	if err := e.Service.ResendVerification(ctx, late, client); err != nil {
		t.Fatal(err)
	}
	if mails := resolve(t, e); len(mails) != 0 {
		t.Errorf("resend a week after the link expired: %d mails; want none", len(mails))
	}
}

// TestConnectRules: connecting a provider needs a recent sign-in, and the
// flow must come back to the session that started it (LK-4).
func TestConnectRules(t *testing.T) {
	e := accountstest.New(nil)
	ctx := context.Background()
	u := newUser(t, e, "ida@example.com")
	_, ns, err := e.Service.Login(ctx, "ida@example.com", rightPW, "", client)
	if err != nil {
		t.Fatal(err)
	}
	a, err := e.Service.Authenticate(ctx, ns.Token)
	if err != nil {
		t.Fatal(err)
	}
	prof := accounts.Profile{Provider: "github", Subject: "42", Email: "ida@example.com", EmailVerified: true}
	started := accounts.ConnectStart{UserID: u.ID, SessionID: a.Session.ID}
	if err := e.Service.StartConnect(a); err != nil {
		t.Fatalf("start connecting right after signing in: %v", err)
	}
	if err := e.Service.ConnectIdentity(ctx, a, accounts.ConnectStart{UserID: u.ID, SessionID: "another"}, prof); !errors.Is(err, accounts.ErrConnectSession) {
		t.Errorf("connect finished by another session: %v; want ErrConnectSession", err)
	}
	if err := e.Service.ConnectIdentity(ctx, accounts.Auth{}, started, prof); !errors.Is(err, accounts.ErrConnectSession) {
		t.Errorf("connect finished signed out: %v; want ErrConnectSession", err)
	}
	e.Clock.Advance(16 * time.Minute)
	if err := e.Service.StartConnect(a); !errors.Is(err, accounts.ErrReauthRequired) {
		t.Errorf("start connecting 16 minutes after signing in: %v; want ErrReauthRequired", err)
	}
	if err := e.Service.ConnectIdentity(ctx, a, started, prof); !errors.Is(err, accounts.ErrReauthRequired) {
		t.Errorf("finish connecting 16 minutes after signing in: %v; want ErrReauthRequired", err)
	}
}
