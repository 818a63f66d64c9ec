package mongostore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/embeddeddb"
	"github.com/gatehouse/gatehouse/internal/testkit"
	"github.com/gatehouse/gatehouse/mail"
)

// Contract tests of the Store: the promises accounts.Store and
// mail.OutboxStore document, checked against the embedded FerretDB and, when
// GATEHOUSE_TEST_MONGODB_URI is set, against that MongoDB (a fresh database
// per test).

// testTimeout is the store's operation bound in these tests: generous, since
// the machine may be busy; TestStoreUnavailable uses 1s.
const testTimeout = 10 * time.Second

// testServer is a database server for one test.
type testServer struct {
	uri string
	// dir and srv are set for the embedded server, which a test can stop
	// and start again on the same files.
	dir string
	srv *embeddeddb.Server
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// startServer returns the real MongoDB of GATEHOUSE_TEST_MONGODB_URI, or a
// new embedded server stopped when the test ends.
func startServer(tb testing.TB) *testServer {
	tb.Helper()
	if uri := os.Getenv(testkit.MongoEnv); uri != "" {
		return &testServer{uri: uri}
	}
	ts := &testServer{dir: tb.TempDir()}
	ts.start(tb)
	return ts
}

func (ts *testServer) embedded() bool { return ts.dir != "" }

// startMu serializes embedded starts: ferretdb.New writes a package-level
// variable (version.Get().Package), so concurrent starts are a data race
// under -race.
var startMu sync.Mutex

func (ts *testServer) start(tb testing.TB) {
	tb.Helper()
	startMu.Lock()
	srv, err := embeddeddb.StartTCP(context.Background(), ts.dir, "127.0.0.1:0", discard())
	startMu.Unlock()
	if err != nil {
		tb.Fatalf("start embedded database: %v", err)
	}
	tb.Cleanup(srv.Stop)
	ts.srv, ts.uri = srv, srv.URI()
}

// open connects a store to database on uri, prepares the schema as main does
// and closes the store when the test ends.
func (ts *testServer) open(tb testing.TB, uri, database string, timeout time.Duration) *Store {
	tb.Helper()
	s, err := Connect(context.Background(), uri, database, timeout)
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		_ = s.Close(ctx)
	})
	if err := s.EnsureSchema(tb.Context()); err != nil {
		tb.Fatalf("ensure schema: %v", err)
	}
	if ts.embedded() {
		if err := ts.srv.IndexIDs(tb.Context(), database); err != nil {
			tb.Fatalf("index ids: %v", err)
		}
	}
	return s
}

// newStore returns a store on a fresh database.
func newStore(tb testing.TB) *Store {
	tb.Helper()
	ts := startServer(tb)
	return ts.open(tb, ts.uri, testkit.NewDatabaseName(), testTimeout)
}

// now is a time as the database keeps it: UTC, millisecond precision.
func now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

// race runs f(0)…f(n-1) in n goroutines released together.
func race(n int, f func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			f(i)
		})
	}
	close(start)
	wg.Wait()
}

func wantErr(tb testing.TB, what string, err, want error) {
	tb.Helper()
	if !errors.Is(err, want) {
		tb.Errorf("%s: got error %v; want %v", what, err, want)
	}
}

func noErr(tb testing.TB, what string, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatalf("%s: %v", what, err)
	}
}

