package accounts

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Signup starts an email account. returnTo (checked by the caller, may be
// empty) is carried in the mailed link. Its answer is the same, after the
// same work, whether or not the address is taken (EN-2): the password is
// hashed and a signup request queued; when the mail worker resolves it
// (resolveSignup), a new address gets a verification link and the owner of
// an existing account a notice instead.
//
// Nothing is created but a pending-signup token holding the password hash.
// A later signup for the same address replaces it, and only the holder of the
// mailed link who also knows the password chosen with it can turn it into an
// account, which closes the pre-account-hijacking attacks (LK-1).
func (s *Service) Signup(ctx context.Context, email, password, returnTo string, c Client) error {
	email, err := NormalizeEmail(email)
	if err != nil {
		return err
	}
	if err := s.policy.Check(password, email); err != nil {
		return err
	}
	if err := s.limit(ActSignup, c, email); err != nil {
		return err
	}
	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	if err := s.mailer.Send(ctx, Mail{To: email, Kind: MailSignupRequest, PasswordHash: hash, ReturnTo: returnTo}); err != nil {
		return fmt.Errorf("queue signup: %w", err)
	}
	s.log.Info("signup requested", "event", "signup_requested")
	return nil
}

// resolveSignup turns a queued signup into a pending signup and its
// verification mail, or, for an address that has an account, into the
// "someone tried to sign up" notice.
func (s *Service) resolveSignup(ctx context.Context, ref string, req Mail) (Mail, bool, error) {
	email := req.To
	_, err := s.userByEmail(ctx, email)
	switch {
	case err == nil:
		s.log.Info("signup for existing account", "event", "signup_existing")
		m := Mail{To: email, Kind: MailAccountExists, Link: s.mailLink("/login", "", req.ReturnTo)}
		slot, ok, err := s.reserve(ctx, m, ref)
		if err != nil || !ok {
			return Mail{}, false, err
		}
		if err := s.mailQueued(ctx, slot); err != nil {
			return Mail{}, false, err
		}
		return m, true, nil
	case !errors.Is(err, ErrNotFound):
		return Mail{}, false, fmt.Errorf("find user: %w", err)
	}
	// The quota is taken before the token is replaced: a signup whose mail
	// is held back must not void the link already in the inbox.
	m := Mail{To: email, Kind: MailVerify, ValidFor: s.cfg.VerifyTTL}
	slot, ok, err := s.reserve(ctx, m, ref)
	if err != nil || !ok {
		return Mail{}, false, err
	}
	// A repeated signup keeps the user id of the pending one, so that a
	// verification interrupted after claiming the address can still finish.
	userID := newID()
	if pending, err := s.pendingSignup(ctx, email); err == nil {
		userID = pending.UserID
	} else if !errors.Is(err, ErrNotFound) {
		s.voidMail(ctx, slot)
		return Mail{}, false, fmt.Errorf("find pending signup: %w", err)
	}
	raw, err := s.issueToken(ctx, Token{
		Purpose:      PurposeVerify,
		Subject:      email,
		Email:        email,
		UserID:       userID,
		PasswordHash: req.PasswordHash,
		ReturnTo:     req.ReturnTo,
	}, s.cfg.VerifyTTL)
	if err != nil {
		s.voidMail(ctx, slot)
		return Mail{}, false, err
	}
	if err := s.mailQueued(ctx, slot); err != nil {
		return Mail{}, false, err
	}
	s.log.Info("signup", "event", "signup")
	m.Link = s.mailLink("/verify", raw, req.ReturnTo)
	return m, true, nil
}

// ResendVerification queues a request for a fresh verification link. Every
// address gets the same answer after the same work, one queued request
// (EN-3): whether it is a pending or lapsed signup, and whether the quota
// allows a mail, is decided when the worker resolves the request
// (resolveVerify), after the answer.
func (s *Service) ResendVerification(ctx context.Context, email string, c Client) error {
	email, err := NormalizeEmail(email)
	if err != nil {
		return err
	}
	if err := s.limit(ActResend, c, email); err != nil {
		return err
	}
	if err := s.mailer.Send(ctx, Mail{To: email, Kind: MailVerifyRequest}); err != nil {
		return fmt.Errorf("queue verification request: %w", err)
	}
	s.log.Info("verification resend requested", "event", "verify_resend_requested")
	return nil
}

// resolveVerify mails a fresh link to the newest signup of email, lapsed
// or not, if there is one and the quota allows.
func (s *Service) resolveVerify(ctx context.Context, ref, email string) (Mail, bool, error) {
	pending, err := s.pendingSignup(ctx, email)
	if errors.Is(err, ErrNotFound) {
		return Mail{}, false, nil
	}
	if err != nil {
		return Mail{}, false, fmt.Errorf("find pending signup: %w", err)
	}
	m := Mail{To: email, Kind: MailVerify, ValidFor: s.cfg.VerifyTTL}
	slot, ok, err := s.reserve(ctx, m, ref)
	if err != nil || !ok {
		return Mail{}, false, err
	}
	pending.Hash = ""
	raw, err := s.issueToken(ctx, pending, s.cfg.VerifyTTL)
	if err != nil {
		s.voidMail(ctx, slot)
		return Mail{}, false, err
	}
	if err := s.mailQueued(ctx, slot); err != nil {
		return Mail{}, false, err
	}
	s.log.Info("verification resent", "event", "verify_resent")
	m.Link = s.mailLink("/verify", raw, pending.ReturnTo)
	return m, true, nil
}

// lapsedSignupKeep is how long a signup whose link expired is kept, so that
// its owner can still ask for a new link (or signs in and is told to) and
// finish it with the password they chose. Only its newest link, with that
// password, verifies.
const lapsedSignupKeep = 7 * 24 * time.Hour

// pendingSignup returns the newest signup of an address, live or lapsed
// (its link expired less than lapsedSignupKeep ago), or ErrNotFound.
func (s *Service) pendingSignup(ctx context.Context, email string) (Token, error) {
	head, err := s.store.TokenHead(ctx, PurposeVerify, email)
	if err != nil {
		return Token{}, err
	}
	t, err := s.store.Token(ctx, head)
	if err != nil {
		return Token{}, err
	}
	if t.Purpose != PurposeVerify || !s.now().Before(t.ExpiresAt.Add(lapsedSignupKeep)) {
		return Token{}, ErrNotFound
	}
	return t, nil
}

// Verify turns a pending signup into a user and signs them in. It needs the
// mailed token and the password chosen at signup: the link proves the
// mailbox, the password proves that whoever clicks is whoever signed up.
//
// Without transactions, the steps are ordered so that a retry with the same
// link completes an interrupted verification, and so that exactly one of
// many concurrent redemptions wins: the address claim and the user record
// use the id fixed at signup (idempotent), and the token delete decides.
//
// previous is the session token the client already holds, if any: it is
// ended, as at every sign-in.
func (s *Service) Verify(ctx context.Context, raw, password, previous string, c Client) (User, NewSession, error) {
	if err := s.limit(ActVerify, c, ""); err != nil {
		return User{}, NewSession{}, err
	}
	if len(password) > MaxPasswordBytes {
		return User{}, NewSession{}, ErrInvalidCredentials // no signup has such a password
	}
	t, err := s.liveToken(ctx, PurposeVerify, raw)
	if err != nil {
		return User{}, NewSession{}, err
	}
	if err := s.limit(ActVerify, Client{}, t.Email); err != nil {
		return User{}, NewSession{}, err
	}
	ok, _, err := s.hasher.Verify(ctx, password, t.PasswordHash)
	if err != nil {
		return User{}, NewSession{}, fmt.Errorf("verify password: %w", err)
	}
	if !ok {
		s.log.Info("verification with wrong password", "event", "verify_failed")
		return User{}, NewSession{}, ErrInvalidCredentials
	}
	now := s.now()
	if err := s.claimEmail(ctx, t.Email, t.UserID); errors.Is(err, ErrConflict) {
		// The address became someone's account another way (a provider
		// sign-in, or an older verified signup). Never plant this password
		// on it.
		_, _ = s.store.DeleteToken(ctx, t.Hash)
		s.log.Info("verification for claimed address refused", "event", "verify_refused")
		return User{}, NewSession{}, ErrTokenInvalid
	} else if err != nil {
		return User{}, NewSession{}, err
	}
	u := User{ID: t.UserID, Email: t.Email, PasswordHash: t.PasswordHash, CreatedAt: now, UpdatedAt: now, PasswordChangedAt: now}
	if err := s.store.CreateUser(ctx, u); err != nil && !errors.Is(err, ErrConflict) {
		return User{}, NewSession{}, fmt.Errorf("create user: %w", err)
	}
	won, err := s.store.DeleteToken(ctx, t.Hash)
	if err != nil {
		return User{}, NewSession{}, fmt.Errorf("consume token: %w", err)
	}
	if !won {
		return User{}, NewSession{}, ErrTokenInvalid
	}
	if _, err := s.store.DeleteTokenHead(ctx, PurposeVerify, t.Email); err != nil {
		s.log.Warn("delete verify token head", "error", err)
	}
	if u, err = s.store.User(ctx, t.UserID); err != nil {
		return User{}, NewSession{}, fmt.Errorf("load user: %w", err)
	}
	ns, err := s.startSession(ctx, u.ID, previous, c)
	if err != nil {
		return User{}, NewSession{}, err
	}
	s.log.Info("email verified", "event", "email_verified", "user_id", u.ID)
	return u, ns, nil
}

// danglingAfter is how old a claim whose user record never appeared must be
// before the address is free again. Creation writes the claim and then the
// user within milliseconds; only a crash or outage in between leaves one.
const danglingAfter = time.Hour

// claimEmail makes userID the owner of email. It succeeds if the address is
// already claimed for the same user (a retried creation), and frees a
// dangling claim left by an interrupted creation; otherwise ErrConflict.
func (s *Service) claimEmail(ctx context.Context, email, userID string) error {
	now := s.now()
	for range 2 {
		err := s.store.ClaimEmail(ctx, EmailClaim{Email: email, UserID: userID, ClaimedAt: now})
		if !errors.Is(err, ErrConflict) {
			if err != nil {
				return fmt.Errorf("claim email: %w", err)
			}
			return nil
		}
		claim, err := s.store.EmailClaim(ctx, email)
		if err != nil {
			return fmt.Errorf("find email claim: %w", err)
		}
		if claim.UserID == userID {
			return nil
		}
		if now.Sub(claim.ClaimedAt) < danglingAfter {
			return ErrConflict
		}
		if _, err := s.store.User(ctx, claim.UserID); !errors.Is(err, ErrNotFound) {
			if err != nil {
				return fmt.Errorf("find claiming user: %w", err)
			}
			return ErrConflict
		}
		if err := s.store.ReleaseEmail(ctx, email, claim.UserID); err != nil {
			return fmt.Errorf("release dangling claim: %w", err)
		}
		s.claims.drop(email)
		s.log.Warn("released dangling email claim", "event", "claim_released", "user_id", claim.UserID)
	}
	return ErrConflict
}
