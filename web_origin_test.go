package main

// Black-box tests of cross-origin refusals (CS-1).

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

func TestWebCrossOriginRefused(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock()
	g := testkit.Start(t, runAt(clock), testkit.StartSMTP(t), testkit.Options{Env: webEnv(nil)})

	// A pending signup, whose verification and resend must not be
	// triggered from another origin.
	pending := testkit.Email(t)
	pendingToken := g.Client(t).SignUp(g, pending, webPassword).Token(t)

	// A user with two sessions.
	owner, ownerEmail := testkit.NewUser(t, g, webPassword)
	second := g.Client(t)
	if r := second.Login(ownerEmail, webPassword); r.Status != http.StatusOK {
		t.Fatalf("second login: %d %s; want 200", r.Status, r.Body)
	}
	secondID := webSessionID(t, second)

	// A user with a live reset link.
	_, resetEmail := testkit.NewUser(t, g, webPassword)
	if r := g.Client(t).PostJSON("/api/v1/password/forgot", map[string]string{"email": resetEmail}); r.Status != http.StatusAccepted {
		t.Fatalf("forgot: %d %s; want 202", r.Status, r.Body)
	}
	resetToken := g.SMTP.WaitSubject(t, resetEmail, "reset", 15*time.Second).Token(t)
	ownerMails := webMailsTo(g, ownerEmail)

	// Past the mail interval, so a resend that got through would be sent
	// and seen.
	clock.Advance(time.Minute)

	const newPassword = "a brand new passphrase 9"
	var signupVictims []string
	attacks := []struct {
		name string
		// send makes the request with the foreign headers, with a client
		// of its choice.
		send func(t *testing.T, h map[string]string) *testkit.Response
		// after checks right away that nothing happened.
		after func(t *testing.T, r *testkit.Response)
	}{
		{"form login", func(t *testing.T, h map[string]string) *testkit.Response {
			c := g.Client(t)
			r := webForm(t, c, "/login", url.Values{"email": {ownerEmail}, "password": {webPassword}}, h)
			if webSignedIn(t, c) {
				t.Error("cross-origin login form signed the client in")
			}
			return r
		}, webNoCookie},
		{"API login", func(t *testing.T, h map[string]string) *testkit.Response {
			c := g.Client(t)
			r := webJSON(t, c, "POST", "/api/v1/login", webMustJSON(t, map[string]string{"email": ownerEmail, "password": webPassword}), h)
			if webSignedIn(t, c) {
				t.Error("cross-origin API login signed the client in")
			}
			return r
		}, webNoCookie},
		{"form logout", func(t *testing.T, h map[string]string) *testkit.Response {
			return webForm(t, owner, "/logout", url.Values{}, h)
		}, func(t *testing.T, r *testkit.Response) {
			if !webSignedIn(t, owner) {
				t.Fatal("cross-origin logout form ended the session")
			}
		}},
		{"API logout", func(t *testing.T, h map[string]string) *testkit.Response {
			return webSend(t, owner, "POST", "/api/v1/logout", "", nil, h)
		}, func(t *testing.T, r *testkit.Response) {
			if !webSignedIn(t, owner) {
				t.Fatal("cross-origin API logout ended the session")
			}
		}},
		{"form signup", func(t *testing.T, h map[string]string) *testkit.Response {
			victim := testkit.Email(t)
			signupVictims = append(signupVictims, victim)
			return webForm(t, g.Client(t), "/signup", url.Values{"email": {victim}, "password": {webPassword}}, h)
		}, nil},
		{"API signup", func(t *testing.T, h map[string]string) *testkit.Response {
			victim := testkit.Email(t)
			signupVictims = append(signupVictims, victim)
			return webJSON(t, g.Client(t), "POST", "/api/v1/signup", webMustJSON(t, map[string]string{"email": victim, "password": webPassword}), h)
		}, nil},
		{"form verify", func(t *testing.T, h map[string]string) *testkit.Response {
			c := g.Client(t)
			r := webForm(t, c, "/verify", url.Values{"token": {pendingToken}, "password": {webPassword}}, h)
			if webSignedIn(t, c) {
				t.Error("cross-origin verify form signed the client in")
			}
			return r
		}, webNoCookie},
		{"API verify", func(t *testing.T, h map[string]string) *testkit.Response {
			c := g.Client(t)
			r := webJSON(t, c, "POST", "/api/v1/verify", webMustJSON(t, map[string]string{"token": pendingToken, "password": webPassword}), h)
			if webSignedIn(t, c) {
				t.Error("cross-origin API verify signed the client in")
			}
			return r
		}, webNoCookie},
		{"form resend", func(t *testing.T, h map[string]string) *testkit.Response {
			return webForm(t, g.Client(t), "/verify/resend", url.Values{"email": {pending}}, h)
		}, nil},
		{"API resend", func(t *testing.T, h map[string]string) *testkit.Response {
			return webJSON(t, g.Client(t), "POST", "/api/v1/verify/resend", webMustJSON(t, map[string]string{"email": pending}), h)
		}, nil},
		{"form forgot", func(t *testing.T, h map[string]string) *testkit.Response {
			return webForm(t, g.Client(t), "/password/forgot", url.Values{"email": {ownerEmail}}, h)
		}, nil},
		{"API forgot", func(t *testing.T, h map[string]string) *testkit.Response {
			return webJSON(t, g.Client(t), "POST", "/api/v1/password/forgot", webMustJSON(t, map[string]string{"email": ownerEmail}), h)
		}, nil},
		{"form reset", func(t *testing.T, h map[string]string) *testkit.Response {
			return webForm(t, g.Client(t), "/password/reset", url.Values{"token": {resetToken}, "password": {newPassword}}, h)
		}, func(t *testing.T, r *testkit.Response) {
			if !webLoginWorks(t, g, resetEmail, webPassword) {
				t.Fatal("after a cross-origin reset form the old password no longer works")
			}
		}},
		{"API reset", func(t *testing.T, h map[string]string) *testkit.Response {
			return webJSON(t, g.Client(t), "POST", "/api/v1/password/reset", webMustJSON(t, map[string]string{"token": resetToken, "password": newPassword}), h)
		}, func(t *testing.T, r *testkit.Response) {
			if !webLoginWorks(t, g, resetEmail, webPassword) {
				t.Fatal("after a cross-origin API reset the old password no longer works")
			}
		}},
		{"form change password", func(t *testing.T, h map[string]string) *testkit.Response {
			return webForm(t, owner, "/account/password", url.Values{"current_password": {webPassword}, "new_password": {newPassword}}, h)
		}, func(t *testing.T, r *testkit.Response) {
			if !webLoginWorks(t, g, ownerEmail, webPassword) {
				t.Fatal("after a cross-origin password form the old password no longer works")
			}
		}},
		{"API change password", func(t *testing.T, h map[string]string) *testkit.Response {
			return webJSON(t, owner, "POST", "/api/v1/password/change", webMustJSON(t, map[string]string{"current_password": webPassword, "new_password": newPassword}), h)
		}, func(t *testing.T, r *testkit.Response) {
			if !webLoginWorks(t, g, ownerEmail, webPassword) {
				t.Fatal("after a cross-origin API password change the old password no longer works")
			}
		}},
		{"form revoke others", func(t *testing.T, h map[string]string) *testkit.Response {
			return webForm(t, owner, "/account/sessions/revoke-others", url.Values{}, h)
		}, func(t *testing.T, r *testkit.Response) {
			if !webSignedIn(t, second) {
				t.Fatal("cross-origin revoke-others form ended the other session")
			}
		}},
		{"API revoke others", func(t *testing.T, h map[string]string) *testkit.Response {
			return webSend(t, owner, "DELETE", "/api/v1/sessions", "", nil, h)
		}, func(t *testing.T, r *testkit.Response) {
			if !webSignedIn(t, second) {
				t.Fatal("cross-origin DELETE /api/v1/sessions ended the other session")
			}
		}},
		{"form revoke one", func(t *testing.T, h map[string]string) *testkit.Response {
			return webForm(t, owner, "/account/sessions/"+url.PathEscape(secondID)+"/revoke", url.Values{}, h)
		}, func(t *testing.T, r *testkit.Response) {
			if !webSignedIn(t, second) {
				t.Fatal("cross-origin revoke form ended the session")
			}
		}},
		{"API revoke one", func(t *testing.T, h map[string]string) *testkit.Response {
			return webSend(t, owner, "DELETE", "/api/v1/sessions/"+url.PathEscape(secondID), "", nil, h)
		}, func(t *testing.T, r *testkit.Response) {
			if !webSignedIn(t, second) {
				t.Fatal("cross-origin DELETE /api/v1/sessions/{id} ended the session")
			}
		}},
	}
	for _, a := range attacks {
		for _, f := range webForeign {
			t.Run(a.name+"/"+f.name, func(t *testing.T) {
				r := a.send(t, f.header)
				if r.Status != http.StatusForbidden {
					t.Errorf("status %d; want 403\n%.300s", r.Status, r.Body)
				}
				if a.after != nil {
					a.after(t, r)
				}
			})
		}
	}

	// Nothing was mailed: no signup links, no resend, no reset link.
	webMailBarrier(t, g)
	for _, v := range signupVictims {
		if n := webMailsTo(g, v); n != 0 {
			t.Errorf("cross-origin signup of %s sent %d mails; want 0", v, n)
		}
	}
	if n := webMailsTo(g, pending); n != 1 {
		t.Errorf("pending signup got %d mails; want 1 (cross-origin resends send nothing)", n)
	}
	if n := webMailsTo(g, ownerEmail); n != ownerMails {
		t.Errorf("owner got %d mails; want %d (cross-origin forgot sends nothing)", n, ownerMails)
	}
	// The links were not used up.
	if r := g.Client(t).Verify(pendingToken, webPassword); r.Status != http.StatusOK {
		t.Errorf("same-origin verify after the attacks: %d %s; want 200", r.Status, r.Body)
	}
	if r := g.Client(t).PostJSON("/api/v1/password/reset", map[string]string{"token": resetToken, "password": newPassword}); r.Status != http.StatusNoContent {
		t.Errorf("same-origin reset after the attacks: %d %s; want 204", r.Status, r.Body)
	}
}

