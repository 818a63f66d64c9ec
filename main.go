// Command gatehouse runs the Gatehouse login gateway.
//
//	go run .                      # embedded database, dev mailbox, http://127.0.0.1:8080
//	gatehouse -config prod.yaml   # settings from a file, overridable by GATEHOUSE_* variables
package main

import (
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/config"
	"github.com/gatehouse/gatehouse/embeddeddb"
	"github.com/gatehouse/gatehouse/mail"
	"github.com/gatehouse/gatehouse/mongostore"
	"github.com/gatehouse/gatehouse/providers"
	"github.com/gatehouse/gatehouse/ratelimit"
	"github.com/gatehouse/gatehouse/server"
	"github.com/gatehouse/gatehouse/web"
)

// defaultConfig is config.yaml, which documents every key with its default.
//
//go:embed config.yaml
var defaultConfig []byte

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gatehouse:", err)
		os.Exit(1)
	}
}

// getenv is os.Getenv, except that a GATEHOUSE_SERVER_OPS_ADDRESS set but
// empty reads as "off": for that key an empty value means "disable", while
// for every other key an empty variable counts as unset.
func getenv(key string) string {
	v, ok := os.LookupEnv(key)
	if ok && v == "" && key == config.EnvName("server.ops_address") {
		return "off"
	}
	return v
}

