package mongostore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gatehouse/gatehouse/accounts"
)

type userDoc struct {
	ID                string    `bson:"_id"`
	Email             string    `bson:"email"`
	PasswordHash      string    `bson:"password_hash,omitempty"`
	CreatedAt         time.Time `bson:"created_at"`
	UpdatedAt         time.Time `bson:"updated_at"`
	PasswordChangedAt time.Time `bson:"password_changed_at"`
}

// CreateUser implements accounts.UserStore.
func (s *Store) CreateUser(ctx context.Context, u accounts.User) error {
	return s.insert(ctx, collUsers, userDoc(u))
}

// User implements accounts.UserStore.
func (s *Store) User(ctx context.Context, id string) (accounts.User, error) {
	var d userDoc
	if err := s.findByID(ctx, collUsers, id, &d); err != nil {
		return accounts.User{}, err
	}
	return accounts.User(d), nil
}

// SetPassword implements accounts.UserStore.
func (s *Store) SetPassword(ctx context.Context, userID, hash string, at time.Time) error {
	res, err := s.coll(collUsers).UpdateOne(ctx, byID(userID), bson.D{{Key: "$set", Value: bson.D{
		{Key: "password_hash", Value: hash},
		{Key: "password_changed_at", Value: at},
		{Key: "updated_at", Value: at},
	}}})
	if err != nil {
		return s.mapErr(err)
	}
	if res.MatchedCount == 0 {
		return accounts.ErrNotFound
	}
	return nil
}

// ReplacePasswordHash implements accounts.UserStore. The filter names the old
// hash, so on MongoDB the swap is atomic; it runs only after a cost increase.
func (s *Store) ReplacePasswordHash(ctx context.Context, userID, oldHash, newHash string) error {
	res, err := s.coll(collUsers).UpdateOne(ctx,
		bson.D{{Key: "_id", Value: userID}, {Key: "password_hash", Value: oldHash}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "password_hash", Value: newHash}}}})
	if err != nil {
		return s.mapErr(err)
	}
	if res.MatchedCount == 0 {
		return accounts.ErrNotFound
	}
	return nil
}

type emailDoc struct {
	Email     string    `bson:"_id"`
	UserID    string    `bson:"user_id"`
	ClaimedAt time.Time `bson:"claimed_at"`
}

// ClaimEmail implements accounts.UserStore.
func (s *Store) ClaimEmail(ctx context.Context, c accounts.EmailClaim) error {
	return s.insert(ctx, collEmails, emailDoc(c))
}

// EmailClaim implements accounts.UserStore.
func (s *Store) EmailClaim(ctx context.Context, email string) (accounts.EmailClaim, error) {
	var d emailDoc
	if err := s.findByID(ctx, collEmails, email, &d); err != nil {
		return accounts.EmailClaim{}, err
	}
	return accounts.EmailClaim(d), nil
}

// ReleaseEmail implements accounts.UserStore.
func (s *Store) ReleaseEmail(ctx context.Context, email, userID string) error {
	c, err := s.EmailClaim(ctx, email)
	if errors.Is(err, accounts.ErrNotFound) || (err == nil && c.UserID != userID) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = s.deleteByID(ctx, collEmails, email)
	return err
}

type tokenDoc struct {
	Hash         string            `bson:"_id"`
	Purpose      accounts.Purpose  `bson:"purpose"`
	Subject      string            `bson:"subject"`
	Email        string            `bson:"email"`
	UserID       string            `bson:"user_id"`
	PasswordHash string            `bson:"password_hash,omitempty"`
	Profile      *accounts.Profile `bson:"profile,omitempty"`
	LinkHash     string            `bson:"link_hash,omitempty"`
	ReturnTo     string            `bson:"return_to,omitempty"`
	CreatedAt    time.Time         `bson:"created_at"`
	ExpiresAt    time.Time         `bson:"expires_at"`
	KeepUntil    time.Time         `bson:"keep_until,omitempty"`
}

// InsertToken implements accounts.TokenStore.
func (s *Store) InsertToken(ctx context.Context, t accounts.Token) error {
	return s.insert(ctx, collTokens, tokenDoc(t))
}

// Token implements accounts.TokenStore.
func (s *Store) Token(ctx context.Context, hash string) (accounts.Token, error) {
	var d tokenDoc
	if err := s.findByID(ctx, collTokens, hash, &d); err != nil {
		return accounts.Token{}, err
	}
	return accounts.Token(d), nil
}

// DeleteToken implements accounts.TokenStore.
func (s *Store) DeleteToken(ctx context.Context, hash string) (bool, error) {
	return s.deleteByID(ctx, collTokens, hash)
}

