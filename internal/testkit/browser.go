package testkit

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

// Environment variables of the browser tests.
const (
	// ChromiumEnv names the browser executable (default /usr/bin/chromium).
	ChromiumEnv = "GATEHOUSE_CHROMIUM"
	// RequireBrowserEnv set to 1 turns a missing browser from a skip into a
	// failure; CI sets it so that the journeys cannot silently vanish.
	RequireBrowserEnv = "GATEHOUSE_REQUIRE_BROWSER"
	// ArtifactsEnv names a directory that keeps the screenshots and HTML of
	// failed browser tests (one subdirectory per test). Without it they go
	// to the test's ArtifactDir, kept only with `go test -artifacts`.
	ArtifactsEnv = "GATEHOUSE_TEST_ARTIFACTS"
)

// browserStartTimeout bounds the start of a browser process or a tab:
// generous, because on a busy machine Chromium takes a while.
const browserStartTimeout = 45 * time.Second

// BrowserOptions configures a browser. Zero values mean the defaults.
type BrowserOptions struct {
	// BaseURL is what Navigate puts in front of a path starting with "/".
	BaseURL string
	// Timeout bounds the whole journey from the moment the browser is up
	// (default 90s): every step fails the test once it has passed.
	Timeout time.Duration
	// Step bounds one step, such as a wait for an element (default 20s).
	Step time.Duration
	// Flags are extra Chromium command-line flags (for example
	// "host-resolver-rules"). A browser with flags runs in a process of its
	// own; without, it shares the test binary's process.
	Flags map[string]any
}

// Browser is one test's headless Chromium, driven over the DevTools
// protocol with chromedp. Each Browser is a separate browser context (like
// a fresh incognito profile: its own cookie jar, storage and cache), in a
// Chromium process that the tests running at the same time share, because
// starting Chromium costs more than a whole journey. Its methods fail the
// test on any error. When the test fails, a full-page screenshot and the
// page's HTML are written to the test's artifact directory.
type Browser struct {
	tb       testing.TB
	ctx      context.Context // the tab; no deadline, or the tab would die with it
	proc     *browserProcess
	base     string
	step     time.Duration
	deadline time.Time
}

// browserProcess is one running Chromium.
type browserProcess struct {
	root   context.Context // its first tab, which owns the process
	stop   func()
	output *SyncBuffer
	refs   int // Browsers using it; guarded by sharedBrowser
}

// sharedBrowser is the process that Browsers without flags share. It
// stops when its last user ends, so nothing outlives the tests.
var sharedBrowser struct {
	sync.Mutex
	p *browserProcess
}

