// Package mongostore implements accounts.Store and mail.OutboxStore on
// MongoDB with mongo-driver v2. It is written for the lowest common
// denominator of MongoDB and the embedded FerretDB (SQLite backend):
//   - every hot lookup is by _id alone, the only filter FerretDB turns into
//     an indexed SQL query (any other filter scans the collection in Go);
//   - no transactions, TTL indexes or partial indexes;
//   - exactly-once decisions use inserts with unique keys and delete counts,
//     never conditional updates (FerretDB applies those read-modify-write).
//
// Driver errors are translated here and never leave the package:
// accounts.ErrNotFound, accounts.ErrConflict, accounts.ErrUnavailable.
package mongostore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/gatehouse/gatehouse/accounts"
)

// Collection names.
const (
	collUsers         = "users"
	collEmails        = "emails"
	collTokens        = "tokens"
	collTokenHeads    = "token_heads"
	collSessions      = "sessions"
	collLimits        = "limits"
	collLoginFailures = "login_failures"
	collOutbox        = "outbox"
	collAttempts      = "outbox_attempts"
	collIdentities    = "identities"
	collUserProviders = "user_providers"
	collOAuthStates   = "oauth_states"
)

// Collections lists every collection the store uses, for callers that tune
// the database underneath (the embedded server's index fix-up).
var Collections = []string{
	collUsers, collEmails, collTokens, collTokenHeads, collSessions, collLimits, collLoginFailures,
	collOutbox, collAttempts, collIdentities, collUserProviders, collOAuthStates,
}

// Store is the MongoDB implementation of accounts.Store.
type Store struct {
	client *mongo.Client
	db     *mongo.Database
	outage *accounts.Outage
}

var _ accounts.Store = (*Store)(nil)

// Connect opens a client for uri with bounded timeouts, so that a database
// outage turns into fast ErrUnavailable answers instead of requests hanging
// for the driver's default 30 seconds (RL-1).
func Connect(ctx context.Context, uri, database string, timeout time.Duration) (*Store, error) {
	opts := options.Client().ApplyURI(uri).
		SetServerSelectionTimeout(timeout).
		SetConnectTimeout(timeout).
		SetTimeout(timeout).
		SetAppName("gatehouse")
	client, err := mongo.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("connect to mongodb: %w", err)
	}
	return &Store{client: client, db: client.Database(database), outage: &accounts.Outage{}}, nil
}

// Outage reports whether the database answered the store's last operation.
func (s *Store) Outage() *accounts.Outage { return s.outage }

// Close disconnects the client.
func (s *Store) Close(ctx context.Context) error {
	return s.client.Disconnect(ctx)
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	return s.mapErr(s.db.RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err())
}

// EnsureSchema creates the collections and indexes. Unique indexes back up
// the _id-keyed designs; the secondary ones serve MongoDB (FerretDB ignores
// them for queries but keeps them consistent).
func (s *Store) EnsureSchema(ctx context.Context) error {
	existing, err := s.db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return fmt.Errorf("list collections: %w", s.mapErr(err))
	}
	have := make(map[string]bool, len(existing))
	for _, n := range existing {
		have[n] = true
	}
	for _, n := range Collections {
		if have[n] {
			continue
		}
		if err := s.db.CreateCollection(ctx, n); err != nil && !isNamespaceExists(err) {
			return fmt.Errorf("create collection %s: %w", n, s.mapErr(err))
		}
	}
	for _, ix := range indexes {
		if err := s.ensureIndex(ctx, ix); err != nil {
			return err
		}
	}
	return nil
}

// index is a secondary index of a collection.
type index struct {
	coll, name string
	keys       bson.D
	unique     bool
}

var indexes = []index{
	{coll: collUsers, name: "email_unique", keys: bson.D{{Key: "email", Value: 1}}, unique: true},
	{coll: collSessions, name: "user_id", keys: bson.D{{Key: "user_id", Value: 1}}},
	{coll: collSessions, name: "expires_at", keys: bson.D{{Key: "expires_at", Value: 1}}},
	{coll: collTokens, name: "expires_at", keys: bson.D{{Key: "expires_at", Value: 1}}},
	{coll: collLimits, name: "expires_at", keys: bson.D{{Key: "expires_at", Value: 1}}},
	{coll: collOutbox, name: "created_at", keys: bson.D{{Key: "created_at", Value: 1}}},
	{coll: collAttempts, name: "message_id", keys: bson.D{{Key: "message_id", Value: 1}}},
	{coll: collIdentities, name: "user_id", keys: bson.D{{Key: "user_id", Value: 1}}},
	{coll: collOAuthStates, name: "expires_at", keys: bson.D{{Key: "expires_at", Value: 1}}},
}

