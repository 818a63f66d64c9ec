// Package mail sends Gatehouse's mails: embedded, overridable templates, a
// durable outbox whose worker delivers with retries and exponential backoff,
// and the transports (SMTP, and an in-memory mailbox for development).
//
// A mail goes into the outbox (a database shared by every gateway instance)
// before anything else happens, so an SMTP outage delays mail and loses none.
// Workers of several instances claim delivery attempts with leases, so each
// mail is sent once.
package mail

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	netmail "net/mail"
	"time"

	"github.com/gatehouse/gatehouse/accounts"
)

var _ accounts.Mailer = (*Outbox)(nil)

// Outbox queues mails durably. It implements accounts.Mailer.
type Outbox struct {
	store  OutboxStore
	sealer *sealer
	now    func() time.Time
	// poke wakes this process's worker so that a mail goes out at once rather
	// than at the next poll; workers of other instances find it by polling.
	poke chan struct{}
}

// NewOutbox returns an Outbox on store whose links are sealed with key, which
// must be KeySize random bytes and the same on every instance. now is the
// clock (time.Now if nil).
func NewOutbox(store OutboxStore, key []byte, now func() time.Time) (*Outbox, error) {
	if store == nil {
		return nil, errors.New("new outbox: nil store")
	}
	s, err := newSealer(key)
	if err != nil {
		return nil, fmt.Errorf("new outbox: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	return &Outbox{store: store, sealer: s, now: now, poke: make(chan struct{}, 1)}, nil
}

// Send queues m and returns once it is stored. An unparsable recipient gives
// accounts.ErrInvalidEmail; store errors are wrapped, so
// accounts.ErrUnavailable stays matchable.
func (o *Outbox) Send(ctx context.Context, m accounts.Mail) error {
	// A recipient SMTP would refuse is caught here, synchronously, rather than
	// after a day of retries.
	if _, err := netmail.ParseAddress(m.To); err != nil {
		return fmt.Errorf("queue mail: %w: %w", accounts.ErrInvalidEmail, err)
	}
	if !knownKind(m.Kind) {
		return fmt.Errorf("queue mail: unknown kind %q", m.Kind)
	}
	sm := StoredMessage{
		ID:        newID(),
		To:        m.To,
		Kind:      m.Kind,
		CreatedAt: o.now().UTC(),
	}
	sealed, err := o.sealer.seal(sm, sealedData{
		Link: m.Link, Email: m.To, ValidFor: m.ValidFor, Provider: m.Provider, ProviderAccount: m.ProviderAccount,
		PasswordHash: m.PasswordHash, ReturnTo: m.ReturnTo,
	})
	if err != nil {
		return fmt.Errorf("queue mail: %w", err)
	}
	sm.Sealed = sealed
	if err := o.store.AddMessage(ctx, sm); err != nil {
		return fmt.Errorf("queue mail: %w", err)
	}
	select {
	case o.poke <- struct{}{}:
	default: // a wake-up is already pending
	}
	return nil
}

// newID returns 16 random bytes in hex: unguessable and unique without
// coordination between instances.
func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails since Go 1.24 (it crashes the program instead)
	return hex.EncodeToString(b)
}