func TestStoreUsers(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	at := now()
	u := accounts.User{ID: "user-1", Email: "ann@example.com", PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA", CreatedAt: at, UpdatedAt: at, PasswordChangedAt: at}

	noErr(t, "create user", s.CreateUser(ctx, u))
	wantErr(t, "create the same user again", s.CreateUser(ctx, u), accounts.ErrConflict)
	other := u
	other.ID = "user-2"
	wantErr(t, "create another user with the same email", s.CreateUser(ctx, other), accounts.ErrConflict)

	got, err := s.User(ctx, u.ID)
	noErr(t, "user", err)
	if diff := cmp.Diff(u, got); diff != "" {
		t.Errorf("user round trip (-want +got):\n%s", diff)
	}
	_, err = s.User(ctx, "no-such-user")
	wantErr(t, "unknown user", err, accounts.ErrNotFound)

	social := accounts.User{ID: "user-3", Email: "bob@example.com", CreatedAt: at, UpdatedAt: at}
	noErr(t, "create a user without password", s.CreateUser(ctx, social))
	if got, err := s.User(ctx, social.ID); err != nil || got.HasPassword() {
		t.Errorf("user without password: has password %v, err %v; want false, nil", got.HasPassword(), err)
	}

	later := at.Add(time.Minute)
	wantErr(t, "set password of unknown user", s.SetPassword(ctx, "no-such-user", "h", later), accounts.ErrNotFound)
	noErr(t, "set password", s.SetPassword(ctx, u.ID, "hash-2", later))
	got, err = s.User(ctx, u.ID)
	noErr(t, "user", err)
	if got.PasswordHash != "hash-2" || !got.PasswordChangedAt.Equal(later) || !got.UpdatedAt.Equal(later) {
		t.Errorf("after SetPassword: hash %q, changed %v, updated %v; want hash-2 and %v", got.PasswordHash, got.PasswordChangedAt, got.UpdatedAt, later)
	}

	wantErr(t, "replace a hash that is no longer stored", s.ReplacePasswordHash(ctx, u.ID, u.PasswordHash, "hash-3"), accounts.ErrNotFound)
	noErr(t, "replace the stored hash", s.ReplacePasswordHash(ctx, u.ID, "hash-2", "hash-3"))
	if got, _ := s.User(ctx, u.ID); got.PasswordHash != "hash-3" {
		t.Errorf("after ReplacePasswordHash: hash %q; want hash-3", got.PasswordHash)
	}
}

func TestStoreEmailClaims(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	c := accounts.EmailClaim{Email: "ann@example.com", UserID: "user-1", ClaimedAt: now()}

	noErr(t, "claim", s.ClaimEmail(ctx, c))
	wantErr(t, "claim again for another user", s.ClaimEmail(ctx, accounts.EmailClaim{Email: c.Email, UserID: "user-2", ClaimedAt: now()}), accounts.ErrConflict)
	got, err := s.EmailClaim(ctx, c.Email)
	noErr(t, "email claim", err)
	if diff := cmp.Diff(c, got); diff != "" {
		t.Errorf("claim round trip (-want +got):\n%s", diff)
	}
	_, err = s.EmailClaim(ctx, "nobody@example.com")
	wantErr(t, "unknown claim", err, accounts.ErrNotFound)

	noErr(t, "release by another user", s.ReleaseEmail(ctx, c.Email, "user-2"))
	if _, err := s.EmailClaim(ctx, c.Email); err != nil {
		t.Errorf("claim after another user's release: %v; want it kept", err)
	}
	noErr(t, "release by the owner", s.ReleaseEmail(ctx, c.Email, c.UserID))
	_, err = s.EmailClaim(ctx, c.Email)
	wantErr(t, "claim after release", err, accounts.ErrNotFound)
	noErr(t, "release again", s.ReleaseEmail(ctx, c.Email, c.UserID))

	const n = 20
	var won atomic.Int64
	errs := make([]error, n)
	race(n, func(i int) {
		err := s.ClaimEmail(ctx, accounts.EmailClaim{Email: "race@example.com", UserID: fmt.Sprintf("user-%d", i), ClaimedAt: now()})
		if err == nil {
			won.Add(1)
		} else if !errors.Is(err, accounts.ErrConflict) {
			errs[i] = err
		}
	})
	if got := won.Load(); got != 1 {
		t.Errorf("%d of %d concurrent claims of one address succeeded; want 1", got, n)
	}
	if err := errors.Join(errs...); err != nil {
		t.Errorf("concurrent claims: %v; want only ErrConflict for the losers", err)
	}
}

func TestStoreTokens(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	at := now()
	tok := accounts.Token{Hash: "h1", Purpose: accounts.PurposeVerify, Subject: "ann@example.com", Email: "ann@example.com",
		UserID: "user-1", PasswordHash: "pw-hash", CreatedAt: at, ExpiresAt: at.Add(time.Hour)}

	noErr(t, "insert token", s.InsertToken(ctx, tok))
	wantErr(t, "insert the same hash again", s.InsertToken(ctx, tok), accounts.ErrConflict)
	got, err := s.Token(ctx, tok.Hash)
	noErr(t, "token", err)
	if diff := cmp.Diff(tok, got); diff != "" {
		t.Errorf("token round trip (-want +got):\n%s", diff)
	}
	_, err = s.Token(ctx, "no-such-hash")
	wantErr(t, "unknown token", err, accounts.ErrNotFound)

	const n = 20
	var won atomic.Int64
	var failed atomic.Value
	race(n, func(int) {
		ok, err := s.DeleteToken(ctx, tok.Hash)
		if err != nil {
			failed.Store(err)
		}
		if ok {
			won.Add(1)
		}
	})
	if err := failed.Load(); err != nil {
		t.Errorf("concurrent delete: %v", err)
	}
	if got := won.Load(); got != 1 {
		t.Errorf("%d of %d concurrent deletes of one token reported true; want exactly 1 (TK-2)", got, n)
	}
	_, err = s.Token(ctx, tok.Hash)
	wantErr(t, "deleted token", err, accounts.ErrNotFound)
}

func TestStoreTokenHeads(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	exp := now().Add(time.Hour)
	const subject = "ann@example.com"

	_, err := s.TokenHead(ctx, accounts.PurposeVerify, subject)
	wantErr(t, "head before any token", err, accounts.ErrNotFound)
	prev, err := s.SetTokenHead(ctx, accounts.PurposeVerify, subject, "h1", exp)
	noErr(t, "set first head", err)
	if prev != "" {
		t.Errorf("first SetTokenHead returned %q; want \"\"", prev)
	}
	prev, err = s.SetTokenHead(ctx, accounts.PurposeVerify, subject, "h2", exp)
	noErr(t, "set second head", err)
	if prev != "h1" {
		t.Errorf("second SetTokenHead returned %q; want h1", prev)
	}
	// Purposes have separate heads (TK-4).
	prev, err = s.SetTokenHead(ctx, accounts.PurposeReset, subject, "r1", exp)
	noErr(t, "set reset head", err)
	if prev != "" {
		t.Errorf("first reset SetTokenHead returned %q; want \"\"", prev)
	}
	if head, err := s.TokenHead(ctx, accounts.PurposeVerify, subject); err != nil || head != "h2" {
		t.Errorf("verify head = %q, %v; want h2", head, err)
	}
	got, err := s.DeleteTokenHead(ctx, accounts.PurposeVerify, subject)
	if err != nil || got != "h2" {
		t.Errorf("DeleteTokenHead = %q, %v; want h2", got, err)
	}
	got, err = s.DeleteTokenHead(ctx, accounts.PurposeVerify, subject)
	if err != nil || got != "" {
		t.Errorf("DeleteTokenHead again = %q, %v; want \"\", nil", got, err)
	}
	_, err = s.TokenHead(ctx, accounts.PurposeVerify, subject)
	wantErr(t, "head after delete", err, accounts.ErrNotFound)
	if head, err := s.TokenHead(ctx, accounts.PurposeReset, subject); err != nil || head != "r1" {
		t.Errorf("reset head after deleting the verify head = %q, %v; want r1", head, err)
	}
}

func TestStoreSessions(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	at := now()
	mk := func(id, user string, age time.Duration) accounts.Session {
		return accounts.Session{ID: id, SecretHash: "secret-" + id, UserID: user, CreatedAt: at.Add(-age), LastSeenAt: at.Add(-age),
			ExpiresAt: at.Add(time.Hour), UserAgent: "test", IP: "127.0.0.1"}
	}
	a1, a2, a3 := mk("a1", "ann", 3*time.Minute), mk("a2", "ann", 2*time.Minute), mk("a3", "ann", time.Minute)
	b1 := mk("b1", "bob", time.Minute)
	for _, x := range []accounts.Session{a1, a2, a3, b1} {
		noErr(t, "insert session "+x.ID, s.InsertSession(ctx, x))
	}
	wantErr(t, "insert a duplicate id", s.InsertSession(ctx, a1), accounts.ErrConflict)

	got, err := s.Session(ctx, a1.ID)
	noErr(t, "session", err)
	if diff := cmp.Diff(a1, got); diff != "" {
		t.Errorf("session round trip (-want +got):\n%s", diff)
	}
	_, err = s.Session(ctx, "no-such-session")
	wantErr(t, "unknown session", err, accounts.ErrNotFound)

	noErr(t, "touch", s.TouchSession(ctx, a1.ID, at))
	if got, _ := s.Session(ctx, a1.ID); !got.LastSeenAt.Equal(at) {
		t.Errorf("after TouchSession: last seen %v; want %v", got.LastSeenAt, at)
	}

	ids := func(list []accounts.Session) []string {
		out := []string{}
		for _, x := range list {
			out = append(out, x.ID)
		}
		return out
	}
	list, err := s.UserSessions(ctx, "ann")
	noErr(t, "user sessions", err)
	if diff := cmp.Diff([]string{"a3", "a2", "a1"}, ids(list)); diff != "" {
		t.Errorf("UserSessions, newest first (-want +got):\n%s", diff)
	}

	n, err := s.DeleteUserSessions(ctx, "ann", a2.ID)
	noErr(t, "delete user sessions except a2", err)
	if n != 2 {
		t.Errorf("DeleteUserSessions deleted %d; want 2", n)
	}
	list, _ = s.UserSessions(ctx, "ann")
	if diff := cmp.Diff([]string{"a2"}, ids(list)); diff != "" {
		t.Errorf("sessions left (-want +got):\n%s", diff)
	}
	if list, _ := s.UserSessions(ctx, "bob"); len(list) != 1 {
		t.Errorf("bob has %d sessions after ann's were deleted; want 1", len(list))
	}

	ok, err := s.DeleteSession(ctx, a2.ID)
	if err != nil || !ok {
		t.Errorf("DeleteSession = %v, %v; want true", ok, err)
	}
	ok, err = s.DeleteSession(ctx, a2.ID)
	if err != nil || ok {
		t.Errorf("DeleteSession again = %v, %v; want false", ok, err)
	}
	n, err = s.DeleteUserSessions(ctx, "bob", "")
	if err != nil || n != 1 {
		t.Errorf("DeleteUserSessions(bob, \"\") = %d, %v; want 1", n, err)
	}
}

func TestStoreLimits(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	exp := now().Add(time.Minute)

	if n, err := s.MailLedgerNext(ctx, "mail|reset|ann@example.com"); err != nil || n != 0 {
		t.Errorf("next of a new ledger = %d, %v; want 0", n, err)
	}
	slot := accounts.MailSlot{N: 0, Ref: "r1", ReservedAt: now(), ExpiresAt: exp}
	noErr(t, "reserve slot 0", s.ReserveMailSlot(ctx, "mail|reset|ann@example.com", slot))
	if err := s.ReserveMailSlot(ctx, "mail|reset|ann@example.com", slot); !errors.Is(err, accounts.ErrConflict) {
		t.Errorf("reserve slot 0 again: %v; want ErrConflict", err)
	}
	if n, err := s.MailLedgerNext(ctx, "mail|reset|ann@example.com"); err != nil || n != 1 {
		t.Errorf("next after slot 0 = %d, %v; want 1", n, err)
	}
	queued := now().Add(time.Second)
	noErr(t, "finish slot 0", s.FinishMailSlot(ctx, "mail|reset|ann@example.com", 0, queued, false))
	got, err := s.MailSlot(ctx, "mail|reset|ann@example.com", 0)
	if err != nil || got.Ref != "r1" || !got.QueuedAt.Equal(queued) || got.Void {
		t.Errorf("slot 0 = %+v, %v; want ref r1, queued at %v", got, err, queued)
	}
	if _, err := s.MailSlot(ctx, "mail|reset|ann@example.com", 1); !errors.Is(err, accounts.ErrNotFound) {
		t.Errorf("slot 1: %v; want ErrNotFound", err)
	}
	const n = 20
	var won atomic.Int64
	race(n, func(int) {
		err := s.ReserveMailSlot(ctx, "mail|reset|race@example.com", accounts.MailSlot{N: 3, ReservedAt: now(), ExpiresAt: exp})
		if err == nil {
			won.Add(1)
		}
	})
	if got := won.Load(); got != 1 {
		t.Errorf("%d of %d concurrent reservations of one number succeeded; want 1", got, n)
	}

	a, err := s.BeginLoginAttempt(ctx, "ann@example.com", now())
	if err != nil || a.N != 0 {
		t.Fatalf("first attempt of a new address = %+v, %v; want number 0", a, err)
	}
	noErr(t, "drop attempt", s.DropLoginAttempt(ctx, a))
	var last time.Time
	for i := range 3 {
		last = now().Add(time.Duration(i) * time.Second)
		a, err := s.BeginLoginAttempt(ctx, "ann@example.com", last)
		if err != nil || a.N != i {
			t.Fatalf("attempt %d = %+v, %v; want number %d", i, a, err, i)
		}
		noErr(t, "fail attempt", s.FailLoginAttempt(ctx, a, last))
	}
	a, err = s.BeginLoginAttempt(ctx, "ann@example.com", now())
	if err != nil || a.N != 3 {
		t.Fatalf("attempt after 3 failures = %+v, %v; want number 3", a, err)
	}
	if at, err := s.LoginAttemptTime(ctx, a, 2); err != nil || !at.Equal(last) {
		t.Errorf("time of attempt 2 = %v, %v; want %v", at, err, last)
	}
	noErr(t, "drop attempt", s.DropLoginAttempt(ctx, a))
	noErr(t, "clear failures", s.ClearLoginFailures(ctx, "ann@example.com"))
	if a, err := s.BeginLoginAttempt(ctx, "ann@example.com", now()); err != nil || a.N != 0 {
		t.Errorf("attempt after clear = %+v, %v; want number 0", a, err)
	}
	noErr(t, "clear again", s.ClearLoginFailures(ctx, "ann@example.com"))
}

// TestStoreLoginAttemptsConcurrent: attempts begun at the same time get
// distinct numbers, whether or not the address failed before, so parallel
// guesses cannot all pass the lockout (AB-1).
func TestStoreLoginAttemptsConcurrent(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	const n = 20
	for _, email := range []string{"new@example.com", "failed@example.com"} {
		if email == "failed@example.com" {
			a, err := s.BeginLoginAttempt(ctx, email, now())
			noErr(t, "begin", err)
			noErr(t, "fail", s.FailLoginAttempt(ctx, a, now()))
		}
		var mu sync.Mutex
		seen := map[int]bool{}
		race(n, func(int) {
			a, err := s.BeginLoginAttempt(ctx, email, now())
			if err != nil {
				t.Errorf("concurrent attempt: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if seen[a.N] {
				t.Errorf("%s: number %d given twice", email, a.N)
			}
			seen[a.N] = true
		})
		if len(seen) != n {
			t.Errorf("%s: %d distinct numbers for %d attempts; want %d", email, len(seen), n, n)
		}
	}
}

func TestStoreDeleteExpired(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	at := now()
	past, future := at.Add(-time.Minute), at.Add(time.Hour)
	idleCutoff := at.Add(-24 * time.Hour)

	for _, tok := range []accounts.Token{
		{Hash: "expired", Purpose: accounts.PurposeVerify, Subject: "a", ExpiresAt: past},
		{Hash: "live", Purpose: accounts.PurposeVerify, Subject: "b", ExpiresAt: future},
	} {
		noErr(t, "insert token", s.InsertToken(ctx, tok))
	}
	_, err := s.SetTokenHead(ctx, accounts.PurposeVerify, "a", "expired", past)
	noErr(t, "set head", err)
	_, err = s.SetTokenHead(ctx, accounts.PurposeVerify, "b", "live", future)
	noErr(t, "set head", err)
	for _, x := range []accounts.Session{
		{ID: "absolute", UserID: "u", CreatedAt: past, LastSeenAt: at, ExpiresAt: past},
		{ID: "idle", UserID: "u", CreatedAt: idleCutoff.Add(-time.Hour), LastSeenAt: idleCutoff.Add(-time.Minute), ExpiresAt: future},
		{ID: "live", UserID: "u", CreatedAt: past, LastSeenAt: at, ExpiresAt: future},
	} {
		noErr(t, "insert session", s.InsertSession(ctx, x))
	}
	for ledger, exp := range map[string]time.Time{"expired": past, "live": future} {
		noErr(t, "reserve slot", s.ReserveMailSlot(ctx, ledger, accounts.MailSlot{ReservedAt: past, ExpiresAt: exp}))
	}
	noErr(t, "insert lapsed signup", s.InsertToken(ctx, accounts.Token{Hash: "lapsed", Purpose: accounts.PurposeVerify, Subject: "c", ExpiresAt: past, KeepUntil: future}))
	for email, when := range map[string]time.Time{"old@example.com": at.Add(-25 * time.Hour), "recent@example.com": past} {
		a, err := s.BeginLoginAttempt(ctx, email, when)
		noErr(t, "begin attempt", err)
		noErr(t, "fail attempt", s.FailLoginAttempt(ctx, a, when))
	}

	noErr(t, "delete expired", s.DeleteExpired(ctx, at, idleCutoff))

	if _, err := s.Token(ctx, "expired"); !errors.Is(err, accounts.ErrNotFound) {
		t.Errorf("expired token: %v; want deleted", err)
	}
	if _, err := s.Token(ctx, "live"); err != nil {
		t.Errorf("live token: %v; want kept", err)
	}
	if _, err := s.TokenHead(ctx, accounts.PurposeVerify, "a"); !errors.Is(err, accounts.ErrNotFound) {
		t.Errorf("expired head: %v; want deleted", err)
	}
	if _, err := s.TokenHead(ctx, accounts.PurposeVerify, "b"); err != nil {
		t.Errorf("live head: %v; want kept", err)
	}
	for id, kept := range map[string]bool{"absolute": false, "idle": false, "live": true} {
		_, err := s.Session(ctx, id)
		if kept && err != nil {
			t.Errorf("session %s: %v; want kept", id, err)
		}
		if !kept && !errors.Is(err, accounts.ErrNotFound) {
			t.Errorf("session %s: %v; want deleted", id, err)
		}
	}
	for ledger, kept := range map[string]bool{"expired": false, "live": true} {
		_, err := s.MailSlot(ctx, ledger, 0)
		if kept != (err == nil) {
			t.Errorf("mail slot of %s after sweep: %v; want kept %v", ledger, err, kept)
		}
		if n, _ := s.MailLedgerNext(ctx, ledger); (n == 1) != kept {
			t.Errorf("ledger head of %s after sweep: next %d; want kept %v", ledger, n, kept)
		}
	}
	if _, err := s.Token(ctx, "lapsed"); err != nil {
		t.Errorf("expired token kept until later: %v; want kept", err)
	}
	if a, _ := s.BeginLoginAttempt(ctx, "old@example.com", at); a.N != 0 {
		t.Errorf("failures older than a day: next attempt number %d; want 0 (deleted)", a.N)
	}
	if a, _ := s.BeginLoginAttempt(ctx, "recent@example.com", at); a.N != 1 {
		t.Errorf("recent failures: next attempt number %d; want 1 (kept)", a.N)
	}
}

// TestStoreEnsureSchemaIdempotent: preparing an existing database, again or
// after a restart of the server on the same files, works and keeps the data
// (FerretDB v1.24 panicked when asked to re-create existing indexes).
func TestStoreEnsureSchemaIdempotent(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	database := testkit.NewDatabaseName()
	s := ts.open(t, ts.uri, database, testTimeout)
	noErr(t, "ensure schema again", s.EnsureSchema(t.Context()))
	noErr(t, "claim", s.ClaimEmail(t.Context(), accounts.EmailClaim{Email: "ann@example.com", UserID: "u1", ClaimedAt: now()}))

	if ts.embedded() {
		ts.srv.Stop()
		ts.start(t)
	}
	s2 := ts.open(t, ts.uri, database, testTimeout)
	noErr(t, "ensure schema on the restarted server", s2.EnsureSchema(t.Context()))
	if c, err := s2.EmailClaim(t.Context(), "ann@example.com"); err != nil || c.UserID != "u1" {
		t.Errorf("claim after restart = %+v, %v; want it kept", c, err)
	}
	wantErr(t, "unique key after restart", s2.ClaimEmail(t.Context(), accounts.EmailClaim{Email: "ann@example.com", UserID: "u2", ClaimedAt: now()}), accounts.ErrConflict)
}

func TestStoreOutbox(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	at := now()
	m1 := mail.StoredMessage{ID: "m1", To: "ann@example.com", Kind: accounts.MailVerify, Sealed: []byte{1, 2, 3}, CreatedAt: at}
	m2 := mail.StoredMessage{ID: "m2", To: "bob@example.com", Kind: accounts.MailReset, Sealed: []byte{4}, CreatedAt: at.Add(time.Second)}
	noErr(t, "add m2", s.AddMessage(ctx, m2))
	noErr(t, "add m1", s.AddMessage(ctx, m1))
	wantErr(t, "add m1 again", s.AddMessage(ctx, m1), accounts.ErrConflict)

	pending, err := s.PendingMessages(ctx, 10)
	noErr(t, "pending", err)
	if diff := cmp.Diff([]mail.StoredMessage{m1, m2}, pending); diff != "" {
		t.Errorf("pending, oldest first (-want +got):\n%s", diff)
	}
	if pending, _ := s.PendingMessages(ctx, 1); len(pending) != 1 || pending[0].ID != "m1" {
		t.Errorf("pending with limit 1 = %v; want [m1]", pending)
	}
	got, err := s.Message(ctx, "m1")
	noErr(t, "message", err)
	if diff := cmp.Diff(m1, got); diff != "" {
		t.Errorf("message round trip (-want +got):\n%s", diff)
	}

	a := mail.Attempt{MessageID: "m1", N: 0, Owner: "w1", LeaseUntil: at.Add(time.Minute)}
	noErr(t, "claim attempt", s.ClaimAttempt(ctx, a))
	wantErr(t, "claim the same attempt", s.ClaimAttempt(ctx, mail.Attempt{MessageID: "m1", N: 0, Owner: "w2", LeaseUntil: at.Add(time.Minute)}), accounts.ErrConflict)
	if got, err := s.Attempt(ctx, "m1", 0); err != nil || got.Owner != "w1" || got.Outcome != mail.OutcomeInFlight {
		t.Errorf("attempt = %+v, %v; want w1's, in flight", got, err)
	}
	a.Outcome, a.Error, a.NextAt, a.FinishedAt = mail.OutcomeFailed, "451 try again", at.Add(time.Second), at
	noErr(t, "finish attempt", s.FinishAttempt(ctx, a))
	got2, err := s.Attempt(ctx, "m1", 0)
	noErr(t, "attempt", err)
	if diff := cmp.Diff(a, got2); diff != "" {
		t.Errorf("finished attempt (-want +got):\n%s", diff)
	}
	wantErr(t, "finish an unclaimed attempt", s.FinishAttempt(ctx, mail.Attempt{MessageID: "m1", N: 5}), accounts.ErrNotFound)
	_, err = s.Attempt(ctx, "m1", 1)
	wantErr(t, "unclaimed attempt", err, accounts.ErrNotFound)

	const n = 20
	var won atomic.Int64
	race(n, func(i int) {
		if s.ClaimAttempt(ctx, mail.Attempt{MessageID: "m2", N: 0, Owner: fmt.Sprintf("w%d", i), LeaseUntil: at.Add(time.Minute)}) == nil {
			won.Add(1)
		}
	})
	if got := won.Load(); got != 1 {
		t.Errorf("%d of %d concurrent claims of one attempt won; want 1", got, n)
	}

	noErr(t, "delete m1", s.DeleteMessage(ctx, "m1", 1))
	noErr(t, "delete m1 again", s.DeleteMessage(ctx, "m1", 1))
	_, err = s.Message(ctx, "m1")
	wantErr(t, "deleted message", err, accounts.ErrNotFound)
	_, err = s.Attempt(ctx, "m1", 0)
	wantErr(t, "attempt of a deleted message", err, accounts.ErrNotFound)
	if pending, _ := s.PendingMessages(ctx, 10); len(pending) != 1 || pending[0].ID != "m2" {
		t.Errorf("pending after delete = %v; want [m2]", pending)
	}
}

// TestStoreUnavailable: with the database gone, calls fail within the
// configured timeout with an error that matches accounts.ErrUnavailable (so
// the HTTP layer answers 503, RL-1), and work again once it is back.
func TestStoreUnavailable(t *testing.T) {
	t.Parallel()
	const timeout = time.Second
	// checkDown calls the store as requests do and expects ErrUnavailable quickly.
	checkDown := func(t *testing.T, s *Store) {
		t.Helper()
		calls := []struct {
			name string
			call func(ctx context.Context) error
		}{
			{"User", func(ctx context.Context) error { _, err := s.User(ctx, "u1"); return err }},
			{"Session", func(ctx context.Context) error { _, err := s.Session(ctx, "s1"); return err }},
			{"InsertSession", func(ctx context.Context) error {
				return s.InsertSession(ctx, accounts.Session{ID: "s2", UserID: "u1", ExpiresAt: now().Add(time.Hour)})
			}},
			{"ReserveMailSlot", func(ctx context.Context) error {
				return s.ReserveMailSlot(ctx, "k", accounts.MailSlot{ReservedAt: now(), ExpiresAt: now().Add(time.Minute)})
			}},
			{"PendingMessages", func(ctx context.Context) error { _, err := s.PendingMessages(ctx, 10); return err }},
			{"Ping", s.Ping},
		}
		for _, c := range calls {
			began := time.Now()
			err := c.call(context.Background())
			if d := time.Since(began); d > 10*time.Second {
				t.Errorf("%s took %s with the database down; want about the %s timeout", c.name, d, timeout)
			}
			if !errors.Is(err, accounts.ErrUnavailable) {
				t.Errorf("%s with the database down: %v; want accounts.ErrUnavailable", c.name, err)
			}
		}
	}

	t.Run("embedded server stopped", func(t *testing.T) {
		t.Parallel()
		ts := startServer(t)
		if !ts.embedded() {
			t.Skip("needs the embedded server, which the test can stop")
		}
		s := ts.open(t, ts.uri, testkit.NewDatabaseName(), timeout)
		ts.srv.Stop()
		checkDown(t, s)
	})
	t.Run("connection cut", func(t *testing.T) {
		t.Parallel()
		ts := startServer(t)
		proxy, uri := testkit.StartProxy(t, ts.uri)
		database := testkit.NewDatabaseName()
		s := ts.open(t, uri, database, timeout)
		noErr(t, "claim", s.ClaimEmail(t.Context(), accounts.EmailClaim{Email: "ann@example.com", UserID: "u1", ClaimedAt: now()}))
		proxy.Cut()
		checkDown(t, s)
		proxy.Restore()
		deadline := time.Now().Add(15 * time.Second)
		for {
			_, err := s.EmailClaim(t.Context(), "ann@example.com")
			if err == nil {
				break
			}
			if !errors.Is(err, accounts.ErrUnavailable) || time.Now().After(deadline) {
				t.Fatalf("after the database returned: %v; want the claim again within 15s", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

// TestStoreInsertSessions: a bulk load stores every session as
// InsertSession would, and refuses a duplicate id.
func TestStoreInsertSessions(t *testing.T) {
	t.Parallel()
	s := newStore(t)
	ctx := t.Context()
	at := now()
	batch := []accounts.Session{
		{ID: "bulk-1", SecretHash: "h1", UserID: "u", CreatedAt: at, LastSeenAt: at, ExpiresAt: at.Add(time.Hour), UserAgent: "ua", IP: "127.0.0.1"},
		{ID: "bulk-2", SecretHash: "h2", UserID: "u", CreatedAt: at, LastSeenAt: at, ExpiresAt: at.Add(time.Hour)},
	}
	noErr(t, "insert sessions", s.InsertSessions(ctx, batch))
	for _, want := range batch {
		got, err := s.Session(ctx, want.ID)
		if err != nil || got != want {
			t.Errorf("Session(%s) = %+v, %v; want %+v", want.ID, got, err, want)
		}
	}
	if err := s.InsertSessions(ctx, batch[:1]); !errors.Is(err, accounts.ErrConflict) {
		t.Errorf("insert a duplicate: %v; want ErrConflict", err)
	}
}
