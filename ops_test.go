package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

// TestOpsListenerServesMetrics: /metrics is served only on the operations
// listener, so counters that move with account activity (mails sent after a
// forgot-password for an existing address) are not public; the probes
// answer on both listeners.
func TestOpsListenerServesMetrics(t *testing.T) {
	t.Parallel()
	g := start(t, nil)
	if g.OpsURL == "" || g.OpsURL == g.URL {
		t.Fatalf("ops listener %q; want its own address", g.OpsURL)
	}
	public, ops := testkit.NewClient(t, g.URL), testkit.NewClient(t, g.OpsURL)
	_, email := testkit.NewUser(t, g, "a very long passphrase 1")
	if r := public.PostJSON("/api/v1/password/forgot", map[string]string{"email": email}); r.Status != http.StatusAccepted {
		t.Fatalf("forgot: %d %s; want 202", r.Status, r.Body)
	}
	g.SMTP.WaitSubject(t, email, "reset", 15*time.Second)

	for _, path := range []string{"/metrics", "/metrics/"} {
		if r := public.Get(path); r.Status != http.StatusNotFound || strings.Contains(r.Text(), "gatehouse_mail_sent_total") {
			t.Errorf("public GET %s: %d; want 404 without metrics", path, r.Status)
		}
	}
	r := ops.Get("/metrics")
	if r.Status != http.StatusOK || !strings.Contains(r.Text(), "gatehouse_mail_sent_total") {
		t.Fatalf("ops GET /metrics: %d; want 200 with gatehouse_mail_sent_total\n%.300s", r.Status, r.Body)
	}
	for _, c := range []*testkit.Client{public, ops} {
		for _, path := range []string{"/healthz", "/readyz"} {
			if r := c.Get(path); r.Status != http.StatusOK {
				t.Errorf("GET %s%s: %d; want 200", c.Base, path, r.Status)
			}
		}
	}
	// The ops listener serves nothing of the public surface.
	for _, path := range []string{"/login", "/api/v1/session", "/auth/check"} {
		if r := ops.Get(path); r.Status != http.StatusNotFound {
			t.Errorf("ops GET %s: %d; want 404", path, r.Status)
		}
	}
}

// TestOpsListenerOff: server.ops_address "off" (or empty) disables the
// operations listener; the gateway serves without it.
func TestOpsListenerOff(t *testing.T) {
	t.Parallel()
	g := start(t, map[string]string{"GATEHOUSE_SERVER_OPS_ADDRESS": "off"})
	if g.OpsURL != "" {
		t.Fatalf("OpsURL %q with the listener off", g.OpsURL)
	}
	if !strings.Contains(g.Logs(), "ops_listen=off") {
		t.Errorf("startup log does not say the ops listener is off:\n%s", g.Logs())
	}
	c := g.Client(t)
	if r := c.Get("/metrics"); r.Status != http.StatusNotFound {
		t.Errorf("GET /metrics: %d; want 404", r.Status)
	}
	if r := c.Get("/readyz"); r.Status != http.StatusOK {
		t.Errorf("GET /readyz: %d; want 200", r.Status)
	}
}

// TestOpsAddressMustDiffer: an ops listener on the public address would
// publish /metrics; the configuration refuses it.
func TestOpsAddressMustDiffer(t *testing.T) {
	t.Parallel()
	addr := testkit.FreeAddr(t)
	var out bytes.Buffer
	env := map[string]string{
		"GATEHOUSE_SERVER_ADDRESS":     addr,
		"GATEHOUSE_SERVER_OPS_ADDRESS": addr,
		"GATEHOUSE_DATA_DIR":           t.TempDir(),
	}
	err := run(context.Background(), nil, func(k string) string { return env[k] }, &out)
	if err == nil || !strings.Contains(err.Error(), "server.ops_address") {
		t.Fatalf("run with ops_address = address: %v; want a configuration error naming server.ops_address", err)
	}
}

// TestDevMailboxThisMachineOnly: the development mailbox, which holds every
// reset link, answers a browser on this machine and nobody who comes
// through a proxy, even one on the same host.
func TestDevMailboxThisMachineOnly(t *testing.T) {
	t.Parallel()
	g := testkit.Start(t, run, nil, testkit.Options{Env: map[string]string{
		"GATEHOUSE_SERVER_TRUSTED_PROXIES": "127.0.0.1",
	}})
	c := g.Client(t)
	email := testkit.Email(t)
	if r := c.PostJSON("/api/v1/signup", map[string]string{"email": email, "password": "a very long passphrase 1"}); r.Status != http.StatusAccepted {
		t.Fatalf("signup: %d %s; want 202", r.Status, r.Body)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := c.Get("/dev/mailbox")
		if r.Status != http.StatusOK {
			t.Fatalf("mailbox from this machine: %d; want 200", r.Status)
		}
		if strings.Contains(r.Text(), email) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the verification mail never reached the dev mailbox")
		}
		time.Sleep(50 * time.Millisecond)
	}
	proxied := []struct {
		name   string
		header map[string]string
	}{
		{"X-Forwarded-For from a remote client", map[string]string{"X-Forwarded-For": "203.0.113.9"}},
		{"X-Forwarded-For naming loopback", map[string]string{"X-Forwarded-For": "127.0.0.1"}},
		{"Forwarded", map[string]string{"Forwarded": "for=198.51.100.7;proto=https"}},
		{"X-Real-IP", map[string]string{"X-Real-IP": "198.51.100.7"}},
		{"X-Forwarded-Host", map[string]string{"X-Forwarded-Host": "auth.example.com"}},
	}
	for _, p := range proxied {
		req := c.NewRequest(http.MethodGet, "/dev/mailbox", nil)
		for k, v := range p.header {
			req.Header.Set(k, v)
		}
		r := c.Do(req)
		if r.Status != http.StatusNotFound || strings.Contains(r.Text(), email) {
			t.Errorf("mailbox through a proxy (%s): %d; want 404 without the mails", p.name, r.Status)
		}
	}
}
