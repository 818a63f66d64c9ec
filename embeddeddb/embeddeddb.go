// Package embeddeddb runs the embedded database: FerretDB v1 with its SQLite
// backend, in-process, so that `go run .` works on a machine with nothing
// installed. Gatehouse talks to it with the same mongo-driver code it uses
// for a real MongoDB, over a Unix socket inside data_dir that only the
// gateway's user can open: FerretDB has no authentication, and a loopback
// TCP port would let any local user rewrite a password hash.
package embeddeddb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	_ "modernc.org/sqlite" // the SQLite driver FerretDB itself uses
)

var newMu sync.Mutex

// Server is a running embedded database.
type Server struct {
	dir    string
	uri    string
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}
	// sockDir is a private directory made for the socket when dir's path
	// is too long for one; removed on Stop.
	sockDir string
}

// socketName is the socket's file name. The driver takes a host ending in
// ".sock" as a Unix socket path.
const socketName = "ferretdb.sock"

// maxSocketPath is the longest Unix socket path (sun_path is 108 bytes on
// Linux, 104 on the BSDs, including the terminating NUL).
const maxSocketPath = 103

// Start runs FerretDB with its files under dir/db, reachable only through a
// Unix socket in that directory (mode 0700 directory, 0600 socket). When the
// path would be too long for a socket, the socket goes into a fresh private
// directory under the system's temporary directory instead. FerretDB logs
// only errors: at Info it narrates every connection.
func Start(ctx context.Context, dir string, logger *slog.Logger) (*Server, error) {
	return start(ctx, dir, "", logger)
}

// StartTCP runs FerretDB like Start but on a loopback TCP address ("127.0.0.1:0"
// for any free port), for tests and benchmarks that share one database
// between processes or put a proxy in front of it. The gateway never uses it.
func StartTCP(ctx context.Context, dir, addr string, logger *slog.Logger) (*Server, error) {
	return start(ctx, dir, addr, logger)
}

func start(ctx context.Context, dir, tcpAddr string, logger *slog.Logger) (*Server, error) {
	dbDir, err := filepath.Abs(filepath.Join(dir, "db"))
	if err != nil {
		return nil, fmt.Errorf("embedded database dir: %w", err)
	}
	if err := os.MkdirAll(dbDir, 0o700); err != nil {
		return nil, fmt.Errorf("create embedded database dir: %w", err)
	}
	// An existing directory keeps its mode through MkdirAll; the files and
	// the socket in it are the gateway's alone.
	if err := os.Chmod(dbDir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded database dir: %w", err)
	}
	s := &Server{dir: dbDir, log: logger}
	listener := ferretdb.ListenerConfig{TCP: tcpAddr}
	var sock string
	if tcpAddr == "" {
		if sock, err = s.socketPath(); err != nil {
			return nil, err
		}
		listener.Unix = sock
	}
	quiet := slog.New(levelFilter{Handler: logger.Handler(), min: slog.LevelError}).With("component", "ferretdb")
	// ferretdb.New writes a package-level variable (its version info), so
	// two servers starting at once in one process would race.
	newMu.Lock()
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  listener,
		Handler:   "sqlite",
		SQLiteURL: (&url.URL{Scheme: "file", Opaque: dbDir + "/", RawQuery: "_pragma=synchronous(normal)"}).String(),
		Logger:    quiet,
	})
	newMu.Unlock()
	if err != nil {
		s.removeSockDir()
		return nil, fmt.Errorf("start embedded database: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel, s.done = cancel, make(chan struct{})
	go func() {
		defer close(s.done)
		var wg sync.WaitGroup
		wg.Go(func() { s.groupCommit(runCtx) })
		_ = f.Run(runCtx)
		wg.Wait()
		s.syncWAL(nil) // SQLite syncs what it checkpoints on close; this is for the rest
		s.removeSockDir()
	}()
	uri := f.MongoDBURI() // blocks until the listener is up
	if sock == "" {
		s.uri = uri
		return s, nil
	}
	// The socket is created with the process's umask; nobody else may
	// connect (the directory is 0700 too).
	if err := os.Chmod(sock, 0o600); err != nil {
		s.Stop()
		return nil, fmt.Errorf("embedded database socket: %w", err)
	}
	// The driver unescapes the host with QueryUnescape: PathEscape would
	// leave a "+" that it then reads as a space.
	s.uri = "mongodb://" + url.QueryEscape(sock) + "/"
	return s, nil
}

// socketPath returns where the socket goes, removing a stale socket left
// by a process that did not stop cleanly (a live one would refuse the
// second start).
func (s *Server) socketPath() (string, error) {
	sock := filepath.Join(s.dir, socketName)
	// A colon in the path would be read by the driver as a port.
	if len(sock) > maxSocketPath || strings.Contains(sock, ":") {
		d, err := os.MkdirTemp("", "gatehouse-db-")
		if err != nil {
			return "", fmt.Errorf("embedded database socket dir: %w", err)
		}
		s.sockDir = d // MkdirTemp makes it 0700
		sock = filepath.Join(d, socketName)
		if len(sock) > maxSocketPath {
			s.removeSockDir()
			return "", fmt.Errorf("embedded database socket path %s is too long (TMPDIR)", sock)
		}
	}
	fi, err := os.Lstat(sock)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return sock, nil
	case err != nil:
		return "", fmt.Errorf("embedded database socket: %w", err)
	case fi.Mode()&fs.ModeSocket == 0:
		return "", fmt.Errorf("embedded database socket: %s exists and is not a socket", sock)
	}
	if c, err := net.Dial("unix", sock); err == nil {
		c.Close()
		return "", fmt.Errorf("embedded database socket %s: another process serves this data_dir", sock)
	}
	if err := os.Remove(sock); err != nil {
		return "", fmt.Errorf("remove stale embedded database socket: %w", err)
	}
	return sock, nil
}

