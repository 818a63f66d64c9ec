// Package web holds Gatehouse's server-rendered pages: embedded html/template
// files, their typed page data and the embedded static files (one stylesheet).
//
// The pages work without JavaScript and contain no inline styles or scripts,
// so they run under a strict Content-Security-Policy
// (default-src 'self'; style-src 'self'; script-src 'none').
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static/*
var staticFS embed.FS

// layoutFile holds the shared page frame and the partials every page may use;
// every other file in templates/ is one page, named after the file.
const layoutFile = "layout.html"

// Page is the data of one page. TemplateName names the template file
// (without .html) that renders it.
type Page interface {
	TemplateName() string
}

// Templates renders the pages. It is parsed once by New and safe for
// concurrent use.
type Templates struct {
	pages map[string]*template.Template
}

// New parses the embedded templates. Every page is the layout plus its own
// file, so each page may define its own "title", "width" and "content".
func New() (*Templates, error) {
	funcs := template.FuncMap{
		"formatTime": formatTime,
		"formatDate": formatDate,
		"isoTime":    isoTime,
		"device":     deviceSummary,
		"pathEscape": url.PathEscape,
		"asset":      assetURL(),
	}
	layout, err := template.New(layoutFile).Funcs(funcs).ParseFS(templateFS, "templates/"+layoutFile)
	if err != nil {
		return nil, fmt.Errorf("parse layout: %w", err)
	}
	entries, err := fs.ReadDir(templateFS, "templates")
	if err != nil {
		return nil, fmt.Errorf("read templates: %w", err)
	}
	t := &Templates{pages: make(map[string]*template.Template)}
	for _, e := range entries {
		if e.Name() == layoutFile {
			continue
		}
		page, err := layout.Clone()
		if err != nil {
			return nil, fmt.Errorf("clone layout: %w", err)
		}
		if _, err := page.ParseFS(templateFS, "templates/"+e.Name()); err != nil {
			return nil, fmt.Errorf("parse %s: %w", e.Name(), err)
		}
		if page.Lookup("content") == nil {
			return nil, fmt.Errorf("parse %s: no \"content\" template defined", e.Name())
		}
		t.pages[strings.TrimSuffix(e.Name(), ".html")] = page
	}
	return t, nil
}

// Render writes the full HTML document for page to w. The page is rendered
// into a buffer first, so a template error never leaves half a page on the
// wire and the caller can still answer with an error page. Setting the
// Content-Type and status is the caller's job.
func (t *Templates) Render(w io.Writer, page Page) error {
	if page == nil {
		return errors.New("render: nil page")
	}
	name := page.TemplateName()
	tmpl, ok := t.pages[name]
	if !ok {
		return fmt.Errorf("render: unknown page template %q", name)
	}
	var buf bytes.Buffer
	if err := tmpl.ExecuteTemplate(&buf, "layout", page); err != nil {
		return fmt.Errorf("render %s: %w", name, err)
	}
	_, err := buf.WriteTo(w)
	return err
}

// Static serves the embedded static files. Mount it with
// http.StripPrefix("/static/", web.Static()). Directory listings are refused.
func Static() http.Handler {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err) // "static" is embedded above; this cannot fail
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})
}

// assetURL returns the "asset" template function: it turns a static file name
// into /static/NAME?v=HASH. The content hash changes the URL whenever the file
// changes, so the caller may serve /static/ with a long Cache-Control.
func assetURL() func(string) (string, error) {
	versions := make(map[string]string)
	_ = fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		versions[path.Base(p)] = hex.EncodeToString(sum[:6])
		return nil
	})
	return func(name string) (string, error) {
		v, ok := versions[name]
		if !ok {
			return "", fmt.Errorf("unknown static file %q", name)
		}
		return "/static/" + name + "?v=" + v, nil
	}
}

// timeLayout is the one way the pages show a point in time. Times are shown
// in UTC because the server does not know the reader's time zone.
const timeLayout = "Jan 2, 2006 15:04 UTC"

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return t.UTC().Format(timeLayout)
}

func formatDate(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return t.UTC().Format("Jan 2, 2006")
}

func isoTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