// run starts Gatehouse and blocks until ctx is cancelled, then shuts down:
// in-flight requests are drained, the mail worker stops, the database closes.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fl := flag.NewFlagSet("gatehouse", flag.ContinueOnError)
	fl.SetOutput(stdout)
	configPath := fl.String("config", "", "configuration file (default: ./config.yaml if present, else the built-in defaults)")
	if err := fl.Parse(args); errors.Is(err, flag.ErrHelp) {
		return nil
	} else if err != nil {
		return err
	}
	if *configPath == "" {
		if _, err := os.Stat("config.yaml"); err == nil {
			*configPath = "config.yaml"
		}
	}
	cfg, err := config.Load(defaultConfig, *configPath, getenv)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	logger := newLogger(cfg.Log, stdout)
	tuneGC(cfg.Password.Argon2, getenv)

	// Listen first: a taken port stops startup before anything else, and a
	// port 0 is known before public_url is used.
	ln, opsLn, err := listen(cfg)
	if err != nil {
		return err
	}
	defer ln.Close()
	if opsLn != nil {
		defer opsLn.Close()
	}

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data_dir: %w", err)
	}
	secret, err := sessionSecret(cfg)
	if err != nil {
		return err
	}

	// Database: the embedded one unless a URI is configured.
	uri, dbDesc := cfg.MongoDB.URI.Reveal(), ""
	var embedded *embeddeddb.Server
	if uri == "" {
		embedded, err = embeddeddb.Start(ctx, cfg.DataDir, logger)
		if err != nil {
			return err
		}
		defer embedded.Stop()
		uri = embedded.URI()
		dbDesc = "embedded FerretDB (SQLite) in " + filepath.Join(cfg.DataDir, "db") + ", Unix socket only"
	} else {
		dbDesc = "MongoDB at " + redactURI(uri)
	}
	store, err := mongostore.Connect(ctx, uri, cfg.MongoDB.Database, cfg.MongoDB.Timeout)
	if err != nil {
		return err
	}
	defer store.Close(context.WithoutCancel(ctx))
	if err := ensureSchema(ctx, store, logger); errors.Is(err, errStopped) {
		return nil // stopped while waiting for the database: a clean exit
	} else if err != nil {
		return err
	}
	if embedded != nil {
		if err := embedded.IndexIDs(ctx, cfg.MongoDB.Database); err != nil {
			return err
		}
	}

	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// Mail: every mail goes through the durable outbox; the transport is SMTP
	// or, in development without SMTP, an in-memory mailbox.
	templates, err := mail.NewTemplates(cfg.SMTP.TemplatesDir)
	if err != nil {
		return fmt.Errorf("mail templates: %w", err)
	}
	outbox, err := mail.NewOutbox(store, deriveKey(secret, "gatehouse outbox v1"), nil)
	if err != nil {
		return err
	}
	var (
		transport mail.Transport
		mailbox   *mail.DevMailbox
		mailDesc  string
	)
	switch {
	case cfg.SMTP.Host != "":
		transport, err = mail.NewSMTP(mail.SMTPConfig{
			Host: cfg.SMTP.Host, Port: cfg.SMTP.Port, Username: cfg.SMTP.Username,
			Password: cfg.SMTP.Password.Reveal(), TLS: cfg.SMTP.TLS, From: cfg.SMTP.From,
		}, logger)
		if err != nil {
			return fmt.Errorf("smtp: %w", err)
		}
		mailDesc = fmt.Sprintf("SMTP %s:%d (%s)", cfg.SMTP.Host, cfg.SMTP.Port, cfg.SMTP.TLS)
	case cfg.DevMode:
		mailbox = mail.NewDevMailbox(logger, nil)
		transport = mailbox
		mailDesc = "development mailbox (links are logged; " + cfg.Server.PublicURL + "/dev/mailbox)"
	default:
		return errors.New("configuration: smtp.host: must be set outside dev_mode")
	}

	registry, err := providers.NewRegistry(ctx, cfg.Server.PublicURL, providerConfigs(cfg.Providers), store,
		deriveKey(secret, "gatehouse oauth v1"), &http.Client{Timeout: 10 * time.Second}, logger)
	if err != nil {
		return fmt.Errorf("providers: %w", err)
	}
	var providerIDs []string
	providerLabels := map[string]string{}
	for _, p := range registry.Providers() {
		providerIDs = append(providerIDs, p.ID)
		providerLabels[p.ID] = p.Label
	}

	var heldBack func(context.Context, accounts.Mail)
	if mailbox != nil {
		heldBack = mailbox.HoldBack
	}
	a2 := cfg.Password.Argon2
	hasher := accounts.NewHasher(accounts.Argon2Params{MemoryKiB: a2.MemoryKiB, Iterations: a2.Iterations, Parallelism: a2.Parallelism}, a2.MaxConcurrent, a2.MaxWaiting, a2.MaxWait)
	hasher.FailFastOn(store.Outage())
	svc := accounts.NewService(accounts.Config{
		PublicURL:       cfg.Server.PublicURL,
		VerifyTTL:       cfg.Tokens.VerifyTTL,
		ResetTTL:        cfg.Tokens.ResetTTL,
		IdleTimeout:     cfg.Session.IdleTimeout,
		AbsoluteTimeout: cfg.Session.AbsoluteTimeout,
		SessionCacheTTL: cfg.Session.CacheTTL,
		LockoutAfter:    cfg.RateLimits.LockoutAfter,
		LockoutMax:      cfg.RateLimits.LockoutMax,
		MailInterval:    cfg.RateLimits.MailInterval,
		MailPerHour:     cfg.RateLimits.MailPerHour,
		Providers:       providerIDs,
		ProviderLabels:  providerLabels,
		RecentAuth:      cfg.Session.RecentSignIn,
		IPv6Prefix:      cfg.RateLimits.IPv6Prefix,

		AutoLinkVerifiedEmail: cfg.Providers.AutoLinkVerifiedEmail,
	}, accounts.Deps{
		Store:      store,
		Mailer:     outbox,
		Hasher:     hasher,
		Policy:     accounts.NewPolicy(cfg.Password.MinLength),
		PerIP:      ratelimit.New(cfg.RateLimits.PerIP, time.Minute, nil),
		PerAddress: ratelimit.New(cfg.RateLimits.PerAddress, time.Minute, nil),
		Logger:     logger,
		Now:        clockFrom(ctx),
		HeldBack:   heldBack,
	})

	worker, err := mail.NewWorker(mail.WorkerConfig{
		Outbox: outbox, Transport: transport, Templates: templates, Logger: logger,
		PublicURL: cfg.Server.PublicURL, Registerer: metrics, Resolver: svc,
	})
	if err != nil {
		return err
	}

	pages, err := web.New()
	if err != nil {
		return fmt.Errorf("page templates: %w", err)
	}
	srvCfg := server.Config{
		PublicURL:           cfg.Server.PublicURL,
		TrustedProxies:      cfg.Parsed.TrustedProxies,
		MaxBodyBytes:        cfg.Server.MaxBodyBytes,
		RequestTimeout:      cfg.Server.RequestTimeout,
		CORSOrigins:         cfg.Parsed.CORSOrigins,
		RedirectHosts:       cfg.Parsed.RedirectHosts,
		ForwardAuthRedirect: cfg.ForwardAuth.Redirect,
		DevMode:             cfg.DevMode,
		CookieName:          cfg.CookieName(),
		CookieDomain:        cfg.Session.CookieDomain,
		SecureCookies:       cfg.SecureCookies(),
		AbsoluteTimeout:     cfg.Session.AbsoluteTimeout,
		SessionKey:          deriveKey(secret, "gatehouse session cookie v1"),
		HTTPS:               cfg.SecureCookies(),
		AccessLog:           strings.EqualFold(cfg.Log.Level, "debug"),
		VerifyTTL:           cfg.Tokens.VerifyTTL,
		ResetTTL:            cfg.Tokens.ResetTTL,
		MailInterval:        cfg.RateLimits.MailInterval,
		MailPerHour:         cfg.RateLimits.MailPerHour,
	}
	deps := server.Deps{Logger: logger, Accounts: svc, Pages: pages, Ready: store.Ping, Registry: metrics, Providers: registry}
	if mailbox != nil {
		deps.Mailbox = devMailboxRows{mailbox}
	}
	handler := server.New(srvCfg, deps)

	servers := []*http.Server{newHTTPServer(cfg.Server, handler, logger)}
	listeners := []net.Listener{ln}
	opsDesc := "off"
	if opsLn != nil {
		servers = append(servers, newHTTPServer(cfg.Server, handler.Ops(), logger))
		listeners = append(listeners, opsLn)
		opsDesc = opsLn.Addr().String()
	}

	logger.Info("gatehouse starting",
		"url", cfg.Server.PublicURL, "listen", ln.Addr().String(), "ops_listen", opsDesc,
		"database", dbDesc, "mail", mailDesc, "providers", strings.Join(providerIDs, ","), "dev_mode", cfg.DevMode)
	if cfg.DevMode {
		logger.Warn("dev_mode is on: generated secrets, development mailbox, plain-HTTP cookies allowed; set dev_mode: false in production")
	}

	var wg sync.WaitGroup
	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBackground()
	wg.Go(func() {
		if err := worker.Run(bgCtx); err != nil && !errors.Is(err, context.Canceled) {
			logger.Error("mail worker stopped", "error", err)
		}
	})
	wg.Go(func() { sweep(bgCtx, svc, logger) })

	serveErr := make(chan error, len(servers))
	for i, srv := range servers {
		go func() { serveErr <- srv.Serve(listeners[i]) }()
	}

	select {
	case err := <-serveErr:
		for _, srv := range servers {
			_ = srv.Close()
		}
		stopBackground()
		wg.Wait()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down", "drain_timeout", cfg.Server.ShutdownTimeout)
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Server.ShutdownTimeout)
	defer cancel()
	var shutdownErr error
	for _, srv := range servers {
		shutdownErr = errors.Join(shutdownErr, srv.Shutdown(drainCtx))
	}
	stopBackground()
	wg.Wait()
	logger.Info("stopped")
	if shutdownErr != nil {
		return fmt.Errorf("shutdown: %w", shutdownErr)
	}
	return nil
}

