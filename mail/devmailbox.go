package mail

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/accounts"
)

// devMailboxSize bounds the memory a development mailbox can hold.
const devMailboxSize = 100

var _ Transport = (*DevMailbox)(nil)

// Delivered is a mail kept by a DevMailbox.
type Delivered struct {
	ID      string
	To      string
	Subject string
	Text    string
	HTML    string
	Link    string
	At      time.Time
	// Held: the mail quota held this mail back; nothing was sent, and
	// Subject names its kind.
	Held bool
}

// DevMailbox is the transport used when no SMTP server is configured: it keeps
// the last 100 mails in memory for a development page and logs each one with
// its link, so that a developer can follow it. Because it logs links, which
// carry tokens, it must never be used in production.
type DevMailbox struct {
	logger *slog.Logger
	now    func() time.Time

	mu    sync.Mutex
	mails []Delivered // oldest first, at most devMailboxSize
}

// NewDevMailbox returns an empty DevMailbox. now is the clock (time.Now if nil).
func NewDevMailbox(logger *slog.Logger, now func() time.Time) *DevMailbox {
	if now == nil {
		now = time.Now
	}
	return &DevMailbox{logger: logger, now: now}
}

// Deliver keeps msg and logs it. It never fails.
func (d *DevMailbox) Deliver(ctx context.Context, to string, msg Rendered) error {
	m := Delivered{
		ID:      newID(),
		To:      to,
		Subject: msg.Subject,
		Text:    msg.Text,
		HTML:    msg.HTML,
		Link:    msg.Link,
		At:      d.now(),
	}
	d.keep(m)
	// Logging the link is the documented development behaviour (DESIGN.md):
	// without SMTP, the log is how a developer receives mail.
	d.logger.InfoContext(ctx, "mail delivered to development mailbox",
		"event", "mail_dev_delivered", "dev_mail_id", m.ID, "to", to, "subject", m.Subject, "link", m.Link)
	return nil
}

// HoldBack lists a mail that the quota held back, so that a developer who
// waits for one sees why none came. It has no link: none was made.
func (d *DevMailbox) HoldBack(ctx context.Context, m accounts.Mail) {
	d.keep(Delivered{ID: newID(), To: m.To, Subject: string(m.Kind), At: d.now(), Held: true})
	d.logger.InfoContext(ctx, "mail held back by the quota (development mailbox)", "event", "mail_dev_held", "to", m.To, "kind", m.Kind)
}

// keep adds m, dropping the oldest beyond devMailboxSize.
func (d *DevMailbox) keep(m Delivered) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.mails) == devMailboxSize {
		d.mails = append(d.mails[:0], d.mails[1:]...)
	}
	d.mails = append(d.mails, m)
}

// Messages returns the kept mails, newest first.
func (d *DevMailbox) Messages() []Delivered {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Delivered, len(d.mails))
	for i, m := range d.mails {
		out[len(d.mails)-1-i] = m
	}
	return out
}

// Message returns the kept mail with the given ID.
func (d *DevMailbox) Message(id string) (Delivered, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, m := range d.mails {
		if m.ID == id {
			return m, true
		}
	}
	return Delivered{}, false
}
