package main

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

// start runs a gateway on the real wiring with a capturing SMTP server.
func start(tb testing.TB, env map[string]string) *testkit.Gateway {
	tb.Helper()
	return testkit.Start(tb, run, testkit.StartSMTP(tb), testkit.Options{Env: env})
}

// runAt is run with the domain's clock set by clock: tests move time
// forward instead of sleeping through timeouts and back-offs.
func runAt(clock *testkit.Clock) testkit.RunFunc {
	return func(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
		return run(context.WithValue(ctx, clockKey{}, clock.Now), args, getenv, stdout)
	}
}

// TestJourneyAPI is the smallest whole journey: signup, the mailed link,
// verification with the signup password, the session, sign-out.
func TestJourneyAPI(t *testing.T) {
	t.Parallel()
	g := start(t, nil)
	c := g.Client(t)
	email, pw := testkit.Email(t), "a very long passphrase 1"
	m := c.SignUp(g, email, pw)
	if r := c.Login(email, pw); r.ErrorCode() != "email_not_verified" || r.Status != http.StatusForbidden {
		t.Fatalf("login before verify: %d %s; want 403 email_not_verified", r.Status, r.Body)
	}
	if r := c.Verify(m.Token(t), pw); r.Status != http.StatusOK {
		t.Fatalf("verify: %d %s; want 200", r.Status, r.Body)
	}
	r := c.Get("/api/v1/session")
	if r.Status != http.StatusOK {
		t.Fatalf("session: %d %s; want 200", r.Status, r.Body)
	}
	if got := r.JSON(t)["user"].(map[string]any)["email"]; got != email {
		t.Errorf("session email = %v; want %s", got, email)
	}
	if r := c.PostJSON("/api/v1/logout", nil); r.Status != http.StatusNoContent {
		t.Fatalf("logout: %d; want 204", r.Status)
	}
	if r := c.Get("/api/v1/session"); r.Status != http.StatusUnauthorized {
		t.Fatalf("session after logout: %d; want 401", r.Status)
	}
}
