package accounts

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
)

// Outage tracks whether the database is known to be unreachable: the store
// reports the outcome of its operations, and the last one decides. Password
// work uses it to fail fast (RL-1): a sign-in holds a hashing slot across its
// database calls, so during an outage the slots are held by requests each
// waiting out the database timeout, and without this the requests queued
// behind them would answer only after one or two timeouts more, or with
// "overloaded" once the queue's own limit passed. With it, a request that
// finds no free slot while the database is down answers 503 unavailable at
// once, and one already queued gives up the moment an outage is seen.
//
// The zero value is ready to use; a nil *Outage reports nothing and is
// never down.
type Outage struct {
	down atomic.Bool
	mu   sync.Mutex
	// ch is closed when the database is found down; a new one replaces it
	// when the database answers again.
	ch chan struct{}
}

// Report records the outcome of one database operation: an error that wraps
// ErrUnavailable marks the database down, anything else (success, not found,
// a duplicate key) shows it answering. A context cancelled by its caller (a
// client that hung up) says nothing about the database.
func (o *Outage) Report(err error) {
	if o == nil {
		return
	}
	down := errors.Is(err, ErrUnavailable)
	if down && errors.Is(err, context.Canceled) {
		return
	}
	if o.down.Load() == down {
		return // the common case, without the lock
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.down.Load() == down {
		return
	}
	o.down.Store(down)
	if !down {
		o.ch = nil // signal makes a fresh, open one when asked
		return
	}
	if o.ch == nil {
		o.ch = make(chan struct{})
	}
	close(o.ch) // open until now: the database was up

}

// Down reports whether the last database operation found it unreachable.
func (o *Outage) Down() bool { return o != nil && o.down.Load() }

// Started returns a channel that is closed when the database is found down
// (already closed if it is down now). A nil *Outage returns nil, which
// blocks forever in a select.
func (o *Outage) Started() <-chan struct{} {
	if o == nil {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.signal()
}

// signal returns the current channel, creating it; o.mu must be held.
func (o *Outage) signal() chan struct{} {
	if o.ch == nil {
		o.ch = make(chan struct{})
		if o.down.Load() {
			close(o.ch)
		}
	}
	return o.ch
}