// FindChromium returns the browser executable: the one GATEHOUSE_CHROMIUM
// names, else /usr/bin/chromium or a chromium on PATH; "" when there is none.
func FindChromium() string {
	if p := os.Getenv(ChromiumEnv); p != "" {
		p, _ = exec.LookPath(p)
		return p
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// RequireChromium returns the browser executable. Without one it skips the
// test, or fails it when GATEHOUSE_REQUIRE_BROWSER=1. Call it before any
// expensive setup of a browser test.
func RequireChromium(tb testing.TB) string {
	tb.Helper()
	execPath := FindChromium()
	if execPath == "" {
		msg := fmt.Sprintf("no Chromium found (set %s or install /usr/bin/chromium)", ChromiumEnv)
		if p := os.Getenv(ChromiumEnv); p != "" {
			msg = fmt.Sprintf("%s=%s is not an executable", ChromiumEnv, p)
		}
		if os.Getenv(RequireBrowserEnv) == "1" {
			tb.Fatalf("%s, and %s=1", msg, RequireBrowserEnv)
		}
		tb.Skip(msg)
	}
	return execPath
}

// StartBrowser gives the test a browser of its own (a new browser context
// with one tab) and closes it when the test ends. Without Chromium the test
// is skipped, or fails when GATEHOUSE_REQUIRE_BROWSER=1 (see
// RequireChromium).
func StartBrowser(tb testing.TB, opts BrowserOptions) *Browser {
	tb.Helper()
	execPath := RequireChromium(tb)
	if opts.Timeout == 0 {
		opts.Timeout = 90 * time.Second
	}
	if opts.Step == 0 {
		opts.Step = 20 * time.Second
	}
	var (
		proc    *browserProcess
		release func()
		err     error
	)
	if len(opts.Flags) > 0 {
		if proc, err = startBrowserProcess(execPath, opts.Flags); err != nil {
			tb.Fatalf("start %s: %v", execPath, err)
		}
		release = proc.stop
	} else {
		proc, release = acquireSharedBrowser(tb, execPath)
	}
	tab, closeTab := chromedp.NewContext(proc.root, chromedp.WithNewBrowserContext())
	tb.Cleanup(func() {
		closeTab()
		release()
	})
	if err := startBounded(tab); err != nil {
		tb.Fatalf("open a tab in %s: %v\nbrowser output:\n%s", execPath, err, browserLog(proc.output.String()))
	}
	b := &Browser{tb: tb, ctx: tab, proc: proc, base: strings.TrimSuffix(opts.BaseURL, "/"), step: opts.Step}
	b.deadline = time.Now().Add(opts.Timeout)
	// Registered after the cleanup that closes the tab, so it runs first,
	// while the page is still there.
	tb.Cleanup(func() {
		if tb.Failed() {
			b.capture("failure")
		}
	})
	return b
}

// acquireSharedBrowser returns the shared process, started if needed, and
// the func that gives it back.
func acquireSharedBrowser(tb testing.TB, execPath string) (*browserProcess, func()) {
	tb.Helper()
	sharedBrowser.Lock()
	defer sharedBrowser.Unlock()
	p := sharedBrowser.p
	if p == nil || p.root.Err() != nil {
		var err error
		if p, err = startBrowserProcess(execPath, nil); err != nil {
			tb.Fatalf("start %s: %v", execPath, err)
		}
		sharedBrowser.p = p
	}
	p.refs++
	return p, func() {
		sharedBrowser.Lock()
		defer sharedBrowser.Unlock()
		if p.refs--; p.refs == 0 {
			p.stop()
			if sharedBrowser.p == p {
				sharedBrowser.p = nil
			}
		}
	}
}

// startBrowserProcess starts Chromium headless, with a fresh profile that
// chromedp removes when the process stops.
func startBrowserProcess(execPath string, flags map[string]any) (*browserProcess, error) {
	out := &SyncBuffer{}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(execPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		// The machine has no network: anything Chromium fetches on its own
		// is refused, and only adds noise and delay.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.WindowSize(1280, 900),
		chromedp.CombinedOutput(out),
	}
	for name, v := range flags {
		opts = append(opts, chromedp.Flag(name, v))
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	root, cancelRoot := chromedp.NewContext(alloc)
	stop := func() {
		cancelRoot()
		cancelAlloc() // waits for the process and removes its profile
	}
	if err := startBounded(root); err != nil {
		stop()
		return nil, fmt.Errorf("%w\nbrowser output:\n%s", err, browserLog(out.String()))
	}
	return &browserProcess{root: root, stop: stop, output: out}, nil
}

// startBounded runs the first (empty) action on a chromedp context, which
// starts its browser or opens its tab. That call must not carry a deadline,
// which would end the browser or tab with it, so a timer bounds it instead;
// after a timeout the caller cancels ctx.
func startBounded(ctx context.Context) error {
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		return err
	case <-time.After(browserStartTimeout):
		return fmt.Errorf("no answer within %s", browserStartTimeout)
	}
}

// stepCtx bounds one step by the step timeout and the journey's deadline.
func (b *Browser) stepCtx() (context.Context, context.CancelFunc) {
	b.tb.Helper()
	if time.Now().After(b.deadline) {
		b.tb.Fatalf("browser journey ran past its deadline")
	}
	d := time.Now().Add(b.step)
	if b.deadline.Before(d) {
		d = b.deadline
	}
	return context.WithDeadline(b.ctx, d)
}

func (b *Browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.tb.Helper()
	ctx, cancel := b.stepCtx()
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.tb.Fatalf("browser: %s (on %s): %v", what, b.where(), b.explain(ctx, err))
	}
}

// BrowserRun runs one chromedp action in the tab within the step bounds
// and returns its value, failing the test on error.
func BrowserRun[T any](b *Browser, what string, a chromedp.Action[T]) T {
	b.tb.Helper()
	ctx, cancel := b.stepCtx()
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.tb.Fatalf("browser: %s (on %s): %v", what, b.where(), b.explain(ctx, err))
	}
	return v
}

// BrowserEval evaluates a JavaScript expression in the page and decodes
// its value.
func BrowserEval[T any](b *Browser, expr string) T {
	b.tb.Helper()
	return BrowserRun(b, "evaluate "+expr, chromedp.Evaluate[T](expr))
}

// explain says which bound a step hit when it ran out of time.
func (b *Browser) explain(ctx context.Context, err error) error {
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return err
	}
	if !time.Now().Before(b.deadline) {
		return fmt.Errorf("%w (the journey's time is up)", err)
	}
	return fmt.Errorf("%w (gave up after %s)", err, b.step)
}

