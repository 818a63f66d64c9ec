package accounts

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Password length limits. Length is counted in code points, not bytes, so any
// script gets the same allowance; MaxPasswordBytes refuses absurd inputs before
// any work is done on them.
const (
	MinPasswordFloor  = 8
	MaxPasswordLength = 128
	MaxPasswordBytes  = 1024
)

// commonPasswordsTxt holds, lower-cased, de-duplicated and sorted (96,645
// lines), the 100,000 most common passwords of 8 characters or more from
// SecLists' "10 million password list" (see NOTICE). Shorter entries are
// left out: the length rule already refuses them.
//
//go:embed common_passwords.txt
var commonPasswordsTxt string

// Policy decides whether a new password is acceptable (NIST SP 800-63B):
// length only, no composition rules, any Unicode, and no common or
// self-describing passwords.
type Policy struct {
	MinLength int
	common    []string
}

// NewPolicy returns a policy with the given minimum length (never below
// MinPasswordFloor).
func NewPolicy(minLength int) *Policy {
	common := strings.Split(strings.TrimSpace(commonPasswordsTxt), "\n")
	return &Policy{MinLength: max(minLength, MinPasswordFloor), common: common}
}

// Check returns a *PasswordError when password may not be used by the owner
// of email (which may be empty).
func (p *Policy) Check(password, email string) error {
	if len(password) > MaxPasswordBytes {
		return &PasswordError{Reason: "too_long", Min: p.MinLength, Max: MaxPasswordLength}
	}
	if !utf8.ValidString(password) {
		return &PasswordError{Reason: "invalid", Min: p.MinLength, Max: MaxPasswordLength}
	}
	n := utf8.RuneCountInString(password)
	if n < p.MinLength {
		return &PasswordError{Reason: "too_short", Min: p.MinLength, Max: MaxPasswordLength}
	}
	if n > MaxPasswordLength {
		return &PasswordError{Reason: "too_long", Min: p.MinLength, Max: MaxPasswordLength}
	}
	lower := strings.ToLower(password)
	if _, found := slices.BinarySearch(p.common, lower); found {
		return &PasswordError{Reason: "common", Min: p.MinLength, Max: MaxPasswordLength}
	}
	if email != "" {
		local, _, _ := strings.Cut(email, "@")
		if strings.Contains(lower, email) || (len(local) >= 4 && lower == local) {
			return &PasswordError{Reason: "contains_email", Min: p.MinLength, Max: MaxPasswordLength}
		}
	}
	return nil
}

// Argon2Params is an argon2id cost. The defaults are OWASP's minimum
// (m=19 MiB, t=2, p=1).
type Argon2Params struct {
	MemoryKiB   uint32
	Iterations  uint32
	Parallelism uint8
}

const (
	saltLen = 16
	keyLen  = 32
)

// Hasher hashes and verifies passwords with argon2id, encoded as PHC strings.
// Each hash needs MemoryKiB of memory, so concurrency is bounded: at most
// MaxConcurrent hashes run, at most MaxWaiting callers queue for a slot, and
// a queued caller gives up after MaxWait. Callers beyond that get ErrBusy at
// once, which turns a login flood into fast 503s instead of an OOM kill.
type Hasher struct {
	params     Argon2Params
	slots      chan struct{}
	waiting    atomic.Int64
	maxWaiting int64
	maxWait    time.Duration
	dummy      string
	outage     *Outage
}

// NewHasher returns a Hasher. maxConcurrent 0 means one per CPU.
func NewHasher(p Argon2Params, maxConcurrent, maxWaiting int, maxWait time.Duration) *Hasher {
	if maxConcurrent <= 0 {
		maxConcurrent = runtime.GOMAXPROCS(0)
	}
	h := &Hasher{
		params:     p,
		slots:      make(chan struct{}, maxConcurrent),
		maxWaiting: int64(maxWaiting),
		maxWait:    maxWait,
	}
	// The dummy hash lets a login for an unknown address cost exactly what a
	// real one costs (EN-1): same parameters, a password nobody can know.
	h.dummy = h.encode(randomBytes(saltLen), h.params, argon2.IDKey(randomBytes(32), randomBytes(saltLen), p.Iterations, p.MemoryKiB, p.Parallelism, keyLen))
	return h
}

// FailFastOn makes callers that would queue for a slot give up with
// ErrUnavailable while o says the database is down, instead of waiting
// behind sign-ins that hold their slots through database timeouts (see
// Outage). Call it once, before use.
func (h *Hasher) FailFastOn(o *Outage) { h.outage = o }