// listen opens the public and (unless off) the operations listener. A
// public_url whose port is 0 takes the public listener's port, so tests and
// tools can run Gatehouse on any free port (server.address port 0).
func listen(cfg *config.Config) (ln, opsLn net.Listener, err error) {
	ln, err = net.Listen("tcp", cfg.Server.Address)
	if err != nil {
		return nil, nil, fmt.Errorf("listen: %w", err)
	}
	if cfg.Server.OpsAddress != "" {
		if opsLn, err = net.Listen("tcp", cfg.Server.OpsAddress); err != nil {
			ln.Close()
			return nil, nil, fmt.Errorf("listen on server.ops_address: %w", err)
		}
	}
	if u, err := url.Parse(cfg.Server.PublicURL); err == nil && u.Port() == "0" {
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		u.Host = net.JoinHostPort(u.Hostname(), port)
		cfg.Server.PublicURL = u.String()
	}
	return ln, opsLn, nil
}

// newHTTPServer returns an http.Server with the timeouts and limits every
// listener of Gatehouse uses (IN-3).
func newHTTPServer(c config.Server, h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: c.ReadHeaderTimeout,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      c.RequestTimeout + 15*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// clockKey is the context key of the clock that tests hand to run, so that
// they move time forward instead of sleeping through timeouts.
type clockKey struct{}

// clockFrom returns the domain's clock: the one a test put into ctx, or nil
// (time.Now).
func clockFrom(ctx context.Context) func() time.Time {
	now, _ := ctx.Value(clockKey{}).(func() time.Time)
	return now
}

// tuneGC trades memory for CPU where it pays: every password check
// allocates argon2id's 19 MiB (by default) afresh, and with Go's default
// GOGC=100 the collector runs so often that those pages are returned to the
// kernel and faulted in again, costing about a tenth of a login's CPU.
// Collecting less often keeps them resident; a soft memory limit sized to
// the hashing bound keeps the total predictable. GOGC and GOMEMLIMIT set in
// the environment take precedence.
func tuneGC(a config.Argon2, getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if getenv("GOMEMLIMIT") == "" {
		slots := int64(a.MaxConcurrent)
		if slots <= 0 {
			slots = int64(runtime.GOMAXPROCS(0))
		}
		debug.SetMemoryLimit(128<<20 + 4*slots*int64(a.MemoryKiB)<<10)
	}
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// errStopped says startup was interrupted by a shutdown signal.
var errStopped = errors.New("stopped during startup")

// ensureSchema creates collections and indexes, waiting for a database that
// is still starting (docker compose starts everything at once).
func ensureSchema(ctx context.Context, store *mongostore.Store, logger *slog.Logger) error {
	deadline := time.Now().Add(2 * time.Minute)
	for wait := time.Second; ; wait = min(2*wait, 10*time.Second) {
		err := store.EnsureSchema(ctx)
		if err == nil {
			return nil
		}
		if !errors.Is(err, accounts.ErrUnavailable) || time.Now().After(deadline) {
			return fmt.Errorf("prepare database: %w", err)
		}
		logger.Warn("database not reachable yet; retrying", "error", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return errStopped
		case <-time.After(wait):
		}
	}
}

// sweep deletes expired records every few minutes.
func sweep(ctx context.Context, svc *accounts.Service, logger *slog.Logger) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := svc.Sweep(ctx); err != nil && ctx.Err() == nil {
				logger.Warn("sweep", "error", err)
			}
		}
	}
}