// where is the page's address for messages, without its query (tokens).
func (b *Browser) where() string {
	ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "unknown page"
	}
	return redact(loc)
}

func (b *Browser) abs(pathOrURL string) string {
	if strings.HasPrefix(pathOrURL, "/") {
		return b.base + pathOrURL
	}
	return pathOrURL
}

// Navigate loads a page (a path relative to BaseURL, or a URL) and waits
// until it has loaded; it returns the HTTP status of the final document.
func (b *Browser) Navigate(pathOrURL string) int {
	b.tb.Helper()
	resp := BrowserRun(b, "navigate to "+redact(b.abs(pathOrURL)), chromedp.NavigateResponse(b.abs(pathOrURL)))
	if resp == nil {
		return 0
	}
	return int(resp.Status)
}

// Fill focuses the field matched by the CSS selector, empties it, and
// enters value as typed text (Input.insertText: the input events a paste or
// an input method produces, in one round trip rather than three per key).
func (b *Browser) Fill(sel, value string) {
	b.tb.Helper()
	b.do("fill "+sel,
		chromedp.WaitVisible(chromedp.CSS(sel)),
		chromedp.Focus(chromedp.CSS(sel)),
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf("document.querySelector(%s).value = ''", jsString(sel))),
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := cdp.Call(ctx, t, input.InsertText, input.InsertTextParams{Text: value})
			return err
		}),
	)
}

// Click clicks the element matched by the CSS selector and does not wait
// for anything the click may start.
func (b *Browser) Click(sel string) {
	b.tb.Helper()
	b.do("click "+sel, chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.Click(chromedp.CSS(sel)))
}

// Submit clicks the element matched by the CSS selector (a submit button
// or a link), waits for the page it leads to, after any redirects, and
// returns that document's HTTP status.
func (b *Browser) Submit(sel string) int {
	b.tb.Helper()
	b.do("wait for "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
	ctx, cancel := b.stepCtx()
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel)))
	if err != nil {
		b.tb.Fatalf("browser: click %s and wait for the next page (from %s): %v", sel, b.where(), b.explain(ctx, err))
	}
	if resp == nil {
		return 0
	}
	return int(resp.Status)
}

// WaitVisible waits until the element matched by the CSS selector is shown.
func (b *Browser) WaitVisible(sel string) {
	b.tb.Helper()
	b.do("wait until visible: "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
}

// Text returns the visible text of the first element matched by the CSS
// selector, waiting for it to exist.
func (b *Browser) Text(sel string) string {
	b.tb.Helper()
	return strings.TrimSpace(BrowserRun(b, "read text of "+sel, chromedp.Text(chromedp.CSS(sel))))
}

// Value returns the current value of the form field matched by sel.
func (b *Browser) Value(sel string) string {
	b.tb.Helper()
	return BrowserRun(b, "read value of "+sel, chromedp.Value(chromedp.CSS(sel)))
}

// Count returns how many elements match the CSS selector now, without
// waiting (0 is an answer, not an error).
func (b *Browser) Count(sel string) int {
	b.tb.Helper()
	return BrowserEval[int](b, fmt.Sprintf("document.querySelectorAll(%s).length", jsString(sel)))
}

// URL returns the address of the current page.
func (b *Browser) URL() *url.URL {
	b.tb.Helper()
	loc := BrowserRun(b, "read location", chromedp.Location())
	u, err := url.Parse(loc)
	if err != nil {
		b.tb.Fatalf("browser: parse location %q: %v", redact(loc), err)
	}
	return u
}

// HTML returns the current document's markup.
func (b *Browser) HTML() string {
	b.tb.Helper()
	return BrowserEval[string](b, "document.documentElement.outerHTML")
}

// Cookies returns the browser's cookies for the base URL (or the current
// page when there is no base URL), HttpOnly ones included.
func (b *Browser) Cookies() []*http.Cookie {
	b.tb.Helper()
	var urls []string
	if b.base != "" {
		urls = []string{b.base + "/"}
	}
	res := BrowserRun(b, "read cookies", func(ctx context.Context, t *chromedp.Target) (network.GetCookiesResult, error) {
		return cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{URLs: urls})
	})
	out := make([]*http.Cookie, 0, len(res.Cookies))
	for _, c := range res.Cookies {
		hc := &http.Cookie{
			Name: c.Name, Value: c.Value, Domain: c.Domain, Path: c.Path,
			HttpOnly: c.HTTPOnly, Secure: c.Secure,
		}
		if !c.Session && c.Expires > 0 {
			hc.Expires = time.Unix(int64(c.Expires), 0)
		}
		switch c.SameSite {
		case network.CookieSameSiteLax:
			hc.SameSite = http.SameSiteLaxMode
		case network.CookieSameSiteStrict:
			hc.SameSite = http.SameSiteStrictMode
		case network.CookieSameSiteNone:
			hc.SameSite = http.SameSiteNoneMode
		}
		out = append(out, hc)
	}
	return out
}