// ensureIndex creates an index unless it exists. Indexes are created one
// at a time, and existing ones are skipped rather than re-requested:
// FerretDB v1.24 panics on a createIndexes command naming several indexes
// of which some exist already.
func (s *Store) ensureIndex(ctx context.Context, ix index) error {
	iv := s.db.Collection(ix.coll).Indexes()
	specs, err := iv.ListSpecifications(ctx)
	if err != nil {
		return fmt.Errorf("list indexes on %s: %w", ix.coll, s.mapErr(err))
	}
	for _, sp := range specs {
		if sp.Name == ix.name {
			return nil
		}
	}
	opts := options.Index().SetName(ix.name)
	if ix.unique {
		opts.SetUnique(true)
	}
	if _, err := iv.CreateOne(ctx, mongo.IndexModel{Keys: ix.keys, Options: opts}); err != nil {
		return fmt.Errorf("create index %s on %s: %w", ix.name, ix.coll, s.mapErr(err))
	}
	return nil
}

func isNamespaceExists(err error) bool {
	var ce mongo.CommandError
	return errors.As(err, &ce) && ce.Code == 48
}

// mapErr translates driver errors to the domain's and tells the outage
// tracker whether the database answered.
func (s *Store) mapErr(err error) error {
	err = mapErr(err)
	s.outage.Report(err)
	return err
}

// mapErr translates driver errors to the domain's.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, mongo.ErrNoDocuments):
		return accounts.ErrNotFound
	case mongo.IsDuplicateKeyError(err):
		return accounts.ErrConflict
	case unreachable(err), refusedForNow(err):
		return fmt.Errorf("%w: %w", accounts.ErrUnavailable, err)
	default:
		return err
	}
}

// storageErrorCodes are MongoDB's error codes for a server that cannot take
// the operation now but will once an operator or a failover fixes it.
var storageErrorCodes = []int{
	6,     // HostUnreachable
	7,     // HostNotFound
	50,    // MaxTimeMSExpired
	89,    // NetworkTimeout
	91,    // ShutdownInProgress
	189,   // PrimarySteppedDown
	262,   // ExceededTimeLimit
	9001,  // SocketException
	10107, // NotWritablePrimary
	11600, // InterruptedAtShutdown
	11602, // InterruptedDueToReplStateChange
	13435, // NotPrimaryNoSecondaryOk
	13436, // NotPrimaryOrSecondary
	14031, // OutOfDiskSpace
}

// storageErrorMessages are what FerretDB passes on from SQLite (as an
// InternalError) when its files cannot be written: a full disk, a file
// system remounted read-only, an I/O error, a lock held too long.
var storageErrorMessages = []string{
	"database or disk is full",
	"attempt to write a readonly database",
	"disk I/O error",
	"database is locked",
}

// refusedForNow reports errors of a database that answered but could not
// do the work for a reason outside the request (a full disk, a read-only
// file system, an election): the client should get 503 and retry, and
// service resumes by itself when the cause goes away.
func refusedForNow(err error) bool {
	var se mongo.ServerError
	if !errors.As(err, &se) {
		return false
	}
	if slices.ContainsFunc(storageErrorCodes, se.HasErrorCode) || se.HasErrorLabel("RetryableWriteError") {
		return true
	}
	return slices.ContainsFunc(storageErrorMessages, se.HasErrorMessage)
}

// unreachable reports errors that mean "the database did not answer in time".
func unreachable(err error) bool {
	return mongo.IsTimeout(err) || mongo.IsNetworkError(err) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, mongo.ErrClientDisconnected) ||
		errors.As(err, &topology.ServerSelectionError{}) ||
		errors.As(err, &topology.ConnectionError{})
}

// byID is the one filter shape every hot path uses.
func byID(id string) bson.D { return bson.D{{Key: "_id", Value: id}} }

func (s *Store) coll(name string) *mongo.Collection { return s.db.Collection(name) }

func (s *Store) findByID(ctx context.Context, coll, id string, out any) error {
	return s.mapErr(s.coll(coll).FindOne(ctx, byID(id)).Decode(out))
}

func (s *Store) insert(ctx context.Context, coll string, doc any) error {
	_, err := s.coll(coll).InsertOne(ctx, doc)
	return s.mapErr(err)
}

func (s *Store) deleteByID(ctx context.Context, coll, id string) (bool, error) {
	res, err := s.coll(coll).DeleteOne(ctx, byID(id))
	if err != nil {
		return false, s.mapErr(err)
	}
	return res.DeletedCount == 1, nil
}

// upsertByID replaces or inserts the document with id. Two concurrent upserts
// of a missing document can both try to insert; the loser retries as an
// update.
func (s *Store) upsertByID(ctx context.Context, coll, id string, update any) error {
	var err error
	for range 3 {
		_, err = s.coll(coll).UpdateOne(ctx, byID(id), update, options.UpdateOne().SetUpsert(true))
		if !mongo.IsDuplicateKeyError(err) {
			break
		}
	}
	return s.mapErr(err)
}
