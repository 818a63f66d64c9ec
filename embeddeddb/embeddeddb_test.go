package embeddeddb

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
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

// TestStartUnixSocketOnly: the embedded database listens on a socket in
// data_dir that only its owner can use, a stale socket left by a crash is
// replaced, and a second server on the same data_dir is refused while the
// first runs.
func TestStartUnixSocketOnly(t *testing.T) {
	dir, err := os.MkdirTemp("", "gh") // short: the socket must fit in data_dir
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	dbDir := filepath.Join(dir, "db")
	if err := os.MkdirAll(dbDir, 0o755); err != nil { // too open: Start tightens it
		t.Fatal(err)
	}
	// A stale socket, as a killed process leaves it.
	stale, err := net.Listen("unix", filepath.Join(dbDir, socketName))
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()

	s, err := Start(t.Context(), dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("start over a stale socket: %v", err)
	}
	defer s.Stop()
	sock := filepath.Join(dbDir, socketName)
	if want := "mongodb://" + url.QueryEscape(sock) + "/"; s.URI() != want {
		t.Errorf("URI %q; want %q", s.URI(), want)
	}
	for path, want := range map[string]fs.FileMode{dbDir: 0o700, sock: 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %o; want %o", path, got, want)
		}
	}
	if fi, _ := os.Stat(sock); fi.Mode()&fs.ModeSocket == 0 {
		t.Errorf("%s is not a socket", sock)
	}
	if _, err := Start(t.Context(), dir, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Errorf("second start on a served data_dir: %v; want refused", err)
	}
}

// TestStartLongDataDir: a data_dir too deep for a socket path gets its
// socket in a private temporary directory, removed on Stop.
func TestStartLongDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 100))
	s, err := Start(t.Context(), dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	if s.sockDir == "" {
		t.Fatalf("socket for %s in data_dir; want a private temporary directory", dir)
	}
	fi, err := os.Stat(s.sockDir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("socket dir %s: %v, mode %v; want 0700", s.sockDir, err, fi.Mode().Perm())
	}
	sockDir := s.sockDir
	s.Stop()
	if _, err := os.Stat(sockDir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket dir after Stop: %v; want removed", err)
	}
}

// TestSocketURIReachable: a data_dir whose path holds a "+" and a space is
// reached through the URI the driver is given.
func TestSocketURIReachable(t *testing.T) {
	dir, err := os.MkdirTemp("", "g+h ")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s, err := Start(t.Context(), dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	defer s.Stop()
	client, err := mongo.Connect(options.Client().ApplyURI(s.URI()).SetServerSelectionTimeout(5 * time.Second))
	if err != nil {
		t.Fatalf("connect %s: %v", s.URI(), err)
	}
	defer client.Disconnect(context.Background())
	if err := client.Ping(t.Context(), nil); err != nil {
		t.Fatalf("ping over %s: %v", s.URI(), err)
	}
}
