package accounts

import (
	"context"
	"errors"
	"fmt"
)

// ForgotPassword queues a request for a reset link. Every address gets the
// same answer after the same work, one queued request (EN-3): whether the
// address has an account, and whether the quota allows a mail, is decided
// when the worker resolves the request (resolveReset), after the answer. A
// login lockout does not block it: a reset is how a locked-out owner gets
// back in.
func (s *Service) ForgotPassword(ctx context.Context, email string, c Client) error {
	email, err := NormalizeEmail(email)
	if err != nil {
		return err
	}
	if err := s.limit(ActForgot, c, email); err != nil {
		return err
	}
	if err := s.mailer.Send(ctx, Mail{To: email, Kind: MailResetRequest}); err != nil {
		return fmt.Errorf("queue reset request: %w", err)
	}
	s.log.Info("password reset requested", "event", "reset_requested")
	return nil
}

// resolveReset mails a reset link if email belongs to a user and the quota
// allows.
func (s *Service) resolveReset(ctx context.Context, ref, email string) (Mail, bool, error) {
	u, err := s.userByEmail(ctx, email)
	if errors.Is(err, ErrNotFound) {
		s.log.Info("password reset for unknown address", "event", "reset_requested_unknown")
		return Mail{}, false, nil
	}
	if err != nil {
		return Mail{}, false, fmt.Errorf("find user: %w", err)
	}
	m := Mail{To: u.Email, Kind: MailReset, ValidFor: s.cfg.ResetTTL}
	slot, ok, err := s.reserve(ctx, m, ref)
	if err != nil || !ok {
		return Mail{}, false, err
	}
	raw, err := s.issueToken(ctx, Token{Purpose: PurposeReset, Subject: u.ID, Email: u.Email, UserID: u.ID}, s.cfg.ResetTTL)
	if err != nil {
		s.voidMail(ctx, slot)
		return Mail{}, false, err
	}
	if err := s.mailQueued(ctx, slot); err != nil {
		return Mail{}, false, err
	}
	s.log.Info("password reset link issued", "event", "reset_link_issued", "user_id", u.ID)
	m.Link = s.mailLink("/password/reset", raw, "")
	return m, true, nil
}

// ResolveMail turns a queued request into the mail to send, when the
// outbox's worker gets to it: ok is false when there is nothing to send (no
// such account, or the quota holds the mail back). The worker calls it at
// each delivery attempt; ref, the queued request's id, makes a retry reuse
// the quota its first attempt took. The new link replaces any link issued
// at an earlier attempt, whose mail was not delivered. Other kinds are
// returned as they are.
func (s *Service) ResolveMail(ctx context.Context, ref string, m Mail) (Mail, bool, error) {
	switch m.Kind {
	case MailSignupRequest:
		return s.resolveSignup(ctx, ref, m)
	case MailResetRequest:
		return s.resolveReset(ctx, ref, m.To)
	case MailVerifyRequest:
		return s.resolveVerify(ctx, ref, m.To)
	default:
		return m, true, nil
	}
}

// ResetPassword sets a new password with a mailed reset token. Every session
// of the user ends, pending tokens are cancelled, a lockout is lifted, and
// the owner is told by mail (SE-5). The new password is checked before the
// token is used, so a refused password does not burn the link.
func (s *Service) ResetPassword(ctx context.Context, raw, password string, c Client) error {
	if err := s.limit(ActReset, c, ""); err != nil {
		return err
	}
	t, err := s.liveToken(ctx, PurposeReset, raw)
	if err != nil {
		return err
	}
	if err := s.policy.Check(password, t.Email); err != nil {
		return err
	}
	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	won, err := s.store.DeleteToken(ctx, t.Hash)
	if err != nil {
		return fmt.Errorf("consume token: %w", err)
	}
	if !won {
		return ErrTokenInvalid
	}
	u, err := s.store.User(ctx, t.UserID)
	if errors.Is(err, ErrNotFound) {
		return ErrTokenInvalid
	}
	if err != nil {
		return fmt.Errorf("find user: %w", err)
	}
	if err := s.setPassword(ctx, u, hash, ""); err != nil {
		return err
	}
	if err := s.store.ClearLoginFailures(ctx, u.Email); err != nil {
		s.log.Warn("clear login failures", "error", err)
	}
	s.log.Info("password reset", "event", "password_reset", "user_id", u.ID)
	return nil
}

// ChangePassword replaces the password of a signed-in user, who must give
// the current one (PW-5). Every other session ends (SE-5); this one stays.
func (s *Service) ChangePassword(ctx context.Context, a Auth, current, password string, c Client) error {
	if err := s.limit(ActChange, c, a.User.Email); err != nil {
		return err
	}
	u, err := s.store.User(ctx, a.User.ID)
	if err != nil {
		return fmt.Errorf("find user: %w", err)
	}
	if !u.HasPassword() {
		// Setting a first password (social-only users) is SetPassword's job.
		return ErrInvalidCredentials
	}
	if len(current) > MaxPasswordBytes {
		return ErrInvalidCredentials
	}
	if err := s.policy.Check(password, u.Email); err != nil {
		return err
	}
	// A wrong current password counts toward the address's login lockout,
	// and a locked-out address cannot try one here: a stolen session must
	// not become a password-guessing oracle (PW-5, AB-1).
	guess, err := s.beginGuess(ctx, u.Email)
	if err != nil {
		return err
	}
	ok, _, err := s.hasher.Verify(ctx, current, u.PasswordHash)
	if err != nil {
		s.dropGuess(ctx, guess)
		return fmt.Errorf("verify password: %w", err)
	}
	if !ok {
		s.log.Info("password change with wrong password", "event", "password_change_failed", "user_id", u.ID)
		return s.guessFailed(ctx, guess)
	}
	s.guessSucceeded(ctx, guess)
	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	if err := s.setPassword(ctx, u, hash, a.Session.ID); err != nil {
		return err
	}
	s.log.Info("password changed", "event", "password_changed", "user_id", u.ID)
	return nil
}

// setPassword stores a new hash, then ends the user's other sessions,
// cancels pending reset links and sends the notice. The hash is written
// first: if a later step fails, the user is not left with the old password.
func (s *Service) setPassword(ctx context.Context, u User, hash, keepSession string) error {
	if err := s.store.SetPassword(ctx, u.ID, hash, s.now()); err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	if err := s.endSessions(ctx, u.ID, keepSession); err != nil {
		return err
	}
	s.cache.dropUser(u.ID, "") // the kept session's cached user has the old hash
	if err := s.cancelTokens(ctx, PurposeReset, u.ID); err != nil {
		return err
	}
	return s.send(ctx, Mail{To: u.Email, Kind: MailPasswordChanged, Link: s.mailLink("/password/forgot", "", "")})
}
