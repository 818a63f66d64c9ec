package web

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func newTemplates(tb testing.TB) *Templates {
	tb.Helper()
	tmpl, err := New()
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return tmpl
}

func render(tb testing.TB, tmpl *Templates, page Page) string {
	tb.Helper()
	var buf bytes.Buffer
	if err := tmpl.Render(&buf, page); err != nil {
		tb.Fatalf("Render(%s): %v", page.TemplateName(), err)
	}
	return buf.String()
}

func TestRenderZeroValues(t *testing.T) {
	tmpl := newTemplates(t)
	covered := make(map[string]bool)
	for _, page := range zeroPages {
		covered[page.TemplateName()] = true
	}
	for name := range tmpl.pages {
		if !covered[name] {
			t.Errorf("got template %q with no page type in zeroPages", name)
		}
	}
	for _, page := range zeroPages {
		t.Run(page.TemplateName(), func(t *testing.T) {
			html := render(t, tmpl, page)
			if !strings.Contains(html, `<html lang="en">`) {
				t.Errorf("got no <html lang=\"en\"> in:\n%s", html)
			}
			if !strings.Contains(html, "</html>") {
				t.Errorf("got a truncated document:\n%s", html)
			}
		})
	}
}

func TestRenderContains(t *testing.T) {
	tmpl := newTemplates(t)
	pages := SamplePages()
	tests := []struct {
		name    string
		page    Page
		want    []string
		notWant []string
	}{
		{
			name: "login",
			page: pages["login"],
			want: []string{
				`<form method="post" action="/login"`,
				`<input type="hidden" name="return_to" value="/app?x=1&amp;y=2">`,
				`href="/signup?return_to=%2fapp%3fx%3d1%26y%3d2"`,
				`href="/password/forgot"`,
				`autocomplete="current-password"`,
				`Continue with Google`, `Continue with GitHub`,
				`href="/auth/google?return_to=%2Fapp"`,
				`<a href="/dev/mailbox">Dev mailbox</a>`,
				`<a class="brand" href="/login">`,
			},
			notWant: []string{`/verify/resend`, `role="alert"`, `action="/logout"`},
		},
		{
			name: "login error is an alert tied to the fields",
			page: pages["login-error"],
			want: []string{`role="alert" id="form-error"`, `Email or password is incorrect.`, `aria-describedby="form-error"`, `value="ada@example.com"`},
		},
		{
			name:    "login without return_to links to plain /signup",
			page:    LoginPage{},
			want:    []string{`href="/signup"`},
			notWant: []string{`Continue with`, `Dev mailbox`},
		},
		{
			name: "login not verified offers a resend form",
			page: pages["login-not-verified"],
			want: []string{
				`Verify your email first. We can send you a new link.`,
				`<form method="post" action="/verify/resend">`,
				`<input type="hidden" name="email" value="ada@example.com">`,
				`Send a new link`,
			},
		},
		{
			name: "signup",
			page: pages["signup"],
			want: []string{
				`<form method="post" action="/signup"`,
				`autocomplete="new-password" minlength="12" maxlength="128"`,
				`At least 12 characters. Long passphrases are great.`,
				`<input type="hidden" name="return_to" value="/app">`,
				`href="/login?return_to=%2fapp"`,
				`Already have an account?`,
				`Continue with GitHub`,
			},
		},
		{
			name: "signup field errors",
			page: pages["signup-errors"],
			want: []string{
				`role="alert"`,
				`aria-invalid="true" aria-describedby="email-error"`,
				`<p class="field-error" id="email-error">Enter an email address like name@example.com.</p>`,
				`aria-describedby="password-hint password-error"`,
			},
		},
		{
			name: "check inbox after signup",
			page: pages["check-inbox-signup"],
			want: []string{
				`If you can sign up with this address, we sent a confirmation link to <strong class="break">ada@example.com</strong>`,
				`action="/verify/resend"`, `<input type="hidden" name="email" value="ada@example.com">`,
				`href="/login"`,
			},
		},
		{
			name:    "check inbox after reset",
			page:    pages["check-inbox-reset"],
			want:    []string{`If an account exists for <strong class="break">ada@example.com</strong>, we sent a link to reset your password. The link is valid for 1 hour.`},
			notWant: []string{`/verify/resend`},
		},
		{
			name: "verify",
			page: pages["verify"],
			want: []string{
				`<form method="post" action="/verify"`,
				`<input type="hidden" name="token" value="tok123">`,
				`<input type="hidden" name="return_to" value="/app">`,
				`autocomplete="current-password"`,
				`Confirm and sign in`,
			},
		},
		{
			name:    "verify invalid",
			page:    pages["verify-invalid"],
			want:    []string{`invalid or has expired`, `action="/verify/resend"`, `name="email"`, `href="/signup"`},
			notWant: []string{`tok123`, `action="/verify"`},
		},
		{
			name: "reset",
			page: pages["reset"],
			want: []string{`action="/password/reset"`, `name="token" value="tok456"`, `autocomplete="new-password" minlength="12"`},
		},
		{
			name:    "reset invalid",
			page:    pages["reset-invalid"],
			want:    []string{`This reset link is invalid or has expired`, `href="/password/forgot"`},
			notWant: []string{`action="/password/reset"`},
		},
		{
			name: "account",
			page: pages["account"],
			want: []string{
				`<form method="post" action="/logout">`,
				`<a class="brand" href="/account">`,
				`role="status"`, `Your password was updated.`,
				`name="current_password"`, `name="new_password"`,
				`Chrome on Linux`, `Safari on iOS`, `Firefox on Windows`,
				`This device`,
				`<time datetime="2026-01-02T17:04:00Z">Jan 2, 2026 17:04 UTC</time>`,
				`action="/account/sessions/sess-phone/revoke"`,
				`action="/account/sessions/sess-work/revoke"`,
				`action="/account/sessions/revoke-others"`,
				`action="/account/identities/google/disconnect"`,
				`action="/account/identities/github/connect"`,
				`ada.lovelace@gmail.com`,
			},
			notWant: []string{`sessions/sess-current/revoke`, `href="/logout"`, ` disabled`},
		},
		{
			name: "account social only",
			page: pages["account-social-only"],
			want: []string{
				`Set a password`, `name="new_password"`, `Sign in again to set a password.`,
				`You'll then be able to sign in with your email address too.`,
				`<form method="post" action="/account/password"`,
				`disabled aria-describedby="disconnect-github-note"`, `id="disconnect-github-note"`,
				`This is your only way to sign in. Set a password or connect another account first.`,
				`action="/account/identities/github/disconnect"`,
				`action="/account/identities/google/connect"`,
			},
			notWant: []string{`current_password`, `revoke-others`, `/revoke"`},
		},
		{
			name:    "account without providers hides sign-in methods",
			page:    AccountPage{HasPassword: true},
			notWant: []string{`Sign-in methods`},
		},
		{
			name: "link with a password offers both ways to prove the account",
			page: pages["link"],
			want: []string{
				`<h1>You already have an account</h1>`,
				`An account for <strong class="break">ada@example.com</strong> already exists. To link your Google account <strong class="break">ada.lovelace@gmail.com</strong> to it, prove the account is yours.`,
				`<form method="post" action="/auth/link" class="form">`,
				`<label for="password">Password of your Gatehouse account</label>`,
				`autocomplete="current-password"`,
				`>Link Google and sign in</button>`,
				`<form method="post" action="/auth/link/mail" class="form">`,
				`class="btn btn-outline btn-block" aria-describedby="mail-note">Email me a confirmation link</button>`,
				`We'll send a link to <strong class="break">ada@example.com</strong>. Open it in this browser.`,
				`<a href="/login">Cancel</a>`,
			},
			notWant: []string{`type="hidden"`, `name="token"`, `role="alert"`, `role="status"`, `We sent a confirmation link`},
		},
		{
			name: "link error",
			page: pages["link-error"],
			want: []string{`role="alert" id="form-error"`, `That password is incorrect.`, `aria-describedby="form-error"`},
		},
		{
			name: "link after the mail was sent",
			page: pages["link-mail-sent"],
			want: []string{
				`role="status"`,
				`We sent a confirmation link to <strong class="break">ada@example.com</strong>. Open it in this browser to finish.`,
				`action="/auth/link"`, `Link GitHub and sign in`,
				`action="/auth/link/mail"`, `Send the link again`,
			},
			notWant: []string{`Email me a confirmation link`},
		},
		{
			name: "link without a password offers only the mail",
			page: pages["link-no-password"],
			want: []string{
				`To link your GitHub account <strong class="break">grace-hopper</strong> to it`,
				`<form method="post" action="/auth/link/mail" class="form">`,
				`class="btn btn-primary btn-block" aria-describedby="mail-note">Email me a confirmation link</button>`,
			},
			notWant: []string{`action="/auth/link"`, `type="password"`, `We sent a confirmation link`},
		},
		{
			name: "link confirm",
			page: pages["link-confirm"],
			want: []string{
				`Link your Google account <strong class="break">ada.lovelace@gmail.com</strong> to <strong class="break">ada@example.com</strong>?`,
				`<form method="post" action="/auth/link/confirm" class="form">`,
				`<input type="hidden" name="token" value="tok789">`,
				`<button type="submit" class="btn btn-primary btn-block">Link Google and sign in</button>`,
			},
			notWant: []string{`can't be used here`},
		},
		{
			name: "link confirm invalid explains why",
			page: pages["link-confirm-invalid"],
			want: []string{
				`<h1>This link can't be used here</h1>`,
				`expired or been used already`,
				`only in the browser where you started to sign in with Google`,
				`href="/login"`,
			},
			notWant: []string{`tok789`, `action="/auth/link/confirm"`, `<form`},
		},
		{
			name: "error",
			page: pages["error"],
			want: []string{`Error 404`, `Page not found`, `Reference: <code>01JH5K3Z8Q2W</code>`, `href="/login"`},
		},
		{
			name: "message",
			page: pages["message"],
			want: []string{`<h1>Password updated</h1>`, `href="/account">Back to your account</a>`},
		},
		{
			name: "mailbox",
			page: pages["mailbox"],
			want: []string{
				`Development mailbox`, `mails are not sent anywhere`,
				`<pre class="mail-body">`,
				`href="http://127.0.0.1:8080/verify?token=Zm9vYmFyYmF6cXV4"`,
			},
		},
		{
			name: "mailbox empty",
			page: pages["mailbox-empty"],
			want: []string{`No mails yet.`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			html := render(t, tmpl, tt.page)
			for _, s := range tt.want {
				if !strings.Contains(html, s) {
					t.Errorf("got no %q in:\n%s", s, html)
				}
			}
			for _, s := range tt.notWant {
				if strings.Contains(html, s) {
					t.Errorf("got %q; want it absent", s)
				}
			}
		})
	}
}