type headDoc struct {
	ID        string    `bson:"_id"`
	Hash      string    `bson:"hash"`
	ExpiresAt time.Time `bson:"expires_at"`
}

func headID(p accounts.Purpose, subject string) string { return string(p) + "|" + subject }

// SetTokenHead implements accounts.TokenStore.
func (s *Store) SetTokenHead(ctx context.Context, p accounts.Purpose, subject, hash string, expiresAt time.Time) (string, error) {
	id := headID(p, subject)
	var prev headDoc
	if err := s.findByID(ctx, collTokenHeads, id, &prev); err != nil && !errors.Is(err, accounts.ErrNotFound) {
		return "", err
	}
	err := s.upsertByID(ctx, collTokenHeads, id, bson.D{{Key: "$set", Value: bson.D{
		{Key: "hash", Value: hash},
		{Key: "expires_at", Value: expiresAt},
	}}})
	return prev.Hash, err
}

// TokenHead implements accounts.TokenStore.
func (s *Store) TokenHead(ctx context.Context, p accounts.Purpose, subject string) (string, error) {
	var d headDoc
	if err := s.findByID(ctx, collTokenHeads, headID(p, subject), &d); err != nil {
		return "", err
	}
	return d.Hash, nil
}

// DeleteTokenHead implements accounts.TokenStore.
func (s *Store) DeleteTokenHead(ctx context.Context, p accounts.Purpose, subject string) (string, error) {
	id := headID(p, subject)
	var d headDoc
	if err := s.findByID(ctx, collTokenHeads, id, &d); errors.Is(err, accounts.ErrNotFound) {
		return "", nil
	} else if err != nil {
		return "", err
	}
	_, err := s.deleteByID(ctx, collTokenHeads, id)
	return d.Hash, err
}

type sessionDoc struct {
	ID         string    `bson:"_id"`
	SecretHash string    `bson:"secret_hash"`
	UserID     string    `bson:"user_id"`
	CreatedAt  time.Time `bson:"created_at"`
	LastSeenAt time.Time `bson:"last_seen_at"`
	ExpiresAt  time.Time `bson:"expires_at"`
	UserAgent  string    `bson:"user_agent"`
	IP         string    `bson:"ip"`
}

// InsertSession implements accounts.SessionStore.
func (s *Store) InsertSession(ctx context.Context, sess accounts.Session) error {
	return s.insert(ctx, collSessions, sessionDoc(sess))
}

// InsertSessions stores many sessions at once, for bulk loads such as the
// benchmark's (cmd/bench); ErrConflict if one of the ids exists.
func (s *Store) InsertSessions(ctx context.Context, sessions []accounts.Session) error {
	docs := make([]any, len(sessions))
	for i, x := range sessions {
		docs[i] = sessionDoc(x)
	}
	_, err := s.coll(collSessions).InsertMany(ctx, docs)
	return s.mapErr(err)
}

// Session implements accounts.SessionStore.
func (s *Store) Session(ctx context.Context, id string) (accounts.Session, error) {
	var d sessionDoc
	if err := s.findByID(ctx, collSessions, id, &d); err != nil {
		return accounts.Session{}, err
	}
	return accounts.Session(d), nil
}

// TouchSession implements accounts.SessionStore.
func (s *Store) TouchSession(ctx context.Context, id string, at time.Time) error {
	_, err := s.coll(collSessions).UpdateOne(ctx, byID(id), bson.D{{Key: "$set", Value: bson.D{{Key: "last_seen_at", Value: at}}}})
	return s.mapErr(err)
}

// DeleteSession implements accounts.SessionStore.
func (s *Store) DeleteSession(ctx context.Context, id string) (bool, error) {
	return s.deleteByID(ctx, collSessions, id)
}

// UserSessions implements accounts.SessionStore.
func (s *Store) UserSessions(ctx context.Context, userID string) ([]accounts.Session, error) {
	cur, err := s.coll(collSessions).Find(ctx, bson.D{{Key: "user_id", Value: userID}},
		options.Find().SetSort(bson.D{{Key: "created_at", Value: -1}}).SetLimit(500))
	if err != nil {
		return nil, s.mapErr(err)
	}
	var docs []sessionDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, s.mapErr(err)
	}
	out := make([]accounts.Session, len(docs))
	for i, d := range docs {
		out[i] = accounts.Session(d)
	}
	return out, nil
}

// DeleteUserSessions implements accounts.SessionStore.
func (s *Store) DeleteUserSessions(ctx context.Context, userID, except string) (int64, error) {
	filter := bson.D{{Key: "user_id", Value: userID}}
	if except != "" {
		filter = append(filter, bson.E{Key: "_id", Value: bson.D{{Key: "$ne", Value: except}}})
	}
	res, err := s.coll(collSessions).DeleteMany(ctx, filter)
	if err != nil {
		return 0, s.mapErr(err)
	}
	return res.DeletedCount, nil
}

