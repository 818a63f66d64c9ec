package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/embeddeddb"
	"github.com/gatehouse/gatehouse/mongostore"
)

// sessionRig is phase 5's setup: a FerretDB (SQLite) run by this process,
// the gateway pointed at it, and sessions to check.
type sessionRig struct {
	db       *embeddeddb.Server
	store    *mongostore.Store
	coll     *mongo.Collection // only to count the sessions stored
	dir      string
	gw       *gateway
	ttl      string
	hot      []string // one signed-in cookie
	distinct []string // opt.distinct signed-in cookies
	ids      []string // their session ids
	userID   string
	stored   int
}

// phaseSessions measures the session checks as the sessions collection
// grows to each of opt.sessions: one hot session (the cache's best case),
// the same with the cache off (every check reads the database), and
// opt.distinct sessions round-robin (a realistic hit rate).
func (b *bench) phaseSessions(ctx context.Context) error {
	rig := &sessionRig{dir: filepath.Join(b.tmp, "phase5")}
	defer b.closeRig(rig)
	if err := b.prepareRig(ctx, rig); err != nil {
		return err
	}
	for _, size := range b.opt.Sessions {
		if err := b.seed(ctx, rig, size); err != nil {
			return err
		}
		var noop Result
		for _, ttl := range []string{"2s", "0s"} {
			if err := b.useTTL(ctx, rig, ttl); err != nil {
				return err
			}
			if ttl == "2s" {
				noop = b.sessionRow(ctx, rig, "/healthz", "", []string{""}, noop)
			}
			for _, p := range []string{"/api/v1/session", "/auth/check"} {
				b.sessionRow(ctx, rig, p, "hot, cache "+ttl, rig.hot, noop)
				b.sessionRow(ctx, rig, p, fmt.Sprintf("%d distinct, cache %s", len(rig.distinct), ttl), rig.distinct, noop)
			}
		}
	}
	return nil
}

// sessionRow measures GET path with the cookies round-robin against the
// no-op, and returns the no-op for the rows that follow.
func (b *bench) sessionRow(ctx context.Context, rig *sessionRig, path, label string, cookies []string, noop Result) Result {
	if len(cookies) > 1 {
		// A check writes last_seen_at when it is over a minute old: once a
		// minute per session in steady state, but here all the sessions would
		// come due together, at a moment that depends on the run. So set it to
		// now for every one, then prime the cache with one pass.
		if err := b.freshen(ctx, rig); err != nil {
			b.warnings = append(b.warnings, err.Error())
		}
		b.getLoad(ctx, rig.gw, path, cookies, time.Minute, (len(cookies)+b.opt.Clients-1)/b.opt.Clients)
	}
	r := b.getLoad(ctx, rig.gw, path, cookies, b.opt.Duration, 0)
	r.Phase, r.Sessions = "5 sessions stored", rig.stored
	r.Name = strings.TrimSpace(r.Name + " " + label)
	return b.compareNoop(r, noop)
}

// gatewayDatabase is the gateway's database name (mongodb.database's default).
const gatewayDatabase = "gatehouse"

// startDatabase starts a FerretDB in this process, on the embedded
// default's backend, for a gateway pointed at it with GATEHOUSE_MONGODB_URI.
func startDatabase(ctx context.Context, dir string) (*embeddeddb.Server, error) {
	return embeddeddb.StartTCP(ctx, dir, "127.0.0.1:0", slog.New(slog.DiscardHandler))
}

// indexIDs adds the _id index that the embedded default adds (main.go) and
// a URI-configured gateway does not. Call it once the gateway has created
// its collections.
func indexIDs(ctx context.Context, db *embeddeddb.Server) error {
	return db.IndexIDs(ctx, gatewayDatabase)
}

// prepareRig starts the database and the gateway, and signs users in.
func (b *bench) prepareRig(ctx context.Context, rig *sessionRig) error {
	var err error
	if rig.db, err = startDatabase(ctx, rig.dir); err != nil {
		return err
	}
	client, err := mongo.Connect(options.Client().ApplyURI(rig.db.URI()).SetTimeout(5 * time.Minute))
	if err != nil {
		return err
	}
	rig.coll = client.Database(gatewayDatabase).Collection("sessions")
	// Sessions are written through the gateway's own store, so the bench
	// never holds a copy of its schema.
	if rig.store, err = mongostore.Connect(ctx, rig.db.URI(), gatewayDatabase, 5*time.Minute); err != nil {
		return err
	}
	if err := b.useTTL(ctx, rig, "2s"); err != nil {
		return err
	}
	if err := indexIDs(ctx, rig.db); err != nil {
		return err
	}
	a := newAPI(rig.gw.URL, b.opt.Concurrency)
	users, err := a.createUsers(ctx, min(b.opt.Users, 4))
	if err != nil {
		return err
	}
	rig.hot, rig.userID = []string{users[0].Cookie}, users[0].ID
	b.logf("phase 5: signing in %d sessions", b.opt.Distinct)
	if rig.distinct, err = b.signIn(ctx, a, users, b.opt.Distinct); err != nil {
		return err
	}
	for _, c := range rig.distinct {
		id, err := a.sessionID(ctx, c)
		if err != nil {
			return err
		}
		rig.ids = append(rig.ids, id)
	}
	n, err := rig.coll.CountDocuments(ctx, bson.D{})
	rig.stored = int(n)
	return err
}