// Hash returns the PHC string of password with a fresh salt.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	release, err := h.acquire(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	salt := randomBytes(saltLen)
	key := argon2.IDKey([]byte(password), salt, h.params.Iterations, h.params.MemoryKiB, h.params.Parallelism, keyLen)
	return h.encode(salt, h.params, key), nil
}

// Verify reports whether password matches the PHC string encoded, and whether
// the hash should be replaced because the configured cost has risen. An empty
// or malformed encoded value is checked against a dummy hash, so the answer
// takes as long as a real check and is false.
func (h *Hasher) Verify(ctx context.Context, password, encoded string) (ok, rehash bool, err error) {
	p, salt, want, perr := decodePHC(encoded)
	if perr != nil {
		p, salt, want, _ = decodePHC(h.dummy)
	}
	release, err := h.acquire(ctx)
	if err != nil {
		return false, false, err
	}
	defer release()
	got := argon2.IDKey([]byte(password), salt, p.Iterations, p.MemoryKiB, p.Parallelism, uint32(len(want)))
	ok = subtle.ConstantTimeCompare(got, want) == 1 && perr == nil
	rehash = ok && (p.MemoryKiB < h.params.MemoryKiB || p.Iterations < h.params.Iterations || p.Parallelism < h.params.Parallelism)
	return ok, rehash, nil
}

// Burn spends one hash and discards it, for paths that must cost as much as
// a password check without having a hash to check against.
func (h *Hasher) Burn(ctx context.Context, password string) error {
	_, _, err := h.Verify(ctx, password, "")
	return err
}

// slotKey marks a context whose caller holds one of a Hasher's slots.
type slotKey struct{}

// Reserve takes a hashing slot for a whole password sign-in: its database
// reads and writes as well as its hash, with the same queue limits. Hash
// and Verify called with the returned context use that slot instead of
// taking another. Call release when the sign-in is done.
//
// Holding the slot across the sign-in lets at most MaxConcurrent sign-ins
// work at once, so the database work of one runs while the others hash,
// instead of waiting for a hashing goroutine to be preempted. Measured on
// 2 cores: login throughput went from ~85% to ~91% of the bare hash rate
// (docs/benchmarks.md).
func (h *Hasher) Reserve(ctx context.Context) (_ context.Context, release func(), err error) {
	if release, err = h.acquire(ctx); err != nil {
		return ctx, nil, err
	}
	return context.WithValue(ctx, slotKey{}, h), release, nil
}

func (h *Hasher) acquire(ctx context.Context) (release func(), err error) {
	if ctx.Value(slotKey{}) == h {
		return func() {}, nil // the caller's slot (Reserve)
	}
	select {
	case h.slots <- struct{}{}:
		return func() { <-h.slots }, nil
	default:
	}
	if h.outage.Down() {
		return nil, fmt.Errorf("wait for hash slot: %w", ErrUnavailable)
	}
	if h.waiting.Add(1) > h.maxWaiting {
		h.waiting.Add(-1)
		return nil, ErrBusy
	}
	defer h.waiting.Add(-1)
	t := time.NewTimer(h.maxWait)
	defer t.Stop()
	select {
	case h.slots <- struct{}{}:
		return func() { <-h.slots }, nil
	case <-t.C:
		return nil, ErrBusy
	case <-h.outage.Started():
		return nil, fmt.Errorf("wait for hash slot: %w", ErrUnavailable)
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for hash slot: %w", ctx.Err())
	}
}

var b64 = base64.RawStdEncoding

func (h *Hasher) encode(salt []byte, p Argon2Params, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Iterations, p.Parallelism, b64.EncodeToString(salt), b64.EncodeToString(key))
}

var errBadPHC = errors.New("malformed argon2id PHC string")

// decodePHC parses $argon2id$v=19$m=…,t=…,p=…$salt$hash, refusing costs far
// outside anything this service configures (the values come from our own
// database, but a bad row must not exhaust memory).
func decodePHC(s string) (p Argon2Params, salt, key []byte, err error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return p, nil, nil, errBadPHC
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Iterations, &p.Parallelism); err != nil {
		return p, nil, nil, errBadPHC
	}
	if p.MemoryKiB < 8 || p.MemoryKiB > 4<<20 || p.Iterations < 1 || p.Iterations > 100 || p.Parallelism < 1 {
		return p, nil, nil, errBadPHC
	}
	if salt, err = b64.DecodeString(parts[4]); err != nil || len(salt) < 8 {
		return p, nil, nil, errBadPHC
	}
	if key, err = b64.DecodeString(parts[5]); err != nil || len(key) < 16 {
		return p, nil, nil, errBadPHC
	}
	return p, salt, key, nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+); it crashes the program instead.
	return b
}
