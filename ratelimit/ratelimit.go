// Package ratelimit is an in-memory rate limiter (GCRA, the token-bucket
// algorithm expressed as one timestamp per key). It is per instance by
// design: it absorbs bursts cheaply on the request path, while the limits
// that must hold across instances (login lockout, mail quota) live in the
// database.
package ratelimit

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

const shards = 32

// Limiter allows Rate events per Period per key, with bursts up to Burst.
type Limiter struct {
	interval time.Duration // time one event "costs"
	burst    time.Duration // how far ahead of now a key may run
	now      func() time.Time
	seed     maphash.Seed
	shards   [shards]shard
	// lastSweep is when idle keys were last forgotten (unix nanoseconds).
	lastSweep atomic.Int64
}

type shard struct {
	mu  sync.Mutex
	tat map[string]time.Time // theoretical arrival time per key
}

// New returns a limiter of n events per period per key, allowing all n at
// once (burst n). now may be nil.
func New(n int, period time.Duration, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	l := &Limiter{
		interval: period / time.Duration(max(n, 1)),
		now:      now,
		seed:     maphash.MakeSeed(),
	}
	l.burst = l.interval * time.Duration(max(n, 1)-1)
	for i := range l.shards {
		l.shards[i].tat = make(map[string]time.Time)
	}
	return l
}

// Allow consumes one event for key. When refused it returns how long until
// the next event would be allowed.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	now := l.now()
	l.maybeSweep(now)
	s := &l.shards[maphash.String(l.seed, key)%shards]
	s.mu.Lock()
	defer s.mu.Unlock()
	tat := s.tat[key]
	if tat.Before(now) {
		tat = now
	}
	if wait := tat.Sub(now) - l.burst; wait > 0 {
		return false, wait
	}
	s.tat[key] = tat.Add(l.interval)
	return true, 0
}

// sweepEvery is how often idle keys are forgotten.
const sweepEvery = time.Minute

// maybeSweep forgets keys whose bucket has refilled completely, at most once
// per sweepEvery, bounding memory by the keys active within that time.
func (l *Limiter) maybeSweep(now time.Time) {
	last := l.lastSweep.Load()
	if now.UnixNano()-last < int64(sweepEvery) || !l.lastSweep.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		for k, t := range s.tat {
			if t.Before(now) {
				delete(s.tat, k)
			}
		}
		s.mu.Unlock()
	}
}
