package mongostore

import (
	"context"
	"errors"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/mail"
)

var _ mail.OutboxStore = (*Store)(nil)

type messageDoc struct {
	ID        string            `bson:"_id"`
	To        string            `bson:"to"`
	Kind      accounts.MailKind `bson:"kind"`
	Sealed    []byte            `bson:"sealed"`
	CreatedAt time.Time         `bson:"created_at"`
}

type attemptDoc struct {
	ID         string    `bson:"_id"` // "<message id>#<n>": the claim's uniqueness
	MessageID  string    `bson:"message_id"`
	N          int       `bson:"n"`
	Owner      string    `bson:"owner"`
	LeaseUntil time.Time `bson:"lease_until"`
	Outcome    string    `bson:"outcome"`
	NextAt     time.Time `bson:"next_at"`
	Error      string    `bson:"error"`
	FinishedAt time.Time `bson:"finished_at"`
}

func attemptID(messageID string, n int) string { return messageID + "#" + strconv.Itoa(n) }

func toAttemptDoc(a mail.Attempt) attemptDoc {
	return attemptDoc{
		ID: attemptID(a.MessageID, a.N), MessageID: a.MessageID, N: a.N, Owner: a.Owner,
		LeaseUntil: a.LeaseUntil, Outcome: a.Outcome, NextAt: a.NextAt, Error: a.Error, FinishedAt: a.FinishedAt,
	}
}

// AddMessage implements mail.OutboxStore.
func (s *Store) AddMessage(ctx context.Context, m mail.StoredMessage) error {
	return s.insert(ctx, collOutbox, messageDoc(m))
}

// Message implements mail.OutboxStore.
func (s *Store) Message(ctx context.Context, id string) (mail.StoredMessage, error) {
	var d messageDoc
	if err := s.findByID(ctx, collOutbox, id, &d); err != nil {
		return mail.StoredMessage{}, err
	}
	return mail.StoredMessage(d), nil
}

// PendingMessages implements mail.OutboxStore.
func (s *Store) PendingMessages(ctx context.Context, limit int) ([]mail.StoredMessage, error) {
	cur, err := s.coll(collOutbox).Find(ctx, bson.D{},
		options.Find().SetSort(bson.D{{Key: "created_at", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, mapErr(err)
	}
	var docs []messageDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, mapErr(err)
	}
	out := make([]mail.StoredMessage, len(docs))
	for i, d := range docs {
		out[i] = mail.StoredMessage(d)
	}
	return out, nil
}

// Attempt implements mail.OutboxStore.
func (s *Store) Attempt(ctx context.Context, messageID string, n int) (mail.Attempt, error) {
	var d attemptDoc
	if err := s.findByID(ctx, collAttempts, attemptID(messageID, n), &d); err != nil {
		return mail.Attempt{}, err
	}
	return mail.Attempt{
		MessageID: d.MessageID, N: d.N, Owner: d.Owner, LeaseUntil: d.LeaseUntil,
		Outcome: d.Outcome, NextAt: d.NextAt, Error: d.Error, FinishedAt: d.FinishedAt,
	}, nil
}

// ClaimAttempt implements mail.OutboxStore: an insert, so exactly one of
// several workers claiming attempt N wins.
func (s *Store) ClaimAttempt(ctx context.Context, a mail.Attempt) error {
	return s.insert(ctx, collAttempts, toAttemptDoc(a))
}

// FinishAttempt implements mail.OutboxStore.
func (s *Store) FinishAttempt(ctx context.Context, a mail.Attempt) error {
	d := toAttemptDoc(a)
	res, err := s.coll(collAttempts).ReplaceOne(ctx, byID(d.ID), d)
	if err != nil {
		return mapErr(err)
	}
	if res.MatchedCount == 0 {
		return accounts.ErrNotFound
	}
	return nil
}

// DeleteMessage implements mail.OutboxStore: the message first, then its
// attempts, each by _id.
func (s *Store) DeleteMessage(ctx context.Context, messageID string, attempts int) error {
	if _, err := s.deleteByID(ctx, collOutbox, messageID); err != nil {
		return err
	}
	var errs []error
	for n := range attempts {
		if _, err := s.deleteByID(ctx, collAttempts, attemptID(messageID, n)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
