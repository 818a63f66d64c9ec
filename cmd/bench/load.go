package main

import (
	"context"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Result is one measured row of the report.
type Result struct {
	Phase    string           `json:"phase"`
	Name     string           `json:"name"`
	Sessions int              `json:"sessions,omitempty"`
	Workers  int              `json:"workers"`
	Count    int64            `json:"count"`               // operations that succeeded (2xx, or a hash)
	Seconds  float64          `json:"seconds"`             // wall time of the load
	Rate     float64          `json:"rate"`                // Count per second
	Ratio    float64          `json:"ratio,omitempty"`     // rate / the reference's rate
	CPURatio float64          `json:"cpu_ratio,omitempty"` // the reference's CPU per op / this row's
	P50ms    float64          `json:"p50_ms"`
	P99ms    float64          `json:"p99_ms"`
	Status   map[string]int64 `json:"status"`
	Gateway  Memory           `json:"gateway_rss"`
	BenchMiB float64          `json:"bench_rss_peak_mib,omitempty"`
	CPU      struct {
		Gateway float64 `json:"gateway_s"`
		Bench   float64 `json:"bench_s"`  // this process, plus wrk for wrk rows
		Others  float64 `json:"others_s"` // every other process of the machine: contamination
		// Per operation (any status), in microseconds: robust to other load.
		GatewayPerOp float64 `json:"gateway_us_per_op"`
		BenchPerOp   float64 `json:"bench_us_per_op"`
		// OthersShare is the part of the machine's CPU that other processes took.
		OthersShare float64 `json:"others_share"`
	} `json:"cpu"`
	Note string `json:"note,omitempty"`
}

// op performs one operation and returns its HTTP status (0 for work that
// is not a request, such as a hash).
type op func() (int, error)

// tally is what a load run saw.
type tally struct {
	ok        int64
	status    map[string]int64
	latencies []time.Duration
	elapsed   time.Duration
	firstErr  error
}

// maxOpsPerWorker bounds every load loop in count as well as in time.
const maxOpsPerWorker = 5_000_000

// runLoad runs newOp(w)'s op in a loop on each of workers goroutines until d
// has passed, or each did perWorker calls (0: maxOpsPerWorker), or ctx ends,
// timing every call. newOp is called on the caller's goroutine, once per worker.
func runLoad(ctx context.Context, workers int, d time.Duration, perWorker int, newOp func(w int) op) tally {
	if perWorker <= 0 || perWorker > maxOpsPerWorker {
		perWorker = maxOpsPerWorker
	}
	var (
		mu  sync.Mutex
		all = tally{status: map[string]int64{}}
		wg  sync.WaitGroup
	)
	start := time.Now()
	end := start.Add(d)
	for w := range workers {
		do := newOp(w)
		wg.Go(func() {
			local := tally{status: map[string]int64{}, latencies: make([]time.Duration, 0, 1<<14)}
			t0 := time.Now()
			for n := 0; n < perWorker && t0.Before(end) && ctx.Err() == nil; n++ {
				status, err := do()
				t1 := time.Now()
				local.count(status, err)
				local.latencies = append(local.latencies, t1.Sub(t0))
				t0 = t1
			}
			mu.Lock()
			defer mu.Unlock()
			all.merge(&local)
		})
	}
	wg.Wait()
	all.elapsed = time.Since(start)
	return all
}

func (t *tally) count(status int, err error) {
	switch {
	case err != nil:
		t.status["error"]++
		if t.firstErr == nil {
			t.firstErr = err
		}
	case status == 0:
		t.status["ok"]++
		t.ok++
	default:
		t.status[strconv.Itoa(status)]++
		if status >= 200 && status < 300 {
			t.ok++
		}
	}
}

func (t *tally) merge(o *tally) {
	t.ok += o.ok
	for k, v := range o.status {
		t.status[k] += v
	}
	t.latencies = append(t.latencies, o.latencies...)
	if t.firstErr == nil {
		t.firstErr = o.firstErr
	}
}

// percentile returns the p-th percentile latency in milliseconds.
func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := min(len(sorted)-1, int(p*float64(len(sorted))))
	return float64(sorted[i]) / float64(time.Millisecond)
}

// measurement is a load run watched for memory and CPU.
type measurement struct {
	gw, bench *sampler
	pid       int
	cpu0      [3]float64
}

// watch waits for a quiet machine, then starts sampling the gateway (pid)
// and this process.
func (b *bench) watch(ctx context.Context, pid int) *measurement {
	b.awaitQuiet(ctx, pid)
	return startMeasurement(pid)
}

// startMeasurement starts watching the gateway with pid, and this process.
func startMeasurement(pid int) *measurement {
	return &measurement{gw: startSampler(pid), bench: startSampler(0), pid: pid, cpu0: [3]float64{cpuSeconds(pid), cpuSeconds(0), machineBusySeconds()}}
}

// quietShare is the share of the machine's CPU that other processes may use
// for a measurement to start without waiting.
const quietShare = 0.10

