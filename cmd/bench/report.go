package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Machine describes where the figures were taken.
type Machine struct {
	CPUs   int    `json:"cpus"`
	Model  string `json:"cpu_model"`
	Go     string `json:"go"`
	Kernel string `json:"kernel"`
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.Model = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// Report is the -json output.
type Report struct {
	Machine  Machine   `json:"machine"`
	Gateway  string    `json:"gateway"`
	Started  time.Time `json:"started"`
	Options  settings  `json:"options"`
	Results  []Result  `json:"results"`
	Warnings []string  `json:"warnings,omitempty"`
}

func writeJSON(path string, r Report) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// printTable writes one phase's rows as a markdown table.
func printTable(w io.Writer, phase string, rows []Result) {
	fmt.Fprintf(w, "\n### Phase %s\n\n", phase)
	fmt.Fprintln(w, "| measurement | sessions | workers | ok/s | ratio (by CPU/op) | p50 ms | p99 ms | statuses | CPU µs/op gateway / bench | others' CPU | gateway RSS MiB before / peak / end (HWM) | bench RSS MiB |")
	fmt.Fprintln(w, "|---|--:|--:|--:|--:|--:|--:|---|--:|--:|---|--:|")
	for _, r := range rows {
		ratio, sessions, rss := "", "", ""
		if r.Ratio > 0 {
			ratio = fmt.Sprintf("%.1f%% (CPU %.0f%%)", 100*r.Ratio, 100*r.CPURatio)
		}
		if r.Sessions > 0 {
			sessions = strconv.Itoa(r.Sessions)
		}
		if m := r.Gateway; m.Peak > 0 {
			rss = fmt.Sprintf("%.0f / %.0f / %.0f (%.0f)", m.Before, m.Peak, m.End, m.HWM)
		}
		fmt.Fprintf(w, "| %s | %s | %d | %.1f | %s | %.2f | %.2f | %s | %.0f / %.0f | %.0f%% | %s | %.0f |\n",
			r.Name, sessions, r.Workers, r.Rate, ratio, r.P50ms, r.P99ms, statusText(r.Status),
			r.CPU.GatewayPerOp, r.CPU.BenchPerOp, 100*r.CPU.OthersShare, rss, r.BenchMiB)
	}
	for _, r := range rows {
		if r.Note != "" {
			fmt.Fprintf(w, "\n- %s: %s\n", r.Name, r.Note)
		}
	}
}

var (
	wrkRate     = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	wrkRequests = regexp.MustCompile(`(\d+) requests in ([\d.]+)(us|ms|s|m)`)
	wrkNon2xx   = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkP        = regexp.MustCompile(`\s(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)`)
)

// wrk measures GET path with wrk (16 connections, one thread per CPU) for
// comparison with the Go client: wrk costs less CPU per request.
func (b *bench) wrk(ctx context.Context, path, cookie string) (Result, error) {
	secs := max(1, int(b.opt.Duration.Seconds()))
	m := b.watch(ctx, b.gw.pid())
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "wrk", "-t", strconv.Itoa(runtime.NumCPU()), "-c", strconv.Itoa(b.opt.Clients),
		"-d", strconv.Itoa(secs)+"s", "--latency", "-H", "Cookie: "+cookie, b.gw.URL+path)
	out, err := cmd.Output()
	r := m.result("", "wrk GET "+path, b.opt.Clients, tally{status: map[string]int64{}})
	if ps := cmd.ProcessState; ps != nil {
		wrkCPU := (ps.UserTime() + ps.SystemTime()).Seconds()
		r.CPU.Bench += wrkCPU
		r.CPU.Others = max(0, r.CPU.Others-wrkCPU)
	}
	if err != nil {
		return r, fmt.Errorf("%w: %s", err, out)
	}
	s := string(out)
	req := wrkRequests.FindStringSubmatch(s)
	rate := wrkRate.FindStringSubmatch(s)
	if req == nil || rate == nil {
		return r, fmt.Errorf("unexpected wrk output: %s", s)
	}
	total, _ := strconv.ParseInt(req[1], 10, 64)
	var non2xx int64
	if n := wrkNon2xx.FindStringSubmatch(s); n != nil {
		non2xx, _ = strconv.ParseInt(n[1], 10, 64)
	}
	r.Count = total - non2xx
	r.Status = map[string]int64{"2xx/3xx": r.Count, "other": non2xx}
	r.Seconds = parseUnit(req[2], req[3]) / 1000
	r.Rate = float64(r.Count) / r.Seconds
	for _, p := range wrkP.FindAllStringSubmatch(s, -1) {
		if p[1] == "50" {
			r.P50ms = parseUnit(p[2], p[3])
		} else {
			r.P99ms = parseUnit(p[2], p[3])
		}
	}
	return r, nil
}

// parseUnit converts a wrk figure to milliseconds.
func parseUnit(v, unit string) float64 {
	f, _ := strconv.ParseFloat(v, 64)
	switch unit {
	case "us":
		return f / 1000
	case "s":
		return f * 1000
	case "m":
		return f * 60_000
	}
	return f
}

// printSummary prints the figures the issues ask about, read off the rows.
func (b *bench) printSummary() {
	fmt.Fprintln(b.out, "\n### Summary")
	var noop Result
	for _, r := range b.results {
		c, line, ref := r.CPU, "", Result{}
		switch {
		case strings.HasSuffix(r.Name, "/healthz"):
			noop = r
		case r.Phase == "2 login" && r.Ratio > 0:
			ref = b.loginRef
			line = fmt.Sprintf("login: %.1f/s = %.1f%% of the argon2id floor measured in between (%.1f/s); by CPU per op %.1f%% (%.0f µs per login, %.0f µs per bare hash); goal ≥ 90%%",
				r.Rate, 100*r.Ratio, ref.Rate, 100*r.CPURatio, c.GatewayPerOp, ref.CPU.BenchPerOp)
		case r.Phase == "3 session check":
			ref = noop
			line = fmt.Sprintf("%s: %.0f/s = %.1f%% of the no-op, by CPU per op %.1f%% (%.0f µs); p50 %.2f ms, p99 %.2f ms; gateway RSS peak %.0f MiB",
				r.Name, r.Rate, 100*r.Ratio, 100*r.CPURatio, c.GatewayPerOp, r.P50ms, r.P99ms, r.Gateway.Peak)
		case r.Phase == "4 overload":
			line = fmt.Sprintf("overload: %s; gateway RSS %.0f → peak %.0f (HWM %.0f) → %.0f MiB, growth %.0f MiB",
				statusText(r.Status), r.Gateway.Before, r.Gateway.Peak, r.Gateway.HWM, r.Gateway.End, max(r.Gateway.Peak, r.Gateway.HWM)-r.Gateway.Before)
		}
		if others := max(c.OthersShare, ref.CPU.OthersShare); line != "" && others > 0.1 {
			line += fmt.Sprintf(" (contaminated: other processes took up to %.0f%% of the machine's CPU during this or its reference measurement)", 100*others)
		}
		if line != "" {
			fmt.Fprintf(b.out, "\n- %s", line)
		}
	}
	for _, w := range b.warnings {
		fmt.Fprintf(b.out, "\n- WARNING: %s", w)
	}
	fmt.Fprintln(b.out)
}
