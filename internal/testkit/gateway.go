package testkit

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/embeddeddb"
)

// RunFunc is the signature of package main's run.
type RunFunc func(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error

// MongoEnv names the variable that points the tests at a real MongoDB.
const MongoEnv = "GATEHOUSE_TEST_MONGODB_URI"

// Options configures a test gateway. Zero values mean: a new data dir, a
// free port, the embedded database (or GATEHOUSE_TEST_MONGODB_URI with a
// fresh database), and the captured SMTP server.
type Options struct {
	// Env sets configuration variables by full name (GATEHOUSE_...).
	Env map[string]string
	// DataDir reuses a data directory (a restart).
	DataDir string
	// Addr reuses a listen address (a restart).
	Addr string
	// Config is the content of the config file (YAML); empty by default.
	Config string
	// MongoURI points at a database server; Database names the database.
	MongoURI string
	Database string
}

// Gateway is Gatehouse running in-process through main's run, on the real
// wiring: configuration from the environment, the embedded database (or a
// real MongoDB), the outbox and worker, and the HTTP server.
type Gateway struct {
	URL  string
	Addr string
	// OpsURL is the operations listener (/metrics, /healthz, /readyz); empty
	// when the test turned it off.
	OpsURL   string
	DataDir  string
	Database string
	SMTP     *SMTPServer

	run    RunFunc
	opts   Options
	env    map[string]string
	logs   *SyncBuffer
	cancel context.CancelFunc
	done   chan error
}

// Start runs a gateway and stops it when the test ends.
func Start(tb testing.TB, run RunFunc, smtp *SMTPServer, opts Options) *Gateway {
	tb.Helper()
	// A gateway listens on port 0 and says which port it got, unless
	// opts.Addr fixes the address (a restart, or a test that must name the
	// port beforehand): such a port can be taken by someone else before the
	// gateway binds it, and that start is retried.
	for attempt := 1; ; attempt++ {
		g, err := start(tb, run, smtp, opts)
		if err == nil {
			return g
		}
		if !errors.Is(err, syscall.EADDRINUSE) || attempt == 5 {
			tb.Fatalf("gateway exited during startup: %v\nlogs:\n%s", err, g.Logs())
		}
		tb.Logf("start attempt %d: %v; retrying", attempt, err)
		time.Sleep(time.Duration(attempt) * 100 * time.Millisecond)
	}
}

func start(tb testing.TB, run RunFunc, smtp *SMTPServer, opts Options) (*Gateway, error) {
	tb.Helper()
	g := &Gateway{run: run, SMTP: smtp, opts: opts, logs: &SyncBuffer{}}
	g.DataDir = opts.DataDir
	if g.DataDir == "" {
		g.DataDir = tb.TempDir()
	}
	g.Addr = opts.Addr
	if g.Addr == "" {
		g.Addr = "127.0.0.1:0" // public_url's port 0 follows it
	}
	g.URL = "http://" + g.Addr
	uri := opts.MongoURI
	if uri == "" {
		uri = os.Getenv(MongoEnv)
	}
	g.Database = opts.Database
	if uri != "" && g.Database == "" {
		g.Database = NewDatabaseName()
		dropDatabase(tb, uri, g.Database) // runs after the gateway stopped
	}
	g.opts.MongoURI, g.opts.Database = uri, g.Database
	cfgFile := filepath.Join(tb.TempDir(), "config.yaml")
	if err := os.WriteFile(cfgFile, []byte(opts.Config), 0o600); err != nil {
		tb.Fatal(err)
	}
	g.env = map[string]string{
		"GATEHOUSE_SERVER_ADDRESS":          g.Addr,
		"GATEHOUSE_SERVER_PUBLIC_URL":       g.URL,
		"GATEHOUSE_SERVER_OPS_ADDRESS":      "127.0.0.1:0",
		"GATEHOUSE_DATA_DIR":                g.DataDir,
		"GATEHOUSE_LOG_LEVEL":               "debug",
		"GATEHOUSE_RATE_LIMITS_PER_IP":      "100000",
		"GATEHOUSE_RATE_LIMITS_PER_ADDRESS": "1000",
	}
	if smtp != nil {
		g.env["GATEHOUSE_SMTP_HOST"] = smtp.Host
		g.env["GATEHOUSE_SMTP_PORT"] = strconv.Itoa(smtp.Port)
		g.env["GATEHOUSE_SMTP_TLS"] = "none"
		g.env["GATEHOUSE_SMTP_FROM"] = "Gatehouse <no-reply@gatehouse.test>"
	}
	if uri != "" {
		g.env["GATEHOUSE_MONGODB_URI"] = uri
		g.env["GATEHOUSE_MONGODB_DATABASE"] = g.Database
	}
	for k, v := range opts.Env {
		g.env[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	g.done = make(chan error, 1)
	go func() {
		g.done <- run(ctx, []string{"-config", cfgFile}, func(k string) string { return g.env[k] }, g.logs)
	}()
	if err := g.waitHealthy(tb); err != nil {
		g.stop()
		return g, err
	}
	tb.Cleanup(func() { g.stop() })
	return g, nil
}

// startedLine is the startup log line that names the bound addresses.
var startedLine = regexp.MustCompile(`msg="gatehouse starting".* listen=(\S+) ops_listen=(\S+)`)

// waitHealthy waits until this gateway has bound its address (it logs
// "gatehouse starting" after that; until then another server could answer on
// the port) and then polls /healthz until it answers. It returns run's error
// if the gateway exits first.
func (g *Gateway) waitHealthy(tb testing.TB) error {
	tb.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-g.done:
			g.done <- err
			if err == nil {
				err = errors.New("run returned nil")
			}
			return err
		default:
		}
		started := startedLine.FindStringSubmatch(g.Logs())
		if started == nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		g.Addr, g.URL, g.OpsURL = started[1], "http://"+started[1], ""
		if started[2] != "off" {
			g.OpsURL = "http://" + started[2]
		}
		resp, err := http.Get(g.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatalf("gateway not healthy after 60s\nlogs:\n%s", g.Logs())
	return nil
}

// Stop cancels the gateway's context (what SIGTERM does) and returns run's
// result.
func (g *Gateway) Stop(tb testing.TB) error {
	tb.Helper()
	return g.stop()
}

func (g *Gateway) stop() error {
	g.cancel()
	select {
	case err := <-g.done:
		g.done <- err
		return err
	case <-time.After(60 * time.Second):
		return errors.New("gateway did not stop within 60s")
	}
}

// Restart stops the gateway and starts it again on the same address, data
// directory and database.
func (g *Gateway) Restart(tb testing.TB) *Gateway {
	tb.Helper()
	if err := g.Stop(tb); err != nil {
		tb.Fatalf("stop gateway: %v", err)
	}
	opts := g.opts
	opts.DataDir, opts.Addr = g.DataDir, g.Addr
	return Start(tb, g.run, g.SMTP, opts)
}

// Twin starts a second gateway on the same database (a second instance of
// a deployment). The database must be a server (opts.MongoURI or
// GATEHOUSE_TEST_MONGODB_URI), not an embedded one.
func (g *Gateway) Twin(tb testing.TB) *Gateway {
	tb.Helper()
	if g.opts.MongoURI == "" {
		tb.Fatal("Twin needs a database server: start the gateway with Options.MongoURI (see StartDB)")
	}
	opts := g.opts
	opts.DataDir, opts.Addr = "", ""
	return Start(tb, g.run, g.SMTP, opts)
}

// Logs returns everything the gateway logged so far.
func (g *Gateway) Logs() string { return g.logs.String() }

// Env returns the configuration variables the gateway was started with.
func (g *Gateway) Env() map[string]string { return g.env }

// FreeAddr returns a loopback address with a port that was free a moment ago
// and that FreeAddr has not handed out before in this process. The port
// comes from below the kernel's ephemeral range: ports from bind(":0") and
// outgoing connections (which the suite makes by the thousand, and which
// the embedded databases and browsers listen on) are taken from that range
// and could grab the port before its server binds it.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	lo := ephemeralStart()
	for range 1000 {
		port := freeAddrMin + mathrand.IntN(lo-freeAddrMin)
		if _, taken := freeAddrUsed.LoadOrStore(port, true); taken {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		addr := ln.Addr().String()
		ln.Close()
		return addr
	}
	tb.Fatal("find a free port: none free below the ephemeral range")
	return ""
}

// freeAddrMin is the lowest port FreeAddr hands out.
const freeAddrMin = 20000

var freeAddrUsed sync.Map // port -> true

// ephemeralStart returns the first port of the kernel's ephemeral range
// (Linux's default when it cannot be read).
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if lo, err := strconv.Atoi(f[0]); err == nil && lo > freeAddrMin+1000 {
				return lo
			}
		}
	}
	return 32768
}

