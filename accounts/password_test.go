package accounts

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestHasherReserve checks the slot a sign-in holds across its work: hashes
// made with the reserved context use it (they neither wait for a second
// slot nor are turned away), other callers find it taken, and release gives
// it back.
func TestHasherReserve(t *testing.T) {
	// One slot, nobody may queue: a taken slot means ErrBusy at once.
	h := NewHasher(Argon2Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1}, 1, 0, time.Second)
	ctx, release, err := h.Reserve(t.Context())
	if err != nil {
		t.Fatalf("reserve: %v", err)
	}
	hash, err := h.Hash(ctx, "a passphrase")
	if err != nil {
		t.Fatalf("hash with the reserved slot: %v", err)
	}
	if ok, _, err := h.Verify(ctx, "a passphrase", hash); !ok || err != nil {
		t.Errorf("verify with the reserved slot: %v, %v; want true, nil", ok, err)
	}
	if _, _, err := h.Verify(t.Context(), "a passphrase", hash); !errors.Is(err, ErrBusy) {
		t.Errorf("verify by another caller while the slot is reserved: %v; want ErrBusy", err)
	}
	if _, _, err := h.Reserve(context.Background()); !errors.Is(err, ErrBusy) {
		t.Errorf("second reservation: %v; want ErrBusy", err)
	}
	release()
	if ok, _, err := h.Verify(t.Context(), "a passphrase", hash); !ok || err != nil {
		t.Errorf("verify after release: %v, %v; want true, nil", ok, err)
	}

	// A context reserved on another hasher holds no slot of this one.
	other := NewHasher(Argon2Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1}, 1, 0, time.Second)
	octx, orelease, err := other.Reserve(t.Context())
	if err != nil {
		t.Fatalf("reserve on the other hasher: %v", err)
	}
	defer orelease()
	_, release, err = h.Reserve(t.Context())
	if err != nil {
		t.Fatalf("reserve again: %v", err)
	}
	defer release()
	if _, err := h.Hash(octx, "a passphrase"); !errors.Is(err, ErrBusy) {
		t.Errorf("hash with another hasher's slot while this one's is taken: %v; want ErrBusy", err)
	}
}