func (s *Server) removeSockDir() {
	if s.sockDir != "" {
		_ = os.RemoveAll(s.sockDir)
	}
}

// URI is the mongodb:// URI of the server.
func (s *Server) URI() string { return s.uri }

// Stop closes the listener, every connection and the SQLite files.
func (s *Server) Stop() {
	s.cancel()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
	}
}

// The embedded database commits in groups, as MongoDB's journal does. SQLite
// runs in WAL mode with synchronous=NORMAL, so a commit writes the WAL file
// without waiting for the disk, and groupCommit fsyncs the WAL files every
// groupCommitInterval. A crash of the process loses nothing (its writes are
// in the kernel); a crash of the host or a power loss can lose the writes of
// the last interval, the same window as a standalone MongoDB's default
// journal commit interval. SQLite still syncs before and after each
// checkpoint, so the files stay consistent. One fsync per commit (SQLite's
// default) cost 4–6 points of login throughput against the argon2id floor
// on a 2-core VM (docs/benchmarks.md).
const groupCommitInterval = 100 * time.Millisecond

// groupCommit fsyncs the WAL files every groupCommitInterval until ctx ends.
func (s *Server) groupCommit(ctx context.Context) {
	t := time.NewTicker(groupCommitInterval)
	defer t.Stop()
	synced := map[string]time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.syncWAL(synced)
		}
	}
}

// syncWAL fsyncs every WAL file written since its last sync (nil: every WAL
// file). synced maps a file to when its last sync began. File times are
// coarse (a few ms), so a file stays due for a second after its last write.
func (s *Server) syncWAL(synced map[string]time.Time) {
	files, _ := filepath.Glob(filepath.Join(s.dir, "*.sqlite-wal"))
	for _, name := range files {
		fi, err := os.Stat(name)
		if err != nil {
			continue // checkpointed and removed meanwhile
		}
		if last, ok := synced[name]; ok && fi.ModTime().Before(last.Add(-time.Second)) {
			continue
		}
		start := time.Now()
		if err := syncFile(name); err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				s.log.Error("sync embedded database", "file", filepath.Base(name), "error", err)
			}
			continue
		}
		if synced != nil {
			synced[name] = start
		}
	}
}

func syncFile(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}

// IndexIDs adds, to every collection of database, the SQLite index that
// FerretDB's own queries can use for lookups by _id.
//
// FerretDB v1.24 creates its _id index on the expression
// `_ferretdb_sjson->"_id"` but filters with `_ferretdb_sjson->'$._id'`;
// SQLite matches expression indexes textually, so every lookup by _id scans
// the table (measured: 23 ms at 10k documents, 220 ms at 100k). An index on
// the exact expression the queries use makes them O(log n) (0.5 ms at 100k).
// FerretDB does not know about the extra index and does not need to: SQLite
// maintains it and drops it with its table. Call after the collections exist.
func (s *Server) IndexIDs(ctx context.Context, database string) error {
	db, err := sql.Open("sqlite", (&url.URL{
		Scheme:   "file",
		Opaque:   filepath.Join(s.dir, database+".sqlite"),
		RawQuery: "_pragma=busy_timeout(10000)",
	}).String())
	if err != nil {
		return fmt.Errorf("open embedded database file: %w", err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT table_name FROM _ferretdb_collections`)
	if err != nil {
		return fmt.Errorf("list embedded tables: %w", err)
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return fmt.Errorf("list embedded tables: %w", err)
		}
		tables = append(tables, t)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("list embedded tables: %w", err)
	}
	for _, t := range tables {
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (_ferretdb_sjson->'$._id')`, t+"_gatehouse_id", t)
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("index %s: %w", t, err)
		}
	}
	return nil
}

// levelFilter drops records below min.
type levelFilter struct {
	slog.Handler
	min slog.Level
}

func (h levelFilter) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h levelFilter) WithAttrs(a []slog.Attr) slog.Handler {
	return levelFilter{Handler: h.Handler.WithAttrs(a), min: h.min}
}

func (h levelFilter) WithGroup(name string) slog.Handler {
	return levelFilter{Handler: h.Handler.WithGroup(name), min: h.min}
}
