// Command bench measures Gatehouse on this machine and prints a markdown
// report: it builds the gateway, runs it as a subprocess on a loopback port
// with a temporary data dir (embedded database, development mailbox), and
// puts it under bounded load. See docs/benchmarks.md.
//
//	go run ./cmd/bench                                   # all phases, about 6 minutes
//	go run ./cmd/bench -sessions 1000,100000,1000000     # the 1M-session question
//	go run ./cmd/bench -skip 5 -duration 5s -json out.json
//
// Phases: 1 the argon2id floor (hashes/s in this process with the gateway's
// parameters), 2 login throughput against it (the logins and the floor
// alternate in slices, so both see the same machine), 3 session checks against the
// no-op /healthz, 4 500 logins at once, 5 session checks with many sessions
// stored. Every load loop is bounded in time and count and targets only
// 127.0.0.1; performance is measured here, never asserted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/embeddeddb"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// settings are the command's flags.
type settings struct {
	Repo        string        `json:"-"`
	Gateway     string        `json:"-"`
	JSON        string        `json:"-"`
	Duration    time.Duration `json:"duration_ns"`
	Concurrency int           `json:"login_concurrency"`
	Rounds      int           `json:"login_rounds"`
	Clients     int           `json:"check_clients"`
	Users       int           `json:"users"`
	Overload    int           `json:"overload"`
	Distinct    int           `json:"distinct_sessions"`
	Sessions    []int         `json:"sessions"`
	Skip        []int         `json:"skip,omitempty"`
	Wrk         bool          `json:"wrk"`
	ExternalDB  bool          `json:"external_db"`
	Quiet       time.Duration `json:"quiet_ns"`
}

func parseFlags(args []string, out io.Writer) (settings, error) {
	o := settings{}
	fl := flag.NewFlagSet("bench", flag.ContinueOnError)
	fl.SetOutput(out)
	fl.StringVar(&o.Repo, "repo", "", "repository root (default: the directory of `go env GOMOD`)")
	fl.StringVar(&o.Gateway, "gateway", "", "use this gateway `binary` instead of building the repository")
	fl.StringVar(&o.JSON, "json", "", "also write machine-readable results to this `file`")
	fl.DurationVar(&o.Duration, "duration", 10*time.Second, "length of each measurement")
	fl.IntVar(&o.Concurrency, "concurrency", 2*runtime.NumCPU(), "concurrent login clients (phase 2)")
	fl.IntVar(&o.Rounds, "rounds", 5, "slices in which phase 2 alternates the login load and the floor")
	fl.IntVar(&o.Clients, "clients", 16, "concurrent keep-alive clients for session checks (phases 3, 5)")
	fl.IntVar(&o.Users, "users", 20, "verified users to create (at most 90: the dev mailbox keeps 100 mails)")
	fl.IntVar(&o.Overload, "overload", 500, "logins fired at once (phase 4)")
	fl.IntVar(&o.Distinct, "distinct", 1000, "signed-in sessions checked round-robin (phase 5)")
	sessions := fl.String("sessions", "1000,100000", "session counts stored in turn (phase 5), comma-separated")
	skip := fl.String("skip", "", "phases to skip, comma-separated (e.g. 4,5)")
	fl.BoolVar(&o.Wrk, "wrk", true, "also measure phase 3 with wrk, if it is installed")
	fl.BoolVar(&o.ExternalDB, "external-db", false, "phases 1–4: run the database in the bench process, not in the gateway's (as with MongoDB on its own host; the gateway's CPU then excludes the database's)")
	fl.DurationVar(&o.Quiet, "quiet", time.Minute, "before each measurement, wait at most this long for other processes to use < 10% of the CPU (0: don't)")
	if err := fl.Parse(args); err != nil {
		return o, err
	}
	var err1, err2 error
	o.Sessions, err1 = intList(*sessions)
	o.Skip, err2 = intList(*skip)
	switch {
	case err1 != nil || err2 != nil:
		return o, errors.Join(err1, err2)
	case o.Duration < time.Second || o.Duration > 10*time.Minute:
		return o, errors.New("-duration: between 1s and 10m")
	case o.Users < 1 || o.Users > 90:
		return o, errors.New("-users: between 1 and 90")
	case o.Rounds < 1 || o.Rounds > 100:
		return o, errors.New("-rounds: between 1 and 100")
	case o.Concurrency < 1 || o.Clients < 1 || o.Overload < 1 || o.Distinct < 1:
		return o, errors.New("-concurrency, -clients, -overload and -distinct must be positive")
	case o.Concurrency > 1000 || o.Clients > 1000 || o.Overload > 5000 || o.Distinct > 10_000:
		return o, errors.New("-concurrency and -clients at most 1000, -overload 5000, -distinct 10000")
	case slices.ContainsFunc(o.Sessions, func(n int) bool { return n > 10_000_000 }):
		return o, errors.New("-sessions: at most 10000000")
	}
	return o, nil
}