// Cookie returns the browser's cookie named name, or nil.
func (b *Browser) Cookie(name string) *http.Cookie {
	b.tb.Helper()
	for _, c := range b.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// SetViewport emulates a screen of width x height CSS pixels; mobile also
// makes the page honour its viewport meta tag, as a phone does.
func (b *Browser) SetViewport(width, height int, mobile bool) {
	b.tb.Helper()
	var opts []chromedp.EmulateViewportOption
	if mobile {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch)
	}
	b.do(fmt.Sprintf("set viewport %dx%d", width, height), chromedp.EmulateViewport(int64(width), int64(height), opts...))
}

// Screenshot writes a full-page PNG of the current page to the artifact
// directory as name.png and returns its path.
func (b *Browser) Screenshot(name string) string {
	b.tb.Helper()
	png := BrowserRun(b, "screenshot", chromedp.FullScreenshot(100))
	path := filepath.Join(b.artifactDir(), safeName(name)+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.tb.Fatalf("write screenshot: %v", err)
	}
	b.tb.Logf("screenshot of %s: %s%s", b.where(), path, b.keepHint())
	return path
}

// capture saves a screenshot, the HTML and the browser's output after a
// failure. It never fails the test again: the page may be gone.
func (b *Browser) capture(name string) {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	dir := b.artifactDir()
	base := filepath.Join(dir, safeName(name))
	var saved []string
	var errs []error
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		errs = append(errs, os.WriteFile(base+".png", png, 0o644))
		saved = append(saved, base+".png")
	} else {
		errs = append(errs, fmt.Errorf("screenshot: %w", err))
	}
	if html, err := chromedp.Run(ctx, chromedp.Evaluate[string]("document.documentElement.outerHTML")); err == nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		doc := fmt.Sprintf("<!-- %s -->\n%s", redact(loc), html)
		errs = append(errs, os.WriteFile(base+".html", []byte(doc), 0o644))
		saved = append(saved, base+".html")
	} else {
		errs = append(errs, fmt.Errorf("page html: %w", err))
	}
	errs = append(errs, os.WriteFile(base+"-chromium.log", []byte(b.proc.output.String()), 0o644))
	if err := errors.Join(errs...); err != nil {
		b.tb.Logf("browser: saving the failure's page: %v", err)
	}
	b.tb.Logf("browser: page at failure saved to %s%s", strings.Join(saved, ", "), b.keepHint())
}

// artifactDir is GATEHOUSE_TEST_ARTIFACTS/<test> when set, else the
// test's ArtifactDir.
func (b *Browser) artifactDir() string {
	if root := os.Getenv(ArtifactsEnv); root != "" {
		dir := filepath.Join(root, safeName(b.tb.Name()))
		if err := os.MkdirAll(dir, 0o755); err == nil {
			return dir
		}
	}
	return b.tb.ArtifactDir()
}

// keepHint says how to keep the files when they would be deleted.
func (b *Browser) keepHint() string {
	if os.Getenv(ArtifactsEnv) != "" {
		return ""
	}
	if f := flag.Lookup("test.artifacts"); f != nil && f.Value.String() == "true" {
		return ""
	}
	return fmt.Sprintf(" (deleted after the test; keep it with `go test -artifacts` or %s=DIR)", ArtifactsEnv)
}

// redact drops the query of an address, where tokens travel.
func redact(s string) string {
	if i := strings.IndexByte(s, '?'); i >= 0 {
		return s[:i] + "?…"
	}
	return s
}

func safeName(s string) string {
	return strings.Trim(nonWord.ReplaceAllString(strings.ToLower(s), "-"), "-")
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	q, _ := json.Marshal(s)
	return string(q)
}

// browserLog is the end of Chromium's output without the D-Bus complaints
// of a machine without a desktop session, which say nothing about a failure.
func browserLog(s string) string {
	var keep []string
	for line := range strings.Lines(s) {
		if !strings.Contains(line, "dbus/") {
			keep = append(keep, line)
		}
	}
	s = strings.Join(keep, "")
	const n = 4000
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