// NewDatabaseName returns a fresh database name for a test.
func NewDatabaseName() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "gatehouse_test_" + hex.EncodeToString(b)
}

// DB is a database server for tests that need one shared by several
// gateways or reachable through a proxy: the embedded FerretDB started on
// its own, or the real MongoDB of GATEHOUSE_TEST_MONGODB_URI.
type DB struct {
	URI string
}

// StartDB returns the test database server.
func StartDB(tb testing.TB) *DB {
	tb.Helper()
	if uri := os.Getenv(MongoEnv); uri != "" {
		return &DB{URI: uri}
	}
	srv, err := embeddeddb.StartTCP(context.Background(), tb.TempDir(), "127.0.0.1:0", discardLogger())
	if err != nil {
		tb.Fatalf("start embedded database: %v", err)
	}
	tb.Cleanup(srv.Stop)
	return &DB{URI: srv.URI()}
}

// SyncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var emailSeq atomic.Int64

var nonWord = regexp.MustCompile(`[^a-z0-9]+`)

// Email returns an address unique to this test run, readable in logs.
func Email(tb testing.TB) string {
	name := nonWord.ReplaceAllString(strings.ToLower(tb.Name()), "-")
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	return fmt.Sprintf("%s-%d@example.com", strings.Trim(name, "-"), emailSeq.Add(1))
}