// A mail ledger is a run of numbered slot documents in the limits
// collection, "<ledger>|<n>", taken by unique-key inserts (exact on FerretDB
// and MongoDB alike), and a head document "<ledger>|next" that hints at the
// next free number and lives as long as the newest slot.
type mailSlotDoc struct {
	Key        string    `bson:"_id"`
	Ref        string    `bson:"ref,omitempty"`
	ReservedAt time.Time `bson:"reserved_at"`
	QueuedAt   time.Time `bson:"queued_at,omitempty"`
	Void       bool      `bson:"void,omitempty"`
	ExpiresAt  time.Time `bson:"expires_at"`
}

type ledgerHeadDoc struct {
	Key       string    `bson:"_id"`
	Next      int       `bson:"next"`
	ExpiresAt time.Time `bson:"expires_at"`
}

func mailSlotKey(ledger string, n int) string { return ledger + "|" + strconv.Itoa(n) }

// MailLedgerNext implements accounts.LimitStore.
func (s *Store) MailLedgerNext(ctx context.Context, ledger string) (int, error) {
	var d ledgerHeadDoc
	err := s.findByID(ctx, collLimits, ledger+"|next", &d)
	if errors.Is(err, accounts.ErrNotFound) {
		return 0, nil
	}
	return d.Next, err
}

// ReserveMailSlot implements accounts.LimitStore.
func (s *Store) ReserveMailSlot(ctx context.Context, ledger string, slot accounts.MailSlot) error {
	err := s.insert(ctx, collLimits, mailSlotDoc{
		Key: mailSlotKey(ledger, slot.N), Ref: slot.Ref, ReservedAt: slot.ReservedAt,
		QueuedAt: slot.QueuedAt, Void: slot.Void, ExpiresAt: slot.ExpiresAt,
	})
	if err != nil {
		return err
	}
	// Only a hint: a lost update leaves it low, and probing past taken
	// numbers costs a conflict each.
	return s.upsertByID(ctx, collLimits, ledger+"|next", bson.D{{Key: "$max", Value: bson.D{
		{Key: "next", Value: slot.N + 1},
		{Key: "expires_at", Value: slot.ExpiresAt},
	}}})
}

// MailSlot implements accounts.LimitStore.
func (s *Store) MailSlot(ctx context.Context, ledger string, n int) (accounts.MailSlot, error) {
	var d mailSlotDoc
	if err := s.findByID(ctx, collLimits, mailSlotKey(ledger, n), &d); err != nil {
		return accounts.MailSlot{}, err
	}
	return accounts.MailSlot{N: n, Ref: d.Ref, ReservedAt: d.ReservedAt, QueuedAt: d.QueuedAt, Void: d.Void, ExpiresAt: d.ExpiresAt}, nil
}

// FinishMailSlot implements accounts.LimitStore. Only the request that
// reserved a slot finishes it, so the whole-document rewrite FerretDB makes
// of an update races with nothing.
func (s *Store) FinishMailSlot(ctx context.Context, ledger string, n int, queuedAt time.Time, void bool) error {
	set := bson.D{{Key: "void", Value: void}}
	if !void {
		set = append(set, bson.E{Key: "queued_at", Value: queuedAt})
	}
	res, err := s.coll(collLimits).UpdateOne(ctx, byID(mailSlotKey(ledger, n)), bson.D{{Key: "$set", Value: set}})
	if err != nil {
		return s.mapErr(err)
	}
	if res.MatchedCount == 0 {
		return accounts.ErrNotFound
	}
	return nil
}

// Login attempts must be admitted exactly even when guesses arrive in
// parallel on several instances, but FerretDB applies $inc as
// read-modify-write and loses concurrent increments. So each attempt is an
// insert of a numbered marker, taken before the password is checked (one
// insert per number wins, on every server), and a per-address document keeps
// the epoch the markers belong to and a hint of the next free number
// (possibly low: probing from it finds the free one). Clearing starts a new
// epoch and orphans the old markers to the sweep.
//
// An address that never failed has no document: its markers use the empty
// epoch, and clearing always moves to a random one, so the empty epoch is
// never reused while markers of it may live.
type failuresDoc struct {
	Email  string    `bson:"_id"`
	Epoch  string    `bson:"epoch"`
	Count  int       `bson:"count"`
	LastAt time.Time `bson:"last_at"`
}

type failureMark struct {
	Key       string    `bson:"_id"`
	At        time.Time `bson:"at"`
	ExpiresAt time.Time `bson:"expires_at"`
}

// maxFailureMarks bounds the markers one address can accumulate per epoch
// (the lockout's back-off allows far fewer a day).
const maxFailureMarks = 10000