// freshen sets last_seen_at of the distinct sessions to now, in the
// database, so that none is due for its write during the next minute.
func (b *bench) freshen(ctx context.Context, rig *sessionRig) error {
	now := time.Now().UTC().Truncate(time.Millisecond)
	for _, id := range rig.ids {
		if err := rig.store.TouchSession(ctx, id, now); err != nil {
			return fmt.Errorf("freshen last_seen_at: %w", err)
		}
	}
	return nil
}

// useTTL (re)starts the rig's gateway with session.cache_ttl = ttl.
func (b *bench) useTTL(ctx context.Context, rig *sessionRig, ttl string) error {
	if rig.gw != nil && rig.ttl == ttl {
		return nil
	}
	if rig.gw != nil {
		b.stopGateway(rig.gw)
		rig.gw = nil
	}
	gw, err := startGateway(ctx, b.bin, rig.dir, map[string]string{
		"GATEHOUSE_MONGODB_URI":       rig.db.URI(),
		"GATEHOUSE_SESSION_CACHE_TTL": ttl,
	})
	if err != nil {
		return err
	}
	rig.gw, rig.ttl = gw, ttl
	return nil
}

func (b *bench) closeRig(rig *sessionRig) {
	if rig.gw != nil {
		b.stopGateway(rig.gw)
	}
	if rig.coll != nil {
		_ = rig.coll.Database().Client().Disconnect(context.Background())
	}
	if rig.store != nil {
		_ = rig.store.Close(context.Background())
	}
	if rig.db != nil {
		rig.db.Stop()
	}
}

// signIn logs the users in n times in total and returns the cookies.
func (b *bench) signIn(ctx context.Context, a *api, users []user, n int) ([]string, error) {
	cookies := make([]string, n)
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for range b.opt.Concurrency {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n && ctx.Err() == nil; i = int(next.Add(1)) - 1 {
				u := users[i%len(users)]
				status, cookie, err := a.login(ctx, u.Email, u.Password)
				if err == nil && (status != http.StatusOK || cookie == "") {
					err = fmt.Errorf("login: status %d", status)
				}
				mu.Lock()
				cookies[i] = cookie
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return cookies, firstErr
}

// seed inserts session documents until the collection holds size of them.
func (b *bench) seed(ctx context.Context, rig *sessionRig, size int) error {
	const batch = 1000
	if size <= rig.stored {
		return nil
	}
	start, n := time.Now(), size-rig.stored
	now := start.UTC().Truncate(time.Millisecond)
	docs := make([]accounts.Session, 0, batch)
	for done := 0; done < n; done += len(docs) {
		docs = docs[:0]
		for range min(batch, n-done) {
			docs = append(docs, accounts.Session{
				ID: randomB64(16), SecretHash: randomHash(), UserID: rig.userID,
				CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(720 * time.Hour),
				UserAgent: "gatehouse-bench", IP: "127.0.0.1",
			})
		}
		if err := rig.store.InsertSessions(ctx, docs); err != nil {
			return fmt.Errorf("seed sessions: %w", err)
		}
		if (done+len(docs))%100_000 == 0 {
			b.logf("phase 5: seeded %d of %d", done+len(docs), n)
		}
	}
	rig.stored = size
	took := time.Since(start)
	b.add(Result{Phase: "5 sessions stored", Name: "seed: InsertMany, batches of 1000", Sessions: size, Workers: 1,
		Count: int64(n), Seconds: took.Seconds(), Rate: float64(n) / took.Seconds(), Status: map[string]int64{"inserted": int64(n)},
		Note: fmt.Sprintf("database files now %.0f MiB", dirMiB(filepath.Join(rig.dir, "db")))})
	b.logf("phase 5: seeded %d sessions in %s", n, took.Round(time.Millisecond))
	return nil
}

// dirMiB is the size of the files in dir.
func dirMiB(dir string) float64 {
	var total int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if info, err := d.Info(); err == nil {
			total += info.Size()
		}
		return nil
	})
	return float64(total) / (1 << 20)
}

func randomB64(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func randomHash() string {
	sum := sha256.Sum256([]byte(randomB64(32)))
	return hex.EncodeToString(sum[:])
}
