package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"
)

// The gateway's argon2id parameters: config.yaml's defaults
// (password.argon2), with the key and salt lengths of accounts/password.go.
const (
	argonMemoryKiB = 19456
	argonTime      = 2
	argonThreads   = 1
	argonKeyLen    = 32
	argonSaltLen   = 16
)

// phaseFloor measures how many argon2id hashes per second this machine
// computes with the gateway's parameters, one goroutine per CPU, in this
// process while the gateway idles: the ceiling for login throughput.
func (b *bench) phaseFloor(ctx context.Context) error {
	// Warm up first: in a fresh process the first hashes fault their memory
	// in, which on this VM makes them up to ten times slower; the gateway's
	// hasher is warm by now (setup hashed every signup and verification).
	runLoad(ctx, runtime.NumCPU(), 2*time.Second, 0, b.hashOp)
	m := b.watch(ctx, b.gw.pid())
	t := runLoad(ctx, runtime.NumCPU(), b.opt.Duration, 0, b.hashOp)
	r := m.result("1 argon2id floor", floorName, runtime.NumCPU(), t)
	r.perOp()
	b.floor = r
	b.add(r)
	return nil
}

var floorName = fmt.Sprintf("argon2id m=%d t=%d p=%d in-process", argonMemoryKiB, argonTime, argonThreads)

// hashOp is the floor's operation: one argon2id hash of a user's password
// with a fresh salt.
func (b *bench) hashOp(int) op {
	password := []byte(b.users[0].Password)
	salt := make([]byte, argonSaltLen)
	return func() (int, error) {
		_, _ = rand.Read(salt)
		argon2.IDKey(password, salt, argonTime, argonMemoryKiB, argonThreads, argonKeyLen)
		return 0, nil
	}
}

// phaseLogin measures POST /api/v1/login with the right password from
// opt.concurrency raw keep-alive clients, against the floor. The logins and the
// floor alternate in opt.rounds slices of opt.duration/rounds each, and the
// ratio is taken against this interleaved floor: this VM's speed drifts by
// several percent within a minute (phase 1's floor ranged from 81 to 91
// hashes/s between runs an hour apart), as much as the gap being measured.
func (b *bench) phaseLogin(ctx context.Context) error {
	host := strings.TrimPrefix(b.gw.URL, "http://")
	reqs := make([][]byte, len(b.users))
	for i, u := range b.users {
		body, _ := json.Marshal(map[string]string{"email": u.Email, "password": u.Password})
		reqs[i] = postRequest(host, "/api/v1/login", body)
	}
	login, closeAll := rawOps(host, reqs, b.opt.Concurrency, time.Now().Add(b.opt.Duration+time.Minute))
	defer closeAll()
	if b.floor.Count == 0 { // phase 1 skipped: warm the hasher up here
		runLoad(ctx, runtime.NumCPU(), 2*time.Second, 0, b.hashOp)
	}
	slice := b.opt.Duration / time.Duration(b.opt.Rounds)
	var logins, hashes series
	for range b.opt.Rounds {
		logins.run(ctx, b, b.opt.Concurrency, slice, login)
		closeAll()
		hashes.run(ctx, b, runtime.NumCPU(), slice, b.hashOp)
	}
	ref := hashes.result("2 login", floorName+", interleaved", runtime.NumCPU())
	ref.perOp()
	r := logins.result("2 login", "POST /api/v1/login", b.opt.Concurrency)
	if r.perOp(); ref.Rate > 0 && r.CPU.GatewayPerOp > 0 {
		r.Ratio = r.Rate / ref.Rate
		r.CPURatio = ref.CPU.BenchPerOp / r.CPU.GatewayPerOp // the floor's hashes ran in this process
	}
	b.loginRef = ref
	b.add(ref)
	b.add(r)
	return nil
}

