package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// buildGateway compiles the gateway from the repository root into dir.
func buildGateway(ctx context.Context, repo, dir string) (string, error) {
	bin := filepath.Join(dir, "gatehouse")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = repo
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build: %w", err)
	}
	return bin, nil
}

// repoRoot returns the directory of the main module's go.mod.
func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	mod := strings.TrimSpace(string(out))
	if err != nil || mod == "" || mod == os.DevNull {
		return "", errors.New("cannot locate go.mod; run inside the repository or pass -repo")
	}
	return filepath.Dir(mod), nil
}

// gateway is a running gatehouse subprocess on a loopback port.
type gateway struct {
	URL  string
	cmd  *exec.Cmd
	done chan struct{}
	logs *tail
}

// startGateway runs bin with a clean GATEHOUSE_* environment (so no SMTP and,
// unless env says otherwise, the embedded database) plus env, and waits until
// /healthz answers.
func startGateway(ctx context.Context, bin, dataDir string, env map[string]string) (*gateway, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	vars := map[string]string{
		"GATEHOUSE_SERVER_ADDRESS":            addr,
		"GATEHOUSE_SERVER_PUBLIC_URL":         "http://" + addr,
		"GATEHOUSE_SERVER_OPS_ADDRESS":        "off",
		"GATEHOUSE_DATA_DIR":                  dataDir,
		"GATEHOUSE_DEV_MODE":                  "true",
		"GATEHOUSE_LOG_LEVEL":                 "warn",
		"GATEHOUSE_RATE_LIMITS_PER_IP":        "100000000",
		"GATEHOUSE_RATE_LIMITS_PER_ADDRESS":   "100000000",
		"GATEHOUSE_RATE_LIMITS_LOCKOUT_AFTER": "1000000",
	}
	for k, v := range env {
		vars[k] = v
	}
	cmd := exec.Command(bin)
	cmd.Dir = dataDir // no config.yaml there: the embedded defaults apply
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GATEHOUSE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	g := &gateway{URL: "http://" + addr, cmd: cmd, done: make(chan struct{}), logs: &tail{}}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start gateway: %w", err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			g.logs.add(sc.Text())
		}
		_ = cmd.Wait()
		close(g.done)
	}()
	if err := g.waitHealthy(ctx, time.Minute); err != nil {
		g.stop()
		return nil, fmt.Errorf("%w; gateway output:\n%s", err, g.logs.String())
	}
	return g, nil
}

func (g *gateway) pid() int { return g.cmd.Process.Pid }

func (g *gateway) waitHealthy(ctx context.Context, limit time.Duration) error {
	c := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); {
		select {
		case <-g.done:
			return errors.New("gateway exited during startup")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if resp, err := c.Get(g.URL + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return errors.New("gateway not healthy within " + limit.String())
}

// stop sends SIGTERM and, if the gateway has not drained within 15 s, kills
// it. It returns a warning if the gateway logged errors.
func (g *gateway) stop() string {
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.done:
	case <-time.After(15 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.done
	}
	g.logs.mu.Lock()
	defer g.logs.mu.Unlock()
	if g.logs.problems == 0 {
		return ""
	}
	return fmt.Sprintf("the gateway logged %d warnings or errors, first: `%s`", g.logs.problems, strings.Join(g.logs.samples, "`, `"))
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// tail keeps the last lines of the gateway's output for error messages,
// and counts and samples its complaints (5xx answers are logged once, 503 at
// WARN and the rest at ERROR), except the expected "overloaded" answers.
type tail struct {
	mu       sync.Mutex
	lines    []string
	problems int
	samples  []string
}

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == 50 {
		t.lines = t.lines[1:]
	}
	t.lines = append(t.lines, line)
	expected := strings.Contains(line, "dev_mode is on") || strings.Contains(line, "code=overloaded")
	if !expected && (strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN")) {
		t.problems++
		if len(t.samples) < 3 {
			t.samples = append(t.samples, line)
		}
	}
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}

// procKiB reads a "Name:  123 kB" field of /proc/<pid>/status ("self" for pid 0).
func procKiB(pid int, field string) float64 {
	b, err := os.ReadFile(procPath(pid, "status"))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return n
		}
	}
	return 0
}

// cpuSeconds is the user+system CPU time of a process (0 for self).
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(procPath(pid, "stat"))
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name; utime and stime are 14 and 15.
	_, rest, _ := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}

// machineBusySeconds is the CPU time all processes of the machine have used
// (the first line of /proc/stat, less idle and iowait).
func machineBusySeconds() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	var busy float64
	for i, f := range strings.Fields(line)[1:] {
		n, _ := strconv.ParseFloat(f, 64)
		if i != 3 && i != 4 && i < 7 { // not idle, iowait, steal; guest time is already in user
			busy += n
		}
	}
	return busy / 100
}

// resetHWM resets a process's VmHWM so it measures the coming phase only.
func resetHWM(pid int) { _ = os.WriteFile(procPath(pid, "clear_refs"), []byte("5"), 0) }

func procPath(pid int, name string) string {
	if pid == 0 {
		return "/proc/self/" + name
	}
	return "/proc/" + strconv.Itoa(pid) + "/" + name
}

// Memory is the RSS of a process during one measurement, in MiB.
type Memory struct {
	Before float64 `json:"before_mib"`
	Peak   float64 `json:"peak_mib"`
	End    float64 `json:"end_mib"`
	HWM    float64 `json:"hwm_mib"`
}

// sampler reads VmRSS every 100 ms until stopped.
type sampler struct {
	pid  int
	mem  Memory
	quit chan struct{}
	done chan struct{}
}

func startSampler(pid int) *sampler {
	resetHWM(pid)
	s := &sampler{pid: pid, quit: make(chan struct{}), done: make(chan struct{})}
	s.mem.Before = procKiB(pid, "VmRSS") / 1024
	s.mem.Peak = s.mem.Before
	go func() {
		defer close(s.done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-s.quit:
				return
			case <-t.C:
				s.mem.Peak = max(s.mem.Peak, procKiB(pid, "VmRSS")/1024)
			}
		}
	}()
	return s
}

func (s *sampler) stop() Memory {
	close(s.quit)
	<-s.done
	s.mem.End = procKiB(s.pid, "VmRSS") / 1024
	s.mem.Peak = max(s.mem.Peak, s.mem.End)
	s.mem.HWM = procKiB(s.pid, "VmHWM") / 1024
	return s.mem
}