func failureKey(email, epoch string, n int) string {
	return "loginfail|" + email + "|" + epoch + "|" + strconv.Itoa(n)
}

// BeginLoginAttempt implements accounts.LimitStore.
func (s *Store) BeginLoginAttempt(ctx context.Context, email string, at time.Time) (accounts.LoginAttempt, error) {
	var d failuresDoc
	if err := s.findByID(ctx, collLoginFailures, email, &d); err != nil && !errors.Is(err, accounts.ErrNotFound) {
		return accounts.LoginAttempt{}, err
	}
	a := accounts.LoginAttempt{Email: email, Epoch: d.Epoch}
	for a.N = d.Count; a.N < maxFailureMarks; a.N++ {
		err := s.insert(ctx, collLimits, failureMark{Key: failureKey(email, a.Epoch, a.N), At: at, ExpiresAt: at.Add(failureMemory)})
		if err == nil {
			return a, nil
		}
		if !errors.Is(err, accounts.ErrConflict) {
			return accounts.LoginAttempt{}, err
		}
	}
	return a, nil // past the bound every attempt shares the last number, still locked out
}

// LoginAttemptTime implements accounts.LimitStore.
func (s *Store) LoginAttemptTime(ctx context.Context, a accounts.LoginAttempt, n int) (time.Time, error) {
	var m failureMark
	if err := s.findByID(ctx, collLimits, failureKey(a.Email, a.Epoch, n), &m); err != nil {
		return time.Time{}, err
	}
	return m.At, nil
}

// FailLoginAttempt implements accounts.LimitStore. The marker stays; the
// hint moves past it.
func (s *Store) FailLoginAttempt(ctx context.Context, a accounts.LoginAttempt, at time.Time) error {
	err := s.insert(ctx, collLoginFailures, failuresDoc{Email: a.Email, Epoch: a.Epoch, Count: a.N + 1, LastAt: at})
	if !errors.Is(err, accounts.ErrConflict) {
		return err
	}
	// The hint may lose a concurrent update; the markers above it are
	// exact. The filter keeps a failure of an old epoch from moving the
	// hint of a new one.
	_, err = s.coll(collLoginFailures).UpdateOne(ctx,
		bson.D{{Key: "_id", Value: a.Email}, {Key: "epoch", Value: a.Epoch}},
		bson.D{{Key: "$max", Value: bson.D{{Key: "count", Value: a.N + 1}, {Key: "last_at", Value: at}}}})
	return s.mapErr(err)
}

// DropLoginAttempt implements accounts.LimitStore.
func (s *Store) DropLoginAttempt(ctx context.Context, a accounts.LoginAttempt) error {
	_, err := s.deleteByID(ctx, collLimits, failureKey(a.Email, a.Epoch, a.N))
	return err
}

// ClearLoginFailures implements accounts.LimitStore.
func (s *Store) ClearLoginFailures(ctx context.Context, email string) error {
	return s.upsertByID(ctx, collLoginFailures, email, bson.D{{Key: "$set", Value: bson.D{
		{Key: "epoch", Value: newEpoch()},
		{Key: "count", Value: 0},
		{Key: "last_at", Value: time.Now().UTC()},
	}}})
}

func newEpoch() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// failureMemory is how long an address's failure count outlives its last failure.
const failureMemory = 24 * time.Hour

// DeleteExpired implements accounts.Store.
func (s *Store) DeleteExpired(ctx context.Context, now, idleCutoff time.Time) error {
	before := func(field string, t time.Time) bson.D {
		return bson.D{{Key: field, Value: bson.D{{Key: "$lt", Value: t}}}}
	}
	jobs := []struct {
		coll   string
		filter bson.D
	}{
		// Tokens written before keep_until existed have only expires_at.
		{collTokens, bson.D{{Key: "$or", Value: bson.A{
			before("keep_until", now),
			bson.D{{Key: "keep_until", Value: bson.D{{Key: "$exists", Value: false}}}, {Key: "expires_at", Value: bson.D{{Key: "$lt", Value: now}}}},
		}}}},
		{collTokenHeads, before("expires_at", now)},
		{collSessions, bson.D{{Key: "$or", Value: bson.A{before("expires_at", now), before("last_seen_at", idleCutoff)}}}},
		{collLimits, before("expires_at", now)},
		{collLoginFailures, before("last_at", now.Add(-failureMemory))},
		{collOAuthStates, before("expires_at", now)},
	}
	for _, j := range jobs {
		if _, err := s.coll(j.coll).DeleteMany(ctx, j.filter); err != nil {
			return fmt.Errorf("delete expired %s: %w", j.coll, s.mapErr(err))
		}
	}
	return nil
}