// awaitQuiet waits, at most opt.Quiet, until processes other than this one
// and the gateway use less than quietShare of the machine for half a second:
// on a shared machine, others' builds and tests would be measured too.
func (b *bench) awaitQuiet(ctx context.Context, pid int) {
	const window = 500 * time.Millisecond
	for deadline := time.Now().Add(b.opt.Quiet); time.Now().Before(deadline) && ctx.Err() == nil; {
		busy, own := machineBusySeconds(), cpuSeconds(pid)+cpuSeconds(0)
		time.Sleep(window)
		others := machineBusySeconds() - busy - (cpuSeconds(pid) + cpuSeconds(0) - own)
		if others < quietShare*window.Seconds()*float64(runtime.NumCPU()) {
			return
		}
	}
	if b.opt.Quiet > 0 {
		b.logf("the machine is still busy after %s; measuring anyway", b.opt.Quiet)
	}
}

// result turns a tally into a Result with the memory and CPU seen meanwhile.
func (m *measurement) result(phase, name string, workers int, t tally) Result {
	r := t.result(phase, name, workers)
	r.Gateway = m.gw.stop()
	r.BenchMiB = m.bench.stop().Peak
	r.CPU.Gateway = cpuSeconds(m.pid) - m.cpu0[0]
	r.CPU.Bench = cpuSeconds(0) - m.cpu0[1]
	r.CPU.Others = max(0, machineBusySeconds()-m.cpu0[2]-r.CPU.Gateway-r.CPU.Bench)
	return r
}

// result sets a Result's counts, rate and latencies from the tally.
func (t *tally) result(phase, name string, workers int) Result {
	r := Result{Phase: phase, Name: name, Workers: workers, Count: t.ok, Status: t.status}
	r.Seconds = t.elapsed.Seconds()
	if r.Seconds > 0 {
		r.Rate = float64(t.ok) / r.Seconds
	}
	slices.Sort(t.latencies)
	r.P50ms, r.P99ms = percentile(t.latencies, .50), percentile(t.latencies, .99)
	if t.firstErr != nil {
		r.Note = "first error: " + t.firstErr.Error()
	}
	return r
}

// series is one measurement taken in slices, each watched on its own; its
// result is their sum.
type series struct {
	t   tally
	sum Result // memory and CPU
	n   int
}

// sliceWarmup is the unmeasured load before each slice of a series: in the
// pause before it (awaitQuiet's half second at least) the collector may
// return the memory of the last hashes to the kernel, and the first hashes
// of a slice would then fault 19 MiB in again, on whichever side of the
// comparison that pause happened to hit harder.
const sliceWarmup = 500 * time.Millisecond

// run measures one more slice: workers running newOp's op for d, after
// sliceWarmup of the same load.
func (s *series) run(ctx context.Context, b *bench, workers int, d time.Duration, newOp func(w int) op) {
	b.awaitQuiet(ctx, b.gw.pid())
	runLoad(ctx, workers, sliceWarmup, 0, newOp)
	m := startMeasurement(b.gw.pid())
	t := runLoad(ctx, workers, d, 0, newOp)
	r := m.result("", "", workers, t)
	if s.n == 0 {
		s.t = tally{status: map[string]int64{}}
		s.sum.Gateway.Before = r.Gateway.Before
	}
	s.n++
	s.t.merge(&t)
	s.t.elapsed += t.elapsed
	g := &s.sum.Gateway
	g.Peak, g.HWM, g.End = max(g.Peak, r.Gateway.Peak), max(g.HWM, r.Gateway.HWM), r.Gateway.End
	s.sum.BenchMiB = max(s.sum.BenchMiB, r.BenchMiB)
	s.sum.CPU.Gateway += r.CPU.Gateway
	s.sum.CPU.Bench += r.CPU.Bench
	s.sum.CPU.Others += r.CPU.Others
}

// result returns the sum of the slices.
func (s *series) result(phase, name string, workers int) Result {
	r := s.t.result(phase, name, workers)
	r.Gateway, r.BenchMiB, r.CPU = s.sum.Gateway, s.sum.BenchMiB, s.sum.CPU
	return r
}

// perOp sets the per-operation CPU figures and the others' share.
func (r *Result) perOp() {
	var ops int64
	for _, n := range r.Status {
		ops += n
	}
	if ops > 0 {
		r.CPU.GatewayPerOp = 1e6 * r.CPU.Gateway / float64(ops)
		r.CPU.BenchPerOp = 1e6 * r.CPU.Bench / float64(ops)
	}
	if r.Seconds > 0 {
		r.CPU.OthersShare = r.CPU.Others / (r.Seconds * float64(runtime.NumCPU()))
	}
}

// compare sets r's ratios to a reference row: of the rates, and of the
// gateway's CPU per operation, which other load on the machine disturbs less.
func compare(r *Result, ref Result) {
	r.perOp()
	if ref.Rate > 0 {
		r.Ratio = r.Rate / ref.Rate
	}
	if r.CPU.GatewayPerOp > 0 {
		r.CPURatio = ref.CPU.GatewayPerOp / r.CPU.GatewayPerOp
	}
}

// statusText renders a status map as "200×1234 503×5".
func statusText(m map[string]int64) string {
	s := ""
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if s != "" {
			s += " "
		}
		s += k + "×" + strconv.FormatInt(m[k], 10)
	}
	return s
}