// TestProviderButtons checks the social buttons against the providers'
// branding rules: Google's official "G" and wording, GitHub's mark, and no
// borrowed logo for any other provider.
func TestProviderButtons(t *testing.T) {
	html := render(t, newTemplates(t), SamplePages()["login-other-provider"])
	buttons := regexp.MustCompile(`(?s)<a class="btn btn-provider" href="([^"]*)">(.*?)</a>`).FindAllStringSubmatch(html, -1)
	byURL := make(map[string]string)
	for _, b := range buttons {
		byURL[b[1]] = b[2]
	}
	tests := []struct {
		name    string
		url     string
		want    []string
		notWant []string
	}{
		{
			name: "google",
			url:  "/auth/google?return_to=%2Fapp",
			want: []string{
				`fill="#4285F4"`, `fill="#34A853"`, `fill="#FBBC05"`, `fill="#EA4335"`,
				`width="20" height="20" aria-hidden="true"`,
				`<span>Continue with Google</span>`,
			},
			notWant: []string{`currentColor`},
		},
		{
			name:    "github",
			url:     "/auth/github?return_to=%2Fapp",
			want:    []string{`<path fill="currentColor" d="M8 0C3.58 0 0 3.58 0 8`, `<span>Continue with GitHub</span>`},
			notWant: []string{`#4285F4`},
		},
		{
			name:    "other provider",
			url:     "/auth/keycloak",
			want:    []string{`<span>Continue with Company SSO</span>`},
			notWant: []string{`<svg`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			button, ok := byURL[tt.url]
			if !ok {
				t.Fatalf("got no button linking to %q in:\n%s", tt.url, html)
			}
			if strings.Index(button, "<svg") > strings.Index(button, "<span>") {
				t.Errorf("got the logo after the text; want it on the left: %s", button)
			}
			for _, s := range tt.want {
				if !strings.Contains(button, s) {
					t.Errorf("got no %q in: %s", s, button)
				}
			}
			for _, s := range tt.notWant {
				if strings.Contains(button, s) {
					t.Errorf("got %q; want it absent from: %s", s, button)
				}
			}
		})
	}
	if !strings.Contains(html, `<div class="divider"><span>or</span></div>`) {
		t.Errorf("got no \"or\" divider between the buttons and the form")
	}
}

