package mail

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/accounts"
)

func TestTemplatesRenderZeroData(t *testing.T) {
	tpl := mustTemplates(t)
	for _, k := range kinds {
		t.Run(string(k), func(t *testing.T) {
			r, err := tpl.Render(k, TemplateData{})
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if r.Subject == "" || r.Text == "" || r.HTML == "" {
				t.Errorf("got %+v; want subject, text and HTML", r)
			}
		})
	}
}

func TestTemplatesRender(t *testing.T) {
	tpl := mustTemplates(t)
	data := TemplateData{
		Link:        testLink,
		Email:       "ann+<b>@example.com",
		ProductName: "Gatehouse",
		PublicURL:   "https://gate.example",
		ValidFor:    "24 hours",
	}
	tests := []struct {
		kind        accounts.MailKind
		wantSubject string
		wantText    []string
	}{
		{accounts.MailVerify, "Confirm your email address", []string{"24 hours", "didn't sign up"}},
		{accounts.MailAccountExists, "Someone tried to sign up with your address", []string{"already have an account", "Forgot password", "If it wasn't you"}},
		{accounts.MailReset, "Reset your password", []string{"valid for 24 hours", "If it wasn't you"}},
		{accounts.MailPasswordChanged, "Your password was changed", []string{"was just changed", "If it wasn't you, reset your password"}},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			r, err := tpl.Render(tt.kind, data)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if r.Subject != tt.wantSubject {
				t.Errorf("got subject %q; want %q", r.Subject, tt.wantSubject)
			}
			for _, want := range append(tt.wantText, testLink, data.Email, "Gatehouse") {
				if !strings.Contains(r.Text, want) {
					t.Errorf("got text without %q:\n%s", want, r.Text)
				}
			}
			for _, want := range []string{
				`href="` + testLink + `"`,       // the button
				`>` + testLink + `</a>`,         // the raw URL, as text
				"ann&#43;&lt;b&gt;@example.com", // escaped
				`<html lang="en">`,
			} {
				if !strings.Contains(r.HTML, want) {
					t.Errorf("got HTML without %q:\n%s", want, r.HTML)
				}
			}
			if strings.Contains(r.HTML, "<b>@") {
				t.Error("got the address unescaped in HTML")
			}
			if r.Link != testLink {
				t.Errorf("got Link %q; want %q", r.Link, testLink)
			}
		})
	}
}

func TestTemplatesRenderUnknownKind(t *testing.T) {
	if _, err := mustTemplates(t).Render("welcome", TemplateData{}); err == nil {
		t.Error("got nil error; want one")
	}
}

func writeFiles(tb testing.TB, files map[string]string) string {
	tb.Helper()
	dir := tb.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

func TestTemplatesOverride(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"verify.subject.txt": "Bitte bestätigen\r\nBcc: evil@example.com",
		"reset.txt":          "Neues Passwort: {{.Link}}\n",
		"README.md":          "not a template",
	})
	tpl, err := NewTemplates(dir)
	if err != nil {
		t.Fatalf("NewTemplates: %v", err)
	}
	data := TemplateData{Link: testLink, ValidFor: "24 hours"}

	verify, err := tpl.Render(accounts.MailVerify, data)
	if err != nil {
		t.Fatal(err)
	}
	// Also shows that a subject cannot inject a header line.
	if want := "Bitte bestätigen Bcc: evil@example.com"; verify.Subject != want {
		t.Errorf("verify subject: got %q; want %q", verify.Subject, want)
	}
	if !strings.Contains(verify.Text, "24 hours") {
		t.Errorf("verify text: got %q; want the embedded one", verify.Text)
	}
	reset, err := tpl.Render(accounts.MailReset, data)
	if err != nil {
		t.Fatal(err)
	}
	if want := "Neues Passwort: " + testLink + "\n"; reset.Text != want {
		t.Errorf("reset text: got %q; want %q", reset.Text, want)
	}
	if reset.Subject != "Reset your password" || !strings.Contains(reset.HTML, testLink) {
		t.Errorf("reset: got subject %q and HTML without the link; want the embedded ones", reset.Subject)
	}
}

func TestTemplatesBrokenOverride(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
	}{
		{"parse error", map[string]string{"verify.txt": "{{.Link"}},
		{"unknown field", map[string]string{"reset.html": `<a href="{{.Link}}">{{.Token}}</a>`}},
		{"text without link", map[string]string{"account_exists.txt": "Hello {{.Email}}"}},
		{"html without link", map[string]string{"password_changed.html": "<p>Hello</p>"}},
		{"empty subject", map[string]string{"verify.subject.txt": "  \n"}},
		{"misspelled name", map[string]string{"verfy.txt": "{{.Link}}"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewTemplates(writeFiles(t, tt.files)); err == nil {
				t.Error("got nil error; want one")
			}
		})
	}
	t.Run("missing directory", func(t *testing.T) {
		if _, err := NewTemplates(filepath.Join(t.TempDir(), "nope")); err == nil {
			t.Error("got nil error; want one")
		}
	})
}
