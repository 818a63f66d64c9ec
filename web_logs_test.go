package main

// Black-box tests that no secret reaches the logs (IN-4).

import (
	"bytes"
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

// webSessionToken decodes the session token from a session cookie value
// (gorilla/securecookie: base64url("date|base64url(value)|mac")), or "" if
// the value does not have that shape.
func webSessionToken(value string) string {
	raw, err := base64.URLEncoding.DecodeString(value)
	if err != nil {
		return ""
	}
	parts := bytes.SplitN(raw, []byte("|"), 3)
	if len(parts) != 3 {
		return ""
	}
	tok, err := base64.URLEncoding.DecodeString(string(parts[1]))
	if err != nil {
		return ""
	}
	return string(tok)
}

// webLogLines returns the log lines containing s, for failure messages.
func webLogLines(logs, s string) string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
			if len(out) == 5 {
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

func TestWebNoSecretsInLogs(t *testing.T) {
	t.Parallel()
	g := start(t, nil) // real SMTP: links are not logged by a dev mailbox
	secrets := map[string]string{}
	pw := map[string]string{
		"password at signup":         "in4 first passphrase Alpha-1",
		"wrong password":             "in4-wrong-Passphrase-Bravo2",
		"password of the attacker":   "in4 attacker passphrase Foxtrot",
		"password after reset":       "in4 second passphrase Charlie3",
		"password after API change":  "in4-third-Passphrase-Delta4",
		"password after form change": "in4 fourth passphrase Echo5",
	}
	for k, v := range pw {
		secrets[k] = v
	}
	addSession := func(name string, c *testkit.Client) {
		t.Helper()
		ck := c.Cookie(testkit.CookieName)
		if ck == nil {
			t.Fatalf("%s: no session cookie", name)
		}
		secrets[name+" cookie"] = ck.Value
		tok := webSessionToken(ck.Value)
		if tok == "" {
			t.Logf("%s: cookie is not in securecookie form; checking the raw value only", name)
			return
		}
		secrets[name+" token"] = tok
		if _, secret, ok := strings.Cut(tok, "."); ok {
			secrets[name+" token secret"] = secret
		}
	}
	addMail := func(name string, m testkit.Mail) string {
		t.Helper()
		secrets[name+" link"] = m.Link(t)
		tok := m.Token(t)
		secrets[name+" token"] = tok
		return tok
	}
	expect := func(what string, r *testkit.Response, want int) {
		t.Helper()
		if r.Status != want {
			t.Fatalf("%s: %d; want %d\n%.300s", what, r.Status, want, r.Body)
		}
	}

	email := testkit.Email(t)
	c := g.Client(t)
	expect("signup form", c.PostForm("/signup", url.Values{"email": {email}, "password": {pw["password at signup"]}}), 200)
	verifyMail := g.SMTP.WaitMail(t, email, 1, 15*time.Second)
	verifyToken := addMail("verify", verifyMail)
	expect("verify page", c.Get("/verify?token="+verifyToken), 200)
	expect("verify with a wrong password", c.PostForm("/verify", url.Values{"token": {verifyToken}, "password": {pw["wrong password"]}}), 401)
	expect("verify", c.PostForm("/verify", url.Values{"token": {verifyToken}, "password": {pw["password at signup"]}}), 303)
	addSession("session after verify", c)

	// Someone signs up with the taken address; the owner is told.
	expect("signup of a taken address", g.Client(t).PostJSON("/api/v1/signup", map[string]string{"email": email, "password": pw["password of the attacker"]}), 202)
	expect("logout", c.PostForm("/logout", nil), 303)
	expect("login wrong password (form)", c.PostForm("/login", url.Values{"email": {email}, "password": {pw["wrong password"]}}), 401)
	expect("login wrong password (API)", c.Login(email, pw["wrong password"]), 401)
	expect("login unknown address", c.Login(testkit.Email(t), pw["wrong password"]), 401)
	expect("login (form)", c.PostForm("/login", url.Values{"email": {email}, "password": {pw["password at signup"]}}), 303)
	addSession("session after login", c)

	// Forgot and reset by forms.
	expect("forgot form", g.Client(t).PostForm("/password/forgot", url.Values{"email": {email}}), 200)
	resetToken := addMail("reset", g.SMTP.WaitSubject(t, email, "reset your password", 15*time.Second))
	expect("reset page", g.Client(t).Get("/password/reset?token="+resetToken), 200)
	expect("reset form", g.Client(t).PostForm("/password/reset", url.Values{"token": {resetToken}, "password": {pw["password after reset"]}}), 303)
	expect("replayed reset link", g.Client(t).PostForm("/password/reset", url.Values{"token": {resetToken}, "password": {pw["password after reset"]}}), 400)

	// Sign in through the API, change the password twice.
	c = g.Client(t)
	expect("login (API)", c.Login(email, pw["password after reset"]), 200)
	addSession("session after API login", c)
	expect("change password (API)", c.PostJSON("/api/v1/password/change", map[string]string{
		"current_password": pw["password after reset"], "new_password": pw["password after API change"]}), 204)
	expect("change password (form)", c.PostForm("/account/password", url.Values{
		"current_password": {pw["password after API change"]}, "new_password": {pw["password after form change"]}}), 303)
	expect("account page", c.Get("/account"), 200)
	old := c.Cookie(testkit.CookieName)
	expect("logout (API)", c.PostJSON("/api/v1/logout", nil), 204)
	replay := g.Client(t)
	replay.SetCookie(old)
	expect("replayed cookie after logout", replay.Get("/api/v1/session"), 401)

	// Wait for the last mails, so their sending is logged too.
	g.SMTP.WaitSubject(t, email, "password was changed", 15*time.Second)
	webMailBarrier(t, g)

	logs := g.Logs()
	if !strings.Contains(logs, "path=/verify") || !strings.Contains(logs, "path=/password/reset") {
		t.Fatalf("the logs have no access lines for /verify and /password/reset; the scan would prove nothing:\n%.2000s", logs)
	}
	for name, s := range secrets {
		forms := map[string]bool{s: true, url.QueryEscape(s): true, url.PathEscape(s): true}
		for form := range forms {
			if strings.Contains(logs, form) {
				t.Errorf("the logs contain the %s:\n%s", name, webLogLines(logs, form))
			}
		}
	}
}
