package accounts

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// The mail quota (AB-2): an address gets at most one mail of a group per
// MailInterval and MailPerHour an hour. It is exact, for every instance and
// on every database:
//
//   - each mail takes the next number of its address's ledger with a
//     unique-key insert (one caller wins each number), then looks back at
//     the numbers before it: the quota allows the mail if the newest
//     counted mail was queued at least MailInterval ago and fewer than
//     MailPerHour were queued in the last hour;
//   - a refused request, or one that fails before its mail is queued,
//     voids its number: it consumes no quota, so a person who waits out
//     the interval always gets the next mail;
//   - a number being prepared counts from when it was reserved, so of two
//     concurrent requests the second sees the first; one whose request
//     died (a crash) stops counting after reservationLease.

// reservationLease bounds how long a reserved slot whose mail was never
// queued holds up the next mail. Preparing a mail takes a few database
// writes; a request cannot take longer than its timeout.
const reservationLease = 30 * time.Second

// maxLedgerProbe bounds the numbers tried past the head hint.
const maxLedgerProbe = 1000

// quotaSlot is a mail's reserved place in its address's quota.
type quotaSlot struct {
	ledger string
	n      int
	// unlimited: the kind has no quota; nothing was reserved.
	unlimited bool
}

// reserveMail takes the quota for one mail of kind k to email. ok is false
// when the quota refuses it; the caller must then send nothing, and its
// answer must not change. ref, when not empty, identifies the request: a
// retried resolution of the same request finds and reuses its slot.
func (s *Service) reserveMail(ctx context.Context, email string, k MailKind, ref string) (slot quotaSlot, ok bool, err error) {
	g := mailGroup(k)
	if g == "" {
		return quotaSlot{unlimited: true}, true, nil
	}
	ledger := "mail|" + g + "|" + email
	now := s.now()
	next, err := s.store.MailLedgerNext(ctx, ledger)
	if err != nil {
		return quotaSlot{}, false, fmt.Errorf("read mail ledger: %w", err)
	}
	// Look first: a request the quota refuses writes nothing, so refusals
	// leave nothing behind for later requests to read past.
	if own, ok, err := s.quotaAllows(ctx, ledger, next, ref, now); err != nil || !ok || own >= 0 {
		return quotaSlot{ledger: ledger, n: own}, ok, err
	}
	n := next
	for ; ; n++ {
		if n >= next+maxLedgerProbe {
			return quotaSlot{}, false, fmt.Errorf("mail ledger %d numbers past its hint", maxLedgerProbe)
		}
		err := s.store.ReserveMailSlot(ctx, ledger, MailSlot{N: n, Ref: ref, ReservedAt: now, ExpiresAt: now.Add(time.Hour + s.cfg.MailInterval + reservationLease)})
		if err == nil {
			break
		}
		if !errors.Is(err, ErrConflict) {
			return quotaSlot{}, false, fmt.Errorf("reserve mail slot: %w", err)
		}
	}
	slot = quotaSlot{ledger: ledger, n: n}
	// Look again below the number taken: a concurrent request may have
	// reserved one in between, and then this one must yield.
	own, ok, err := s.quotaAllows(ctx, ledger, n, ref, now)
	if err != nil || !ok || own >= 0 {
		s.voidMail(ctx, slot)
		return quotaSlot{ledger: ledger, n: own}, ok, err
	}
	return slot, true, nil
}

