package mail

import (
	"context"
	"time"

	"github.com/gatehouse/gatehouse/accounts"
)

// Outcomes of an Attempt.
const (
	// OutcomeInFlight marks an attempt whose claimer has not reported back yet.
	OutcomeInFlight = ""
	// OutcomeSent marks an attempt whose mail the transport accepted.
	OutcomeSent = "sent"
	// OutcomeFailed marks an attempt that did not deliver; NextAt says when to retry.
	OutcomeFailed = "failed"
)

// StoredMessage is an immutable queued mail. It never holds the link in the
// clear: the link can carry a secret token, and the database must not.
type StoredMessage struct {
	ID     string // random, 16 bytes hex
	To     string
	Kind   accounts.MailKind
	Sealed []byte // nonce||ciphertext of the JSON template data
	// CreatedAt orders the queue.
	CreatedAt time.Time
}

// Attempt is one delivery attempt of a message. Attempts are numbered 0,1,2…;
// claiming attempt N is an insert that fails with accounts.ErrConflict if another
// worker already claimed it, which is what makes a claim exclusive without
// transactions or conditional updates (the embedded FerretDB has neither atomic
// conditional updates nor transactions; inserts with a unique _id ARE atomic).
// An attempt with no Outcome whose lease has expired belongs to a crashed worker
// and counts as failed.
type Attempt struct {
	MessageID  string
	N          int
	Owner      string // worker instance id
	LeaseUntil time.Time
	Outcome    string    // OutcomeInFlight, OutcomeSent or OutcomeFailed
	NextAt     time.Time // for failed: earliest time of the next attempt
	Error      string    // short error text for failed (never containing the link)
	FinishedAt time.Time
}

// OutboxStore keeps the outbox durably. It is shared by every gateway instance;
// the only atomic operation the worker relies on is the insert of an attempt
// with a unique (MessageID, N) key. Methods return accounts.ErrUnavailable
// (wrapped) when the database cannot be reached.
type OutboxStore interface {
	// AddMessage inserts a queued message.
	AddMessage(ctx context.Context, m StoredMessage) error
	// Message returns a queued message or accounts.ErrNotFound once it was deleted.
	// A worker calls it after winning a claim: a message listed a moment ago may
	// have been delivered and deleted by another worker since, and deleting its
	// attempts makes their numbers claimable again.
	Message(ctx context.Context, id string) (StoredMessage, error)
	// PendingMessages returns up to limit queued messages, oldest first.
	PendingMessages(ctx context.Context, limit int) ([]StoredMessage, error)
	// Attempt returns attempt n of a message or accounts.ErrNotFound.
	Attempt(ctx context.Context, messageID string, n int) (Attempt, error)
	// ClaimAttempt inserts a new attempt; accounts.ErrConflict if attempt N exists.
	ClaimAttempt(ctx context.Context, a Attempt) error
	// FinishAttempt records the outcome of an attempt; only its claimer calls it.
	FinishAttempt(ctx context.Context, a Attempt) error
	// DeleteMessage removes a message and its attempts 0..attempts-1. It must
	// remove the message before the attempts (see Message), and it succeeds if
	// they are already gone, so that cleanups can be repeated.
	DeleteMessage(ctx context.Context, messageID string, attempts int) error
}
