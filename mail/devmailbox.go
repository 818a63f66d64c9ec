package mail

import (
	"context"
	"log/slog"
	"sync"
	"time"
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
	d.mu.Lock()
	if len(d.mails) == devMailboxSize {
		d.mails = append(d.mails[:0], d.mails[1:]...)
	}
	d.mails = append(d.mails, m)
	d.mu.Unlock()
	// Logging the link is the documented development behaviour (DESIGN.md):
	// without SMTP, the log is how a developer receives mail.
	d.logger.InfoContext(ctx, "mail delivered to development mailbox",
		"event", "mail_dev_delivered", "dev_mail_id", m.ID, "to", to, "subject", m.Subject, "link", m.Link)
	return nil
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
