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

type slotDoc struct {
	Key       string    `bson:"_id"`
	ExpiresAt time.Time `bson:"expires_at"`
}

// TakeSlot implements accounts.LimitStore.
func (s *Store) TakeSlot(ctx context.Context, key string, expiresAt time.Time) (bool, error) {
	err := s.insert(ctx, collLimits, slotDoc{Key: key, ExpiresAt: expiresAt})
	if errors.Is(err, accounts.ErrConflict) {
		return false, nil
	}
	return err == nil, err
}

// Login failures must be counted exactly even when guesses arrive in
// parallel, but FerretDB applies $inc as read-modify-write and loses
// concurrent increments. So each failure is an insert of a numbered marker
// (exact: one insert per number wins), and a per-address document keeps a
// hint of the count (possibly low) and the epoch that the markers belong to;
// clearing deletes the hint, which starts a new epoch and orphans the old
// markers to the sweep.
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

// LoginFailures implements accounts.LimitStore. It reads the hint and then
// the markers past it, usually one read that finds nothing.
func (s *Store) LoginFailures(ctx context.Context, email string) (accounts.Failures, error) {
	var d failuresDoc
	err := s.findByID(ctx, collLoginFailures, email, &d)
	if errors.Is(err, accounts.ErrNotFound) {
		return accounts.Failures{}, nil
	}
	if err != nil {
		return accounts.Failures{}, err
	}
	f := accounts.Failures{Count: d.Count, LastAt: d.LastAt}
	for f.Count < maxFailureMarks {
		var m failureMark
		err := s.findByID(ctx, collLimits, failureKey(email, d.Epoch, f.Count), &m)
		if errors.Is(err, accounts.ErrNotFound) {
			break
		}
		if err != nil {
			return accounts.Failures{}, err
		}
		f.Count++
		f.LastAt = m.At
	}
	return f, nil
}

// RecordLoginFailure implements accounts.LimitStore.
func (s *Store) RecordLoginFailure(ctx context.Context, email string, at time.Time) error {
	var d failuresDoc
	err := s.findByID(ctx, collLoginFailures, email, &d)
	if errors.Is(err, accounts.ErrNotFound) {
		d = failuresDoc{Email: email, Epoch: newEpoch(), LastAt: at}
		if err = s.insert(ctx, collLoginFailures, d); errors.Is(err, accounts.ErrConflict) {
			err = s.findByID(ctx, collLoginFailures, email, &d)
		}
	}
	if err != nil {
		return err
	}
	n := d.Count
	for ; n < maxFailureMarks; n++ {
		err := s.insert(ctx, collLimits, failureMark{Key: failureKey(email, d.Epoch, n), At: at, ExpiresAt: at.Add(failureMemory)})
		if err == nil {
			break
		}
		if !errors.Is(err, accounts.ErrConflict) {
			return err
		}
	}
	// The hint may lose a concurrent update; the markers above it are exact.
	_, err = s.coll(collLoginFailures).UpdateOne(ctx, byID(email), bson.D{{Key: "$set", Value: bson.D{
		{Key: "count", Value: n + 1},
		{Key: "last_at", Value: at},
	}}})
	return s.mapErr(err)
}

// ClearLoginFailures implements accounts.LimitStore.
func (s *Store) ClearLoginFailures(ctx context.Context, email string) error {
	_, err := s.deleteByID(ctx, collLoginFailures, email)
	return err
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
		{collTokens, before("expires_at", now)},
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