func intList(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("not a count: %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// bench is one run: the built gateway, its users and the results so far.
type bench struct {
	opt      settings
	bin, tmp string
	gw       *gateway
	db       *embeddeddb.Server // phases 1–4 with -external-db
	users    []user
	floor    Result // phase 1
	loginRef Result // phase 2's interleaved floor
	results  []Result
	warnings []string
	out      io.Writer
}

func (b *bench) skipped(phase int) bool       { return slices.Contains(b.opt.Skip, phase) }
func (b *bench) logf(format string, a ...any) { fmt.Fprintf(os.Stderr, "bench: "+format+"\n", a...) }

// add completes r's per-operation figures and keeps it.
func (b *bench) add(r Result) {
	r.perOp()
	b.results = append(b.results, r)
}

// stopGateway stops g and keeps its complaints for the report.
func (b *bench) stopGateway(g *gateway) {
	if w := g.stop(); w != "" {
		b.warnings = append(b.warnings, w)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	opt, err := parseFlags(args, stdout)
	if err != nil {
		return err
	}
	if opt.Repo == "" && opt.Gateway == "" {
		if opt.Repo, err = repoRoot(); err != nil {
			return err
		}
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		opt.Wrk = false
	}
	tmp, err := os.MkdirTemp("", "gatehouse-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	b := &bench{opt: opt, tmp: tmp, out: stdout}
	if opt.Gateway != "" {
		b.bin, err = filepath.Abs(opt.Gateway)
	} else {
		b.logf("building the gateway in %s", opt.Repo)
		b.bin, err = buildGateway(ctx, opt.Repo, tmp)
	}
	if err != nil {
		return err
	}
	report := Report{Machine: machine(), Started: time.Now().UTC(), Options: opt, Gateway: describe(opt)}
	m := report.Machine
	database := "embedded in the gateway"
	if opt.ExternalDB {
		database = "in the bench process"
	}
	fmt.Fprintf(stdout, "## Gatehouse benchmark, %s\n\n%d CPUs (%s), %s, Linux %s; gateway %s; database of phases 1–4 %s; %s per measurement, %d login clients, %d check clients.\n",
		report.Started.Format(time.RFC3339), m.CPUs, m.Model, m.Go, m.Kernel, report.Gateway, database, opt.Duration, opt.Concurrency, opt.Clients)

	err = b.runPhases(ctx)
	report.Results, report.Warnings = b.results, b.warnings
	b.printSummary()
	if opt.JSON != "" {
		if jerr := writeJSON(opt.JSON, report); jerr != nil {
			err = errors.Join(err, jerr)
		}
	}
	return err
}

// describe names the gateway under test: the binary, or the repository's
// commit and whether the working tree had changes.
func describe(opt settings) string {
	if opt.Gateway != "" {
		return opt.Gateway
	}
	head, err := exec.Command("git", "-C", opt.Repo, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "built from " + opt.Repo
	}
	desc := "built from commit " + strings.TrimSpace(string(head))
	if st, _ := exec.Command("git", "-C", opt.Repo, "status", "--porcelain").Output(); len(st) > 0 {
		desc += " plus uncommitted changes"
	}
	return desc
}

// runPhases runs phases 1–4 against one gateway in the default deployment,
// then phase 5, which runs its own; it prints each phase's table when done.
func (b *bench) runPhases(ctx context.Context) error {
	phases := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"1: argon2id floor", b.phaseFloor},
		{"2: login throughput", b.phaseLogin},
		{"3: session check vs no-op", b.phaseCheck},
		{"4: overload", b.phaseOverload},
		{"5: session checks with many sessions stored", b.phaseSessions},
	}
	defer func() {
		if b.gw != nil {
			b.stopGateway(b.gw)
		}
		if b.db != nil {
			b.db.Stop()
		}
	}()
	for i, p := range phases {
		if b.skipped(i+1) || ctx.Err() != nil {
			continue
		}
		if i < 4 && b.gw == nil {
			if err := b.startDefault(ctx); err != nil {
				return err
			}
		}
		if i == 4 && b.gw != nil { // phase 5 runs its own gateway; this one must not compete
			b.stopGateway(b.gw)
			b.gw = nil
		}
		b.logf("phase %s", p.name)
		n := len(b.results)
		err := p.fn(ctx)
		printTable(b.out, p.name, b.results[n:])
		if err != nil {
			return err
		}
	}
	return ctx.Err()
}

// startDefault starts the gateway of phases 1–4 (embedded database) and
// creates its users.
func (b *bench) startDefault(ctx context.Context) error {
	dir := filepath.Join(b.tmp, "gateway")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	var env map[string]string
	if b.opt.ExternalDB {
		var err error
		if b.db, err = startDatabase(ctx, filepath.Join(b.tmp, "database")); err != nil {
			return err
		}
		env = map[string]string{"GATEHOUSE_MONGODB_URI": b.db.URI()}
	}
	var err error
	if b.gw, err = startGateway(ctx, b.bin, dir, env); err != nil {
		return err
	}
	if b.db != nil {
		if err := indexIDs(ctx, b.db); err != nil {
			return err
		}
	}
	b.logf("creating %d users", b.opt.Users)
	b.users, err = newAPI(b.gw.URL, 4).createUsers(ctx, b.opt.Users)
	return err
}