// quotaAllows looks back from slot n-1 and reports whether one more mail may
// be queued at now. own is the number of a slot that ref already holds
// (a retried request, whose mail counts already and may go), or -1.
func (s *Service) quotaAllows(ctx context.Context, ledger string, n int, ref string, now time.Time) (own int, ok bool, err error) {
	counted, last := 0, time.Time{}
	horizon := now.Add(-time.Hour - reservationLease)
	for i := n - 1; i >= 0 && counted < s.cfg.MailPerHour; i-- {
		prev, err := s.store.MailSlot(ctx, ledger, i)
		if errors.Is(err, ErrNotFound) {
			break // swept: older than any limit
		}
		if err != nil {
			return -1, false, fmt.Errorf("read mail slot: %w", err)
		}
		if ref != "" && prev.Ref == ref && !prev.Void {
			return i, true, nil
		}
		if prev.ReservedAt.Before(horizon) {
			break // this and every earlier slot is older than the hour
		}
		at, counts := slotTime(prev, now)
		if !counts || !at.After(now.Add(-time.Hour)) {
			continue
		}
		counted++
		if at.After(last) {
			last = at
		}
	}
	if counted >= s.cfg.MailPerHour || (counted > 0 && now.Before(last.Add(s.cfg.MailInterval))) {
		return -1, false, nil
	}
	return -1, true, nil
}

// reserve is reserveMail for the mail m: when the quota refuses it, the
// hold-back is noted (heldBack) and ok is false.
func (s *Service) reserve(ctx context.Context, m Mail, ref string) (quotaSlot, bool, error) {
	slot, ok, err := s.reserveMail(ctx, m.To, m.Kind, ref)
	if err == nil && !ok {
		s.heldBack(ctx, m)
	}
	return slot, ok, err
}

// slotTime says whether a slot counts against the quota and from when:
// a queued mail from when it was queued, one being prepared from when it was
// reserved (until its lease runs out), a void one not at all.
func slotTime(sl MailSlot, now time.Time) (time.Time, bool) {
	switch {
	case sl.Void:
		return time.Time{}, false
	case !sl.QueuedAt.IsZero():
		return sl.QueuedAt, true
	case now.Sub(sl.ReservedAt) < reservationLease:
		return sl.ReservedAt, true
	default:
		return time.Time{}, false // its request died before queueing
	}
}

// mailQueued records that the mail of slot was queued, so it counts from now.
func (s *Service) mailQueued(ctx context.Context, slot quotaSlot) error {
	if slot.unlimited {
		return nil
	}
	if err := s.store.FinishMailSlot(ctx, slot.ledger, slot.n, s.now(), false); err != nil {
		return fmt.Errorf("record queued mail: %w", err)
	}
	return nil
}

// voidMail gives back a slot whose mail was not queued, best effort: a slot
// left reserved stops counting after reservationLease.
func (s *Service) voidMail(ctx context.Context, slot quotaSlot) {
	if slot.unlimited {
		return
	}
	if err := s.store.FinishMailSlot(context.WithoutCancel(ctx), slot.ledger, slot.n, time.Time{}, true); err != nil {
		s.log.Warn("void mail slot", "error", err)
	}
}

// send queues a mail if the address's quota allows it. A refused quota is not
// an error: the caller's answer must not change.
func (s *Service) send(ctx context.Context, m Mail) error {
	slot, ok, err := s.reserve(ctx, m, "")
	if err != nil || !ok {
		return err
	}
	return s.queue(ctx, slot, m)
}

// queue queues m, which holds slot, and records it against the quota; a
// mail that cannot be queued gives its slot back.
func (s *Service) queue(ctx context.Context, slot quotaSlot, m Mail) error {
	if err := s.mailer.Send(ctx, m); err != nil {
		s.voidMail(ctx, slot)
		return fmt.Errorf("queue %s mail: %w", m.Kind, err)
	}
	if err := s.mailQueued(ctx, slot); err != nil {
		// The mail is queued; its slot still counts from its reservation
		// until the lease ends, which is all the caller can lose.
		s.log.Warn("record queued mail", "error", err)
	}
	return nil
}

// heldBack notes a mail the quota refused, for the development mailbox; it
// is logged without the address or the link.
func (s *Service) heldBack(ctx context.Context, m Mail) {
	s.log.Info("mail held back by the quota", "event", "mail_quota", "kind", string(m.Kind))
	if s.held != nil {
		s.held(ctx, m)
	}
}