// TestProviderButtonColours keeps the colours Google prescribes for its
// light and dark buttons in the stylesheet.
func TestProviderButtonColours(t *testing.T) {
	css, err := staticFS.ReadFile("static/style.css")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"--p-bg:#FFFFFF;--p-border:#747775;--p-text:#1F1F1F",
		"--p-bg:#131314;--p-border:#8E918F;--p-text:#E3E3E3",
		".btn-provider{min-height:40px;",
	} {
		if !bytes.Contains(css, []byte(want)) {
			t.Errorf("got no %q in style.css", want)
		}
	}
}

func TestMailboxNewestFirst(t *testing.T) {
	html := render(t, newTemplates(t), SamplePages()["mailbox"])
	reset, verify := strings.Index(html, "Reset your password"), strings.Index(html, "Confirm your email address")
	if reset < 0 || verify < 0 || reset > verify {
		t.Errorf("got reset mail at %d, verify mail at %d; want the newer reset mail first", reset, verify)
	}
}

func TestNoticeOnEveryPage(t *testing.T) {
	tmpl := newTemplates(t)
	for _, page := range withBase(Base{Notice: "All done."}) {
		if html := render(t, tmpl, page); !strings.Contains(html, `role="status">`) || !strings.Contains(html, "All done.") {
			t.Errorf("%s: got no notice banner", page.TemplateName())
		}
	}
}

