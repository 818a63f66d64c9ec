package main

// Two gateways on one database (RL-6).

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

// TestFaultTwoGatewaysOneDatabase runs two gateways on one database, as two
// instances of a deployment: each mail is sent once though both workers poll
// the outbox, links and sessions work across instances, and a sign-out on
// one reaches the other within session.cache_ttl (RL-6).
func TestFaultTwoGatewaysOneDatabase(t *testing.T) {
	t.Parallel()
	db := testkit.StartDB(t)
	smtp := testkit.StartSMTP(t)
	g1 := testkit.Start(t, run, smtp, testkit.Options{MongoURI: db.URI, Env: map[string]string{
		// Instances share the secret: it signs cookies and seals queued mail.
		"GATEHOUSE_SESSION_SECRET":    "shared by every instance of this deployment",
		"GATEHOUSE_SESSION_CACHE_TTL": "1s",
	}})
	g2 := g1.Twin(t)
	gateways := []*testkit.Gateway{g1, g2}

	email := testkit.Email(t)
	var token string
	signups := []string{email}
	// Each mail was sent once: checked last, when g2 has stopped and a
	// barrier through g1, now the only worker, has arrived.
	defer func() {
		if err := g2.Stop(t); err != nil {
			t.Errorf("stop g2: %v", err)
		}
		g1.MailBarrier(t)
		for _, e := range signups {
			if got := len(smtp.MailsWithSubject(e, faultVerifySubject)); got != 1 {
				t.Errorf("%s got %d verification mails; want 1", e, got)
			}
		}
	}()
	t.Run("one mail per signup", func(t *testing.T) {
		if r := g1.Client(t).PostJSON("/api/v1/signup", map[string]string{"email": email, "password": faultPW}); r.Status != http.StatusAccepted {
			t.Fatalf("signup: %d %s; want 202", r.Status, r.Body)
		}
		token = smtp.WaitSubject(t, email, faultVerifySubject, faultMailWait).Token(t)
	})
	t.Run("twenty signups over both", func(t *testing.T) {
		const n = 20
		emails := make([]string, n)
		for i := range emails {
			emails[i] = testkit.Email(t)
		}
		res := faultParallel(n, func(i int) (*testkit.Response, error) {
			return faultUntilServed(func() (*testkit.Response, error) {
				return gateways[i%2].Client(t).TryJSON(http.MethodPost, "/api/v1/signup", map[string]string{"email": emails[i], "password": faultPW})
			})
		})
		faultTally(t, "signup", res, http.StatusAccepted)
		for _, e := range emails {
			smtp.WaitMail(t, e, 1, faultMailWait)
		}
		signups = append(signups, emails...)
	})
	t.Run("verify on the other gateway", func(t *testing.T) {
		if token == "" {
			t.Skip("no link from the first subtest")
		}
		if r := g2.Client(t).Verify(token, faultPW); r.Status != http.StatusOK {
			t.Fatalf("verify on g2 with g1's link: %d %s; want 200", r.Status, r.Body)
		}
	})
	t.Run("session across gateways and logout", func(t *testing.T) {
		_, owner := testkit.NewUser(t, g1, faultPW)
		c1 := g1.Client(t)
		r := c1.Login(owner, faultPW)
		if r.Status != http.StatusOK {
			t.Fatalf("login on g1: %d %s; want 200", r.Status, r.Body)
		}
		userID := r.JSON(t)["user"].(map[string]any)["id"]
		cookie := c1.Cookie(testkit.CookieName)
		if cookie == nil {
			t.Fatal("no session cookie from g1")
		}
		copyOn := func(g *testkit.Gateway) *testkit.Client {
			c := g.Client(t)
			c.SetCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
			return c
		}
		onG1, onG2 := copyOn(g1), copyOn(g2)
		r = onG2.Get("/api/v1/session")
		if r.Status != http.StatusOK {
			t.Fatalf("g1's session on g2: %d %s; want 200", r.Status, r.Body)
		}
		if got := r.JSON(t)["user"].(map[string]any)["id"]; got != userID {
			t.Errorf("g2 sees user %v; want %v", got, userID)
		}
		if r := onG1.Get("/api/v1/session"); r.Status != http.StatusOK {
			t.Fatalf("copied cookie on g1: %d; want 200", r.Status)
		}

		if r := c1.PostJSON("/api/v1/logout", nil); r.Status != http.StatusNoContent {
			t.Fatalf("logout on g1: %d %s; want 204", r.Status, r.Body)
		}
		if r := onG1.Get("/api/v1/session"); r.Status != http.StatusUnauthorized {
			t.Errorf("logged-out cookie on g1: %d; want 401 at once (SE-3)", r.Status)
		}
		faultEventually(t, 3*time.Second, "logged-out cookie refused on g2", func() (bool, string) {
			r := onG2.Get("/api/v1/session")
			return r.Status == http.StatusUnauthorized, fmt.Sprintf("status %d", r.Status)
		})
	})
}