// webNoCookie checks that a refused sign-in set no cookie.
func webNoCookie(t *testing.T, r *testkit.Response) {
	t.Helper()
	if sc := r.Header.Values("Set-Cookie"); len(sc) != 0 {
		t.Errorf("refused cross-origin sign-in set cookies %q; want none", sc)
	}
}

// TestWebSameOriginForms: forms work without JavaScript from our own pages,
// from old browsers that send only Origin, and from non-browser clients;
// cross-site navigations (GET) still work.
func TestWebSameOriginForms(t *testing.T) {
	t.Parallel()
	g := start(t, webEnv(nil))

	for path, action := range map[string]string{"/login": "/login", "/signup": "/signup", "/password/forgot": "/password/forgot"} {
		r := webSend(t, g.Client(t), "GET", path, "", nil, map[string]string{"Sec-Fetch-Site": "cross-site"})
		if r.Status != http.StatusOK {
			t.Fatalf("GET %s from a link on another site: %d; want 200", path, r.Status)
		}
		body := r.Text()
		if !strings.Contains(body, `<form method="post" action="`+action+`"`) {
			t.Errorf("GET %s has no plain <form method=\"post\" action=%q>", path, action)
		}
		if strings.Contains(strings.ToLower(body), "<script") {
			t.Errorf("GET %s contains a <script>; the pages must work without JavaScript", path)
		}
		for _, name := range []string{`name="email"`} {
			if !strings.Contains(body, name) {
				t.Errorf("GET %s has no input %s", path, name)
			}
		}
	}

	// Signup, verify, logout and login, all by plain form posts.
	c := g.Client(t)
	email := testkit.Email(t)
	if r := c.PostForm("/signup", url.Values{"email": {email}, "password": {webPassword}}); r.Status != http.StatusOK {
		t.Fatalf("signup form: %d; want 200", r.Status)
	}
	token := g.SMTP.WaitMail(t, email, 1, 15*time.Second).Token(t)
	if r := c.PostForm("/verify", url.Values{"token": {token}, "password": {webPassword}}); r.Status != http.StatusSeeOther {
		t.Fatalf("verify form: %d; want 303", r.Status)
	}
	if !webSignedIn(t, c) {
		t.Fatal("not signed in after the verify form")
	}
	if r := c.PostForm("/logout", nil); r.Status != http.StatusSeeOther {
		t.Fatalf("logout form: %d; want 303", r.Status)
	}
	if webSignedIn(t, c) {
		t.Fatal("still signed in after the logout form")
	}
	creds := url.Values{"email": {email}, "password": {webPassword}}
	for name, h := range map[string]map[string]string{
		"Sec-Fetch-Site same-origin": {"Sec-Fetch-Site": "same-origin", "Origin": g.URL},
		"old browser, own Origin":    {"Origin": g.URL},
		"no browser headers":         nil,
	} {
		c := g.Client(t)
		r := webForm(t, c, "/login", creds, h)
		if r.Status != http.StatusSeeOther || r.Header.Get("Location") != "/account" {
			t.Errorf("%s: login form %d to %q; want 303 to /account", name, r.Status, r.Header.Get("Location"))
			continue
		}
		if !webSignedIn(t, c) {
			t.Errorf("%s: not signed in after the login form", name)
		}
	}
}