func TestEscapesUserData(t *testing.T) {
	tmpl := newTemplates(t)
	const evil = `<script>@x.y`
	pages := append(withBase(Base{SignedIn: true, UserEmail: evil, Notice: evil, RequestID: evil}),
		SignupPage{Email: evil, Error: evil, FieldErrors: FieldErrors{Email: evil, Password: evil}, ReturnTo: evil},
		CheckInboxPage{Email: evil},
		LoginPage{Email: evil, NotVerified: true, ReturnTo: evil, Providers: []ProviderButton{{ID: evil, Label: evil, URL: "javascript:alert(1)"}}},
		ForgotPage{Email: evil, Error: evil},
		AccountPage{Email: evil, Sessions: []SessionRow{{ID: `"><script>`, UserAgent: evil, IP: evil}},
			Identities: []IdentityRow{{Provider: evil, Label: evil, Email: evil, Linked: true}}},
		ErrorPage{Heading: evil, Message: evil},
		MessagePage{Heading: evil, Message: evil, LinkURL: "javascript:alert(1)", LinkText: evil},
		MailboxPage{Mails: []MailboxRow{{To: evil, Subject: evil, Text: evil, Link: "javascript:alert(1)"}}},
		LinkPage{Email: evil, Provider: evil, ProviderAccount: evil, HasPassword: true, Error: evil, MailSent: true},
		LinkConfirmPage{Token: evil, Valid: true, Email: evil, Provider: evil, ProviderAccount: evil, Error: evil},
		LinkConfirmPage{Provider: evil, Error: evil},
	)
	for _, page := range pages {
		html := render(t, tmpl, page)
		if strings.Contains(html, "<script") {
			t.Errorf("%s: got an unescaped <script in:\n%s", page.TemplateName(), html)
		}
		if !strings.Contains(html, "&lt;script&gt;@x.y") {
			t.Errorf("%s: got no escaped &lt;script&gt;@x.y", page.TemplateName())
		}
		if strings.Contains(html, `href="javascript:`) {
			t.Errorf("%s: got a javascript: URL", page.TemplateName())
		}
	}
}