// phaseCheck compares the session checks with the no-op /healthz of the
// same server, each under opt.clients keep-alive clients; then, if wrk is
// installed, the same three with wrk.
func (b *bench) phaseCheck(ctx context.Context) error {
	const phase = "3 session check"
	cookie := b.users[0].Cookie
	paths := []string{"/healthz", "/api/v1/session", "/auth/check"}
	b.getLoad(ctx, b.gw, paths[1], []string{cookie}, time.Second, 0) // warm-up: connections, cache
	var noop Result
	for _, p := range paths {
		r := b.getLoad(ctx, b.gw, p, []string{cookie}, b.opt.Duration, 0)
		r.Phase = phase
		noop = b.compareNoop(r, noop)
	}
	for _, p := range paths {
		if !b.opt.Wrk {
			break
		}
		r, err := b.wrk(ctx, p, cookie)
		if err != nil { // wrk is a cross-check; without it the phase still stands
			b.warnings = append(b.warnings, "wrk: "+err.Error())
			break
		}
		r.Phase = phase
		noop = b.compareNoop(r, noop)
	}
	return nil
}

// compareNoop adds r compared with the no-op; r is the no-op if it is a
// /healthz row, and compareNoop returns the no-op for the rows that follow.
func (b *bench) compareNoop(r, noop Result) Result {
	if r.perOp(); strings.Contains(r.Name, "/healthz") {
		noop = r
	}
	compare(&r, noop)
	b.add(r)
	return noop
}

// getLoad runs opt.clients raw keep-alive clients doing GET path with the
// cookies round-robin for d, or perWorker requests each.
func (b *bench) getLoad(ctx context.Context, gw *gateway, path string, cookies []string, d time.Duration, perWorker int) Result {
	host := strings.TrimPrefix(gw.URL, "http://")
	reqs := make([][]byte, len(cookies))
	for i, c := range cookies {
		reqs[i] = getRequest(host, path, c)
	}
	newOp, closeAll := rawOps(host, reqs, b.opt.Clients, time.Now().Add(d+10*time.Second))
	defer closeAll()
	m := b.watch(ctx, gw.pid())
	t := runLoad(ctx, b.opt.Clients, d, perWorker, newOp)
	r := m.result("", "GET "+path, b.opt.Clients, t)
	return r
}

// phaseOverload fires opt.overload logins at once, each on a fresh
// connection, for up to three rounds within 20 s: the hashing queue is
// expected to turn the surplus into 503 overloaded with Retry-After.
func (b *bench) phaseOverload(ctx context.Context) error {
	const rounds, limit = 3, 20 * time.Second
	m := b.watch(ctx, b.gw.pid())
	all := tally{status: map[string]int64{}}
	start := time.Now()
	n := 0
	for ; n < rounds && time.Since(start) < limit && ctx.Err() == nil; n++ {
		t := b.overloadRound(ctx)
		all.merge(&t)
	}
	all.elapsed = time.Since(start)
	time.Sleep(2 * time.Second) // "after": let in-flight work and the GC settle
	r := m.result("4 overload", fmt.Sprintf("%d logins at once × %d rounds", b.opt.Overload, n), b.opt.Overload, all)
	r.Note = strings.TrimSpace(r.Note + " RSS end is 2 s after the last round")
	b.add(r)
	return nil
}

// overloadRound starts opt.overload logins together and waits for all.
func (b *bench) overloadRound(ctx context.Context) tally {
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		all   = tally{status: map[string]int64{}}
		start = make(chan struct{})
	)
	for i := range b.opt.Overload {
		u := b.users[i%len(b.users)]
		wg.Go(func() {
			<-start
			t0 := time.Now()
			key, err := b.freshLogin(ctx, u)
			d := time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			all.latencies = append(all.latencies, d)
			switch {
			case err != nil:
				all.count(0, err)
			case key == "200":
				all.ok++
				all.status[key]++
			default:
				all.status[key]++
			}
		})
	}
	close(start)
	wg.Wait()
	return all
}

// freshLogin logs u in on a new connection and classifies the answer by
// status, error code and Retry-After ("503 overloaded+Retry-After").
func (b *bench) freshLogin(ctx context.Context, u user) (string, error) {
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	body := fmt.Sprintf(`{"email":%q,"password":%q}`, u.Email, u.Password)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, b.gw.URL+"/api/v1/login", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var answer struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&answer)
	key := strings.TrimSpace(fmt.Sprint(resp.StatusCode, " ", answer.Error.Code))
	if resp.Header.Get("Retry-After") != "" {
		key += "+Retry-After"
	}
	return key, nil
}
