package main

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

// TestMailReleasedAtShutdown: an instance stopped (SIGTERM) while its
// delivery hangs in a conversation with an SMTP server that stopped
// answering stops within shutdown_timeout + 5 s, and the mail it held is
// sent by another running instance within seconds, exactly once, not when
// its two-minute lease would have ended (RL-4, RL-6).
func TestMailReleasedAtShutdown(t *testing.T) {
	t.Parallel()
	const shutdown = 2 * time.Second
	db := testkit.StartDB(t)
	smtp := testkit.StartSMTP(t)
	env := map[string]string{
		"GATEHOUSE_SERVER_SHUTDOWN_TIMEOUT": shutdown.String(),
		// Both instances seal and open the outbox with one key.
		"GATEHOUSE_SESSION_SECRET": "a shared secret of the two test instances, 32+",
	}
	g1 := testkit.Start(t, run, smtp, testkit.Options{MongoURI: db.URI, Env: env})
	smtp.HangNext(1)
	email := testkit.Email(t)
	if r := g1.Client(t).PostJSON("/api/v1/signup", map[string]string{"email": email, "password": "a shutdown test passphrase"}); r.Status != http.StatusAccepted {
		t.Fatalf("signup: %d %s", r.Status, r.Body)
	}
	faultEventually(t, 15*time.Second, "the first instance's delivery hangs", func() (bool, string) {
		return smtp.Hung() == 1, fmt.Sprintf("%d hung conversations", smtp.Hung())
	})
	g2 := g1.Twin(t)

	began := time.Now()
	if err := g1.Stop(t); err != nil {
		t.Fatalf("stop the first instance: %v", err)
	}
	stopped := time.Since(began)
	t.Logf("SIGTERM with a hung SMTP conversation: stopped after %s (shutdown_timeout %s)", stopped.Round(time.Millisecond), shutdown)
	if stopped > shutdown+5*time.Second {
		t.Errorf("stop took %s; want within shutdown_timeout + 5 s (%s)", stopped, shutdown+5*time.Second)
	}
	m := smtp.WaitMail(t, email, 1, 30*time.Second)
	takeover := m.At.Sub(began)
	t.Logf("mail released at shutdown sent by the other instance %s after SIGTERM", takeover.Round(time.Millisecond))
	if takeover > 15*time.Second {
		t.Errorf("the other instance sent the released mail %s after SIGTERM; want within seconds, not at the end of the 2-minute lease", takeover)
	}
	g2.NoMoreMail(t, email, 1)
}
