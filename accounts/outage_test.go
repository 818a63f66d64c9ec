package accounts

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestOutageReports(t *testing.T) {
	var o Outage
	started := o.Started()
	o.Report(nil)
	o.Report(ErrNotFound)
	if o.Down() {
		t.Fatal("down after answers; want up")
	}
	o.Report(fmt.Errorf("%w: %w", ErrUnavailable, context.Canceled))
	if o.Down() {
		t.Fatal("down after a caller hung up; want up")
	}
	o.Report(fmt.Errorf("find: %w", ErrUnavailable))
	if !o.Down() {
		t.Fatal("up after an unavailable error; want down")
	}
	select {
	case <-started:
	default:
		t.Fatal("the channel taken before the outage is still open; want closed")
	}
	select {
	case <-o.Started():
	default:
		t.Fatal("Started during an outage is open; want closed")
	}
	o.Report(ErrUnavailable) // twice: no double close
	o.Report(nil)
	if o.Down() {
		t.Fatal("down after an answer; want up")
	}
	select {
	case <-o.Started():
		t.Fatal("Started after recovery is closed; want open")
	default:
	}
	var nilOutage *Outage
	nilOutage.Report(ErrUnavailable)
	if nilOutage.Down() || nilOutage.Started() != nil {
		t.Error("a nil Outage reports an outage; want never down")
	}
}

// TestHasherFailsFastInOutage: while the database is down, a caller who
// would queue for a hashing slot gets ErrUnavailable at once, and one
// already queued gives up when the outage is seen.
func TestHasherFailsFastInOutage(t *testing.T) {
	h := NewHasher(Argon2Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1}, 1, 10, time.Hour)
	var o Outage
	h.FailFastOn(&o)
	_, release, err := h.Reserve(t.Context())
	if err != nil {
		t.Fatalf("reserve: %v", err)
	}

	queued := make(chan error, 1)
	go func() {
		_, err := h.Hash(t.Context(), "a passphrase")
		queued <- err
	}()
	for h.waiting.Load() == 0 {
		time.Sleep(time.Millisecond) // until the goroutine is queued
	}
	o.Report(ErrUnavailable)
	if err := <-queued; !errors.Is(err, ErrUnavailable) {
		t.Errorf("queued hash when the outage began: %v; want ErrUnavailable", err)
	}
	if _, err := h.Hash(t.Context(), "a passphrase"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("hash without a free slot during the outage: %v; want ErrUnavailable", err)
	}
	release()
	if _, err := h.Hash(t.Context(), "a passphrase"); err != nil {
		t.Errorf("hash with a free slot during the outage: %v; want it to run (it probes the database)", err)
	}
}