// TestCSPCompatible keeps the pages working under
// default-src 'self'; style-src 'self'; script-src 'none'.
func TestCSPCompatible(t *testing.T) {
	tmpl := newTemplates(t)
	forbidden := regexp.MustCompile(`(?i)<script|\sstyle=|<style|\son[a-z]+=|javascript:|https?://(?:[^"]*\.)?(?:googleapis|gstatic|cdn)`)
	for name, page := range allSamples() {
		if m := forbidden.FindString(render(t, tmpl, page)); m != "" {
			t.Errorf("%s: got %q; want no inline style, script or external resource", name, m)
		}
	}
}

// TestAccessibleMarkup checks that labels, aria-describedby and ids point at
// something and that ids are unique within a page.
func TestAccessibleMarkup(t *testing.T) {
	tmpl := newTemplates(t)
	idRe := regexp.MustCompile(`\sid="([^"]*)"`)
	refRe := regexp.MustCompile(`\s(?:for|aria-describedby|aria-labelledby)="([^"]*)"`)
	inputRe := regexp.MustCompile(`<input [^>]*>`)
	for name, page := range allSamples() {
		html := render(t, tmpl, page)
		ids := make(map[string]bool)
		for _, m := range idRe.FindAllStringSubmatch(html, -1) {
			if ids[m[1]] {
				t.Errorf("%s: got duplicate id %q", name, m[1])
			}
			ids[m[1]] = true
		}
		for _, m := range refRe.FindAllStringSubmatch(html, -1) {
			for _, id := range strings.Fields(m[1]) {
				if !ids[id] {
					t.Errorf("%s: got a reference to missing id %q", name, id)
				}
			}
		}
		for _, in := range inputRe.FindAllString(html, -1) {
			if strings.Contains(in, `type="hidden"`) || strings.Contains(in, " hidden") {
				continue
			}
			id := regexp.MustCompile(`id="([^"]*)"`).FindStringSubmatch(in)
			if id == nil || !strings.Contains(html, `<label for="`+id[1]+`">`) {
				t.Errorf("%s: got an input without a <label for>: %s", name, in)
			}
			if !strings.Contains(in, "autocomplete=") {
				t.Errorf("%s: got an input without autocomplete: %s", name, in)
			}
		}
	}
}

func TestTitles(t *testing.T) {
	tmpl := newTemplates(t)
	tests := []struct {
		page Page
		want string
	}{
		{LoginPage{}, "<title>Sign in · Gatehouse</title>"},
		{AccountPage{}, "<title>Your account · Gatehouse</title>"},
		{LoginPage{Base: Base{Title: "Sign in to Wiki"}}, "<title>Sign in to Wiki · Gatehouse</title>"},
		{ErrorPage{Heading: "Too many attempts"}, "<title>Too many attempts · Gatehouse</title>"},
	}
	for _, tt := range tests {
		if html := render(t, tmpl, tt.page); !strings.Contains(html, tt.want) {
			t.Errorf("%s: got no %q", tt.page.TemplateName(), tt.want)
		}
	}
}

type unknownPage struct{}

func (unknownPage) TemplateName() string { return "no-such-page" }

type brokenPage struct{ ErrorPage }

// TemplateName reuses the login template, which needs fields ErrorPage lacks.
func (brokenPage) TemplateName() string { return "login" }

