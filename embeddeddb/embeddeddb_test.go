package embeddeddb

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestSyncWAL checks the group commit's bookkeeping: a WAL file is synced
// when first seen and again while it is being written, and skipped once it
// has been quiet for a second after a sync.
func TestSyncWAL(t *testing.T) {
	dir := t.TempDir()
	wal := filepath.Join(dir, "gatehouse.sqlite-wal")
	if err := os.WriteFile(wal, []byte("frames"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "gatehouse.sqlite"), []byte("db"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &Server{dir: dir, log: slog.New(slog.DiscardHandler)}
	synced := map[string]time.Time{}

	s.syncWAL(synced)
	first, ok := synced[wal]
	if !ok || len(synced) != 1 {
		t.Fatalf("after the first pass: synced %v; want only %s", synced, wal)
	}

	// Quiet since well before the last sync: skipped.
	old := first.Add(-2 * time.Second)
	if err := os.Chtimes(wal, old, old); err != nil {
		t.Fatal(err)
	}
	s.syncWAL(synced)
	if synced[wal] != first {
		t.Fatalf("a quiet WAL file was synced again")
	}

	// Written since: synced again.
	now := time.Now()
	if err := os.Chtimes(wal, now, now); err != nil {
		t.Fatal(err)
	}
	s.syncWAL(synced)
	if !synced[wal].After(first) {
		t.Fatalf("a written WAL file was not synced again")
	}

	// A file removed meanwhile (SQLite deletes the WAL on close) is no error.
	if err := os.Remove(wal); err != nil {
		t.Fatal(err)
	}
	s.syncWAL(synced)
}
