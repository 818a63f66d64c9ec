package mail

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	texttemplate "text/template"

	"github.com/gatehouse/gatehouse/accounts"
)

//go:embed templates/*.txt templates/*.html
var embedded embed.FS

// kinds lists every mail kind with a template set.
var kinds = []accounts.MailKind{
	accounts.MailVerify,
	accounts.MailAccountExists,
	accounts.MailReset,
	accounts.MailPasswordChanged,
	accounts.MailLinkConfirm,
}

// knownKind reports whether the outbox takes mails of kind k: those with
// templates, and the requests that a Resolver turns into one of them.
func knownKind(k accounts.MailKind) bool { return slices.Contains(kinds, k) || k.IsRequest() }

// TemplateData is what a mail template can use.
type TemplateData struct {
	// Link is the call to action; it may carry a secret token.
	Link string
	// Email is the recipient's address.
	Email string
	// ProductName is the name shown to users, "Gatehouse" by default.
	ProductName string
	// PublicURL is the gateway's public base URL.
	PublicURL string
	// ValidFor says how long Link works, e.g. "24 hours"; empty if it does
	// not expire.
	ValidFor string
	// Provider and ProviderAccount name the provider identity of a
	// link_confirm mail, e.g. "Google" and "ann@gmail.com".
	Provider        string
	ProviderAccount string
}

// Rendered is a mail ready for a Transport.
type Rendered struct {
	Subject string
	Text    string
	HTML    string
	// Link is the call to action already contained in Text and HTML. Only a
	// development transport uses it (to log it); real transports ignore it.
	Link string
}

// kindTemplates is the parsed set for one kind.
type kindTemplates struct {
	subject *texttemplate.Template
	text    *texttemplate.Template
	html    *htmltemplate.Template
}

// Templates renders the mails. It is parsed once at startup and is safe for
// concurrent use.
type Templates struct {
	byKind map[accounts.MailKind]kindTemplates
}

// The three files of a kind: kind + suffix.
const (
	subjectSuffix = ".subject.txt"
	textSuffix    = ".txt"
	htmlSuffix    = ".html"
)

// checkData is rendered at startup so that a template that refers to an
// unknown field or forgets the link fails then, not when a user waits for mail.
var checkData = TemplateData{
	Link:        "https://gatehouse.invalid/startup-check-link",
	Email:       "user@example.com",
	ProductName: "Gatehouse",
	PublicURL:   "https://gatehouse.invalid",
}

// NewTemplates parses the embedded templates. If overrideDir is not empty, a
// file there named like an embedded one (verify.subject.txt, verify.txt,
// verify.html, …) replaces it. Every template is test-rendered, so a parse
// error, an unknown field, or a body without {{.Link}} fails here. A .txt or
// .html file in overrideDir that matches no template is an error too, because
// a misspelled override would otherwise be silently ignored.
func NewTemplates(overrideDir string) (*Templates, error) {
	if overrideDir != "" {
		if err := checkOverrideDir(overrideDir); err != nil {
			return nil, err
		}
	}
	t := &Templates{byKind: make(map[accounts.MailKind]kindTemplates, len(kinds))}
	for _, k := range kinds {
		kt, err := parseKind(overrideDir, k)
		if err != nil {
			return nil, err
		}
		t.byKind[k] = kt
		if err := t.check(k); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func parseKind(overrideDir string, k accounts.MailKind) (kindTemplates, error) {
	var src [3]string
	for i, suffix := range []string{subjectSuffix, textSuffix, htmlSuffix} {
		var err error
		if src[i], err = readTemplate(overrideDir, string(k)+suffix); err != nil {
			return kindTemplates{}, err
		}
	}
	// Parse errors name the file ("template: verify.txt:3: …").
	var kt kindTemplates
	var err error
	if kt.subject, err = texttemplate.New(string(k) + subjectSuffix).Parse(src[0]); err != nil {
		return kindTemplates{}, fmt.Errorf("parse mail template: %w", err)
	}
	if kt.text, err = texttemplate.New(string(k) + textSuffix).Parse(src[1]); err != nil {
		return kindTemplates{}, fmt.Errorf("parse mail template: %w", err)
	}
	if kt.html, err = htmltemplate.New(string(k) + htmlSuffix).Parse(src[2]); err != nil {
		return kindTemplates{}, fmt.Errorf("parse mail template: %w", err)
	}
	return kt, nil
}

func checkOverrideDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read mail template directory: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || (!strings.HasSuffix(name, textSuffix) && !strings.HasSuffix(name, htmlSuffix)) {
			continue
		}
		if _, err := fs.Stat(embedded, "templates/"+name); err != nil {
			return fmt.Errorf("mail template override %q: no such template (want <kind>%s, <kind>%s or <kind>%s)",
				filepath.Join(dir, name), subjectSuffix, textSuffix, htmlSuffix)
		}
	}
	return nil
}

// readTemplate returns the override of name if there is one, else the embedded file.
func readTemplate(overrideDir, name string) (string, error) {
	if overrideDir != "" {
		b, err := os.ReadFile(filepath.Join(overrideDir, name))
		if err == nil {
			return string(b), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("read mail template override: %w", err)
		}
	}
	b, err := embedded.ReadFile("templates/" + name)
	if err != nil {
		return "", fmt.Errorf("read embedded mail template: %w", err)
	}
	return string(b), nil
}

func (t *Templates) check(k accounts.MailKind) error {
	r, err := t.Render(k, checkData)
	if err != nil {
		return err
	}
	if r.Subject == "" {
		return fmt.Errorf("mail template %s%s: renders an empty subject", k, subjectSuffix)
	}
	if !strings.Contains(r.Text, checkData.Link) {
		return fmt.Errorf("mail template %s%s: does not contain {{.Link}}", k, textSuffix)
	}
	if !strings.Contains(r.HTML, checkData.Link) {
		return fmt.Errorf("mail template %s%s: does not contain {{.Link}}", k, htmlSuffix)
	}
	return nil
}

// Render renders the subject, text and HTML bodies of a mail kind.
func (t *Templates) Render(kind accounts.MailKind, data TemplateData) (Rendered, error) {
	kt, ok := t.byKind[kind]
	if !ok {
		return Rendered{}, fmt.Errorf("render mail: unknown kind %q", kind)
	}
	var subject, text, html bytes.Buffer
	if err := kt.subject.Execute(&subject, data); err != nil {
		return Rendered{}, fmt.Errorf("render mail subject: %w", err)
	}
	if err := kt.text.Execute(&text, data); err != nil {
		return Rendered{}, fmt.Errorf("render mail text: %w", err)
	}
	if err := kt.html.Execute(&html, data); err != nil {
		return Rendered{}, fmt.Errorf("render mail html: %w", err)
	}
	return Rendered{
		// A subject is one header line; folding whitespace here means a template
		// (or an address in it) can never inject another header.
		Subject: strings.Join(strings.Fields(subject.String()), " "),
		Text:    text.String(),
		HTML:    html.String(),
		Link:    data.Link,
	}, nil
}