// sessionSecret returns the configured secret or, in dev mode, one generated
// once and kept in data_dir so that restarts keep sessions and mailed links.
func sessionSecret(cfg *config.Config) ([]byte, error) {
	if cfg.Session.Secret != "" {
		return []byte(cfg.Session.Secret.Reveal()), nil
	}
	path := filepath.Join(cfg.DataDir, "secrets.json")
	var stored struct {
		SessionSecret string `json:"session_secret"`
	}
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &stored); err != nil || len(stored.SessionSecret) < 32 {
			return nil, fmt.Errorf("read %s: not a valid secrets file; delete it to generate a new one", path)
		}
		return []byte(stored.SessionSecret), nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("read secrets: %w", err)
	}
	stored.SessionSecret = base64.RawURLEncoding.EncodeToString(randomBytes(48))
	b, _ = json.Marshal(stored)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("write secrets: %w", err)
	}
	return []byte(stored.SessionSecret), nil
}

// deriveKey derives a purpose-bound 32-byte key from the session secret, so
// one configured secret serves cookie signing and outbox sealing without
// either key revealing the other.
func deriveKey(secret []byte, purpose string) []byte {
	k, err := hkdf.Key(sha256.New, secret, nil, purpose, 32)
	if err != nil {
		panic(err) // only for lengths hkdf cannot produce; 32 is fine
	}
	return k
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// redactURI drops credentials from a database URI for the startup log.
func redactURI(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URI)"
	}
	return u.Scheme + "://" + u.Host + u.Path
}

// providerConfigs maps the configuration to the providers'; one without a
// client id is not offered.
func providerConfigs(c config.Providers) []providers.Config {
	out := []providers.Config{
		{
			ID: "google", Label: "Google", Kind: providers.KindGoogle,
			ClientID: c.Google.ClientID, ClientSecret: c.Google.ClientSecret.Reveal(),
			AuthURL: c.Google.AuthURL, TokenURL: c.Google.TokenURL, UserinfoURL: c.Google.UserinfoURL,
			JWKSURL: c.Google.JWKSURL, Issuer: c.Google.Issuer,
		},
		{
			ID: "github", Label: "GitHub", Kind: providers.KindGitHub,
			ClientID: c.GitHub.ClientID, ClientSecret: c.GitHub.ClientSecret.Reveal(),
			AuthURL: c.GitHub.AuthURL, TokenURL: c.GitHub.TokenURL, APIURL: c.GitHub.APIURL,
		},
	}
	for _, o := range c.OIDC {
		out = append(out, providers.Config{
			ID: o.ID, Label: o.Label, Kind: providers.KindOIDC,
			ClientID: o.ClientID, ClientSecret: o.ClientSecret.Reveal(), Issuer: o.Issuer,
			AuthURL: o.AuthURL, TokenURL: o.TokenURL, JWKSURL: o.JWKSURL,
		})
	}
	return out
}

// devMailboxRows adapts the development mailbox to the page's rows.
type devMailboxRows struct{ m *mail.DevMailbox }

func (d devMailboxRows) Rows() []web.MailboxRow {
	msgs := d.m.Messages()
	rows := make([]web.MailboxRow, len(msgs))
	for i, m := range msgs {
		rows[i] = web.MailboxRow{ID: m.ID, To: m.To, Subject: m.Subject, Text: m.Text, Link: m.Link, At: m.At, Held: m.Held}
	}
	return rows
}
