package testkit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Environment and paths of the reverse-proxy tests.
const (
	// RequireProxiesEnv set to 1 turns a missing nginx or Caddy from a skip
	// into a failure; CI sets it so that the forward-auth journeys cannot
	// silently vanish.
	RequireProxiesEnv = "GATEHOUSE_REQUIRE_PROXIES"
	// NginxPath and CaddyPath are where Debian's packages install them.
	NginxPath = "/usr/sbin/nginx"
	CaddyPath = "/usr/bin/caddy"
)

// processStartTimeout bounds how long a proxy or app may take to listen.
const processStartTimeout = 30 * time.Second

// RequireNginx returns the nginx executable. Without one it skips the
// test, or fails it when GATEHOUSE_REQUIRE_PROXIES=1. Call it before any
// expensive setup.
func RequireNginx(tb testing.TB) string {
	tb.Helper()
	return requireExecutable(tb, "nginx", NginxPath, "nginx-light")
}

// RequireCaddy returns the caddy executable, or skips or fails the test
// like RequireNginx.
func RequireCaddy(tb testing.TB) string {
	tb.Helper()
	return requireExecutable(tb, "caddy", CaddyPath, "caddy")
}

func requireExecutable(tb testing.TB, name, path, pkg string) string {
	tb.Helper()
	if p, err := exec.LookPath(path); err == nil {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	msg := fmt.Sprintf("no %s found (apt-get install %s)", name, pkg)
	if os.Getenv(RequireProxiesEnv) == "1" {
		tb.Fatalf("%s, and %s=1", msg, RequireProxiesEnv)
	}
	tb.Skip(msg)
	return ""
}

// Process is a program a test runs next to the gateway: a reverse proxy or
// the example app. It runs in a process group of its own, which is ended
// when the test ends; when the test fails, its output and log are printed.
type Process struct {
	Name string
	// Addr is the loopback address it listens on.
	Addr string

	cmd     *exec.Cmd
	output  *SyncBuffer
	logFile string
	exited  chan struct{}
	err     error // of Wait, once exited is closed
}

// StartProcess starts cmd, which must listen on addr, waits until addr
// accepts connections, and stops the process group when the test ends.
// logFile, if not empty, is a log the process writes besides its output.
func StartProcess(tb testing.TB, name, addr, logFile string, cmd *exec.Cmd) *Process {
	tb.Helper()
	p := &Process{Name: name, Addr: addr, cmd: cmd, output: &SyncBuffer{}, logFile: logFile, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.output, p.output
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	tb.Cleanup(func() {
		p.stop()
		if tb.Failed() {
			tb.Logf("%s output:\n%s", name, p.Logs())
		}
	})
	deadline := time.Now().Add(processStartTimeout)
	for {
		select {
		case <-p.exited:
			tb.Fatalf("%s exited before listening on %s: %v", name, addr, p.err) // the cleanup prints its output
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return p
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s not listening on %s after %s", name, addr, processStartTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the process group: SIGTERM, and SIGKILL if it lingers.
func (p *Process) stop() {
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.exited
	}
	// Children left behind (nginx workers, a program under go run) go too.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// Logs returns the process's output and the end of its log file.
func (p *Process) Logs() string {
	s := p.output.String()
	if p.logFile != "" {
		if b, err := os.ReadFile(p.logFile); err == nil {
			s += "\n--- " + p.logFile + " ---\n" + string(b)
		}
	}
	const n = 8000
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}

// ExampleConfig reads a file of examples/ (path relative to the repository
// root, where the tests of package main run) and replaces its placeholders,
// given as old, new pairs. Each placeholder must occur in the file, so that
// the tests notice when an example changes under them.
func ExampleConfig(tb testing.TB, path string, oldnew ...string) string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("read example: %v", err)
	}
	s := string(b)
	if len(oldnew)%2 != 0 {
		tb.Fatalf("ExampleConfig: odd number of replacement strings")
	}
	for i := 0; i < len(oldnew); i += 2 {
		if !strings.Contains(s, oldnew[i]) {
			tb.Fatalf("example %s no longer contains the placeholder %q", path, oldnew[i])
		}
	}
	return strings.NewReplacer(oldnew...).Replace(s)
}

// StartUpstream runs the example app of examples/upstream on a free
// loopback port; gateway is the public URL its page links to for signing
// out.
func StartUpstream(tb testing.TB, gateway string) *Process {
	tb.Helper()
	addr := FreeAddr(tb)
	return GoRun(tb, "example upstream", addr, "./examples/upstream", "-addr", addr, "-gateway", gateway)
}

// GoRun runs a command of this module with `go run pkg args...` from the
// repository root (where the tests of package main run) and waits until it
// listens on addr. go run keeps built programs in the build cache, so only
// the first run of a test binary pays for the build.
func GoRun(tb testing.TB, name, addr, pkg string, args ...string) *Process {
	tb.Helper()
	// go test puts its own GOROOT/bin first on the PATH of tests.
	cmd := exec.Command("go", append([]string{"run", pkg}, args...)...)
	return StartProcess(tb, name, addr, "", cmd)
}

// StartNginx runs nginx on addr with the server blocks given, inside a
// minimal nginx.conf whose pid file, logs and temp directories are in a
// fresh directory. The server blocks must listen on addr.
func StartNginx(tb testing.TB, addr, servers string) *Process {
	tb.Helper()
	bin := RequireNginx(tb)
	dir := tb.TempDir()
	var conf strings.Builder
	if os.Geteuid() == 0 {
		// As root the workers would switch to nobody, who cannot enter the
		// test's private temp directories.
		conf.WriteString("user root;\n")
	}
	fmt.Fprintf(&conf, "worker_processes 1;\nevents { worker_connections 256; }\nhttp {\n")
	fmt.Fprintf(&conf, "    access_log %s;\n", filepath.Join(dir, "access.log"))
	for _, kind := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&conf, "    %s_temp_path %s;\n", kind, filepath.Join(dir, kind))
	}
	conf.WriteString(servers)
	conf.WriteString("\n}\n")
	file := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(file, []byte(conf.String()), 0o600); err != nil {
		tb.Fatal(err)
	}
	errorLog := filepath.Join(dir, "error.log")
	cmd := exec.Command(bin, "-p", dir, "-c", file, "-e", errorLog,
		"-g", fmt.Sprintf("daemon off; pid %s; error_log %s info;", filepath.Join(dir, "nginx.pid"), errorLog))
	p := StartProcess(tb, "nginx", addr, errorLog, cmd)
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("nginx.conf:\n%s", conf.String())
		}
	})
	return p
}