func TestRenderErrorsWriteNothing(t *testing.T) {
	tmpl := newTemplates(t)
	for _, page := range []Page{nil, unknownPage{}, brokenPage{}} {
		var buf bytes.Buffer
		if err := tmpl.Render(&buf, page); err == nil {
			t.Errorf("Render(%T): got nil error; want one", page)
		}
		if buf.Len() != 0 {
			t.Errorf("Render(%T): got %d bytes written; want 0", page, buf.Len())
		}
	}
}

func TestStatic(t *testing.T) {
	srv := httptest.NewServer(http.StripPrefix("/static/", Static()))
	t.Cleanup(srv.Close)
	tests := []struct {
		path        string
		status      int
		contentType string
	}{
		{"/static/style.css", http.StatusOK, "text/css; charset=utf-8"},
		{"/static/style.css?v=abc", http.StatusOK, "text/css; charset=utf-8"},
		{"/static/favicon.svg", http.StatusOK, "image/svg+xml"},
		{"/static/", http.StatusNotFound, ""},
		{"/static/nope.css", http.StatusNotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := http.Get(srv.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("got status %d; want %d", resp.StatusCode, tt.status)
			}
			if got := resp.Header.Get("Content-Type"); tt.contentType != "" && got != tt.contentType {
				t.Errorf("got Content-Type %q; want %q", got, tt.contentType)
			}
			if tt.path == "/static/style.css" && len(body) > 10*1024 {
				t.Errorf("got style.css of %d bytes; want it under 10 KiB", len(body))
			}
		})
	}
}

func TestStylesheetLinkIsVersioned(t *testing.T) {
	html := render(t, newTemplates(t), LoginPage{})
	if !regexp.MustCompile(`<link rel="stylesheet" href="/static/style.css\?v=[0-9a-f]{12}">`).MatchString(html) {
		t.Errorf("got no versioned stylesheet link in:\n%s", html)
	}
}

func TestDeviceSummary(t *testing.T) {
	tests := []struct{ ua, want string }{
		{chromeUA, "Chrome on Linux"},
		{iPhoneUA, "Safari on iOS"},
		{firefox, "Firefox on Windows"},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15", "Safari on macOS"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", "Edge on Windows"},
		{"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", "Chrome on Android"},
		{"Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0 Mobile/15E148 Safari/604.1", "Chrome on iPadOS"},
		{"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "Chrome on ChromeOS"},
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36", "Chrome on Linux"},
		{"curl/8.5.0", "curl"},
		{"Mozilla/5.0 (X11; Linux x86_64) SomethingNew/1.0", "Browser on Linux"},
		{"", "Unknown device"},
	}
	for _, tt := range tests {
		if got := deviceSummary(tt.ua); got != tt.want {
			t.Errorf("deviceSummary(%q) = %q; want %q", tt.ua, got, tt.want)
		}
	}
}

// withBase returns the zero value of every page with base set.
func withBase(base Base) []Page {
	return []Page{
		SignupPage{Base: base}, CheckInboxPage{Base: base}, VerifyPage{Base: base},
		LoginPage{Base: base}, ForgotPage{Base: base}, ResetPage{Base: base},
		AccountPage{Base: base}, ErrorPage{Base: base}, MessagePage{Base: base},
		MailboxPage{Base: base}, LinkPage{Base: base}, LinkConfirmPage{Base: base},
	}
}

// allSamples is SamplePages plus the zero value of every page.
func allSamples() map[string]Page { return SamplePages() }

// TestWritePreview writes the preview (cmd/webpreview) to a directory.
func TestWritePreview(t *testing.T) {
	dir := t.TempDir()
	if err := WritePreview(dir); err != nil {
		t.Fatalf("WritePreview: %v", err)
	}
	for _, name := range []string{"login.html", "zero-account.html", "static/style.css", "static/favicon.svg"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Size() == 0 {
			t.Errorf("preview file %s: %v; want written", name, err)
		}
	}
}