// TestWebCORSOriginMayPost: the configured SPA origin may sign in, read the
// session and sign out across origins, with credentials.
func TestWebCORSOriginMayPost(t *testing.T) {
	t.Parallel()
	g := start(t, webEnv(nil))
	_, email := testkit.NewUser(t, g, webPassword)
	spa := map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": webSPAOrigin}
	c := g.Client(t)
	r := webJSON(t, c, "POST", "/api/v1/login", webMustJSON(t, map[string]string{"email": email, "password": webPassword}), spa)
	if r.Status != http.StatusOK {
		t.Fatalf("SPA login: %d %s; want 200", r.Status, r.Body)
	}
	if got := r.Header.Get("Access-Control-Allow-Origin"); got != webSPAOrigin {
		t.Errorf("SPA login: Access-Control-Allow-Origin = %q; want %s", got, webSPAOrigin)
	}
	if got := r.Header.Get("Access-Control-Allow-Credentials"); got != "true" {
		t.Errorf("SPA login: Access-Control-Allow-Credentials = %q; want true", got)
	}
	if len(r.Header.Values("Set-Cookie")) == 0 {
		t.Error("SPA login set no session cookie")
	}
	if r := webSend(t, c, "GET", "/api/v1/session", "", nil, spa); r.Status != http.StatusOK {
		t.Fatalf("SPA session: %d; want 200", r.Status)
	}
	if r := webSend(t, c, "POST", "/api/v1/logout", "", nil, spa); r.Status != http.StatusNoContent {
		t.Fatalf("SPA logout: %d %s; want 204", r.Status, r.Body)
	}
	if webSignedIn(t, c) {
		t.Error("still signed in after the SPA's logout")
	}
}