// StartCaddy runs `caddy run` on addr with the Caddyfile given, with its
// admin endpoint and automatic HTTPS off and its data in a fresh directory.
// The Caddyfile must have no global options block of its own.
func StartCaddy(tb testing.TB, addr, caddyfile string) *Process {
	tb.Helper()
	bin := RequireCaddy(tb)
	dir := tb.TempDir()
	conf := "{\n\tadmin off\n\tauto_https off\n\tstorage file_system " + filepath.Join(dir, "data") + "\n}\n\n" + caddyfile
	file := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", file, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+filepath.Join(dir, "config"), "XDG_DATA_HOME="+filepath.Join(dir, "data"))
	p := StartProcess(tb, "caddy", addr, "", cmd)
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("Caddyfile:\n%s", conf)
		}
	})
	return p
}

// LoopbackDialer connects every host name under one of domains (for
// example "example.test", which matches app.example.test), and "localhost",
// to 127.0.0.1 on the port asked for, as a hosts file would. Tests use it
// to reach several virtual hosts on loopback.
func LoopbackDialer(domains ...string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		host = strings.ToLower(strings.TrimSuffix(host, "."))
		ok := host == "localhost" || net.ParseIP(host) != nil
		for _, d := range domains {
			ok = ok || host == d || strings.HasSuffix(host, "."+d)
		}
		if !ok {
			return nil, errors.New("testkit: refusing to resolve " + host + " outside the test domains")
		}
		if net.ParseIP(host) == nil {
			host = "127.0.0.1"
		}
		return d.DialContext(ctx, network, net.JoinHostPort(host, port))
	}
}

// NewLoopbackClient is NewClient whose connections go to loopback for
// every host under domains (see LoopbackDialer), so that it can follow
// redirects between app.example.test and auth.example.test with one cookie
// jar, as a browser would.
func NewLoopbackClient(tb testing.TB, base string, domains ...string) *Client {
	c := NewClient(tb, base)
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.DialContext = LoopbackDialer(domains...)
	c.HTTP.Transport = t
	tb.Cleanup(t.CloseIdleConnections)
	return c
}
