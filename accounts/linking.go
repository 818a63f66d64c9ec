package accounts

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// linkTTL bounds how long a pending link waits for its proof.
const linkTTL = time.Hour

// pendingLink stores a provider identity that wants to be linked to owner.
func (s *Service) pendingLink(ctx context.Context, owner User, p Profile, returnTo string) (*PendingLink, error) {
	prof := p
	raw, err := s.issueToken(ctx, Token{
		Purpose: PurposeLink, Subject: owner.ID, Email: owner.Email, UserID: owner.ID,
		Profile: &prof, ReturnTo: returnTo,
	}, linkTTL)
	if err != nil {
		return nil, err
	}
	s.log.Info("provider sign-in for existing account needs proof", "event", "link_pending", "provider", p.Provider, "user_id", owner.ID)
	return &PendingLink{Token: raw, Email: owner.Email, Provider: p.Provider, Profile: p, ReturnTo: returnTo}, nil
}

// PendingLink returns the pending link of a link token, for its page.
func (s *Service) PendingLink(ctx context.Context, raw string) (PendingLink, error) {
	t, err := s.liveToken(ctx, PurposeLink, raw)
	if err != nil {
		return PendingLink{}, err
	}
	u, err := s.store.User(ctx, t.UserID)
	if errors.Is(err, ErrNotFound) {
		return PendingLink{}, ErrTokenInvalid
	}
	if err != nil {
		return PendingLink{}, fmt.Errorf("find user: %w", err)
	}
	return PendingLink{Token: raw, Email: t.Email, Provider: t.Profile.Provider, Profile: *t.Profile, ReturnTo: t.ReturnTo, HasPassword: u.HasPassword()}, nil
}

// LinkWithPassword links a pending identity after its owner proved the
// account with its password, and signs them in.
func (s *Service) LinkWithPassword(ctx context.Context, raw, password, previous string, c Client) (User, NewSession, string, error) {
	t, err := s.liveToken(ctx, PurposeLink, raw)
	if err != nil {
		return User{}, NewSession{}, "", err
	}
	ctx, u, release, err := s.passwordSignIn(ctx, t.Email, password, c, func(ctx context.Context) (User, error) {
		return s.store.User(ctx, t.UserID)
	})
	if err != nil {
		return User{}, NewSession{}, "", err
	}
	defer release()
	return s.completeLink(ctx, t, u, previous, c)
}

// RequestLinkMail mails the owner of the pending link's account a
// confirmation link. It works only in the browser that holds the pending
// link, so a person who merely reads the mail links nothing.
func (s *Service) RequestLinkMail(ctx context.Context, raw string, c Client) error {
	t, err := s.liveToken(ctx, PurposeLink, raw)
	if err != nil {
		return err
	}
	if err := s.limit(ActResend, c, t.Email); err != nil {
		return err
	}
	account := firstNonEmpty(t.Profile.Email, t.Profile.Username, t.Profile.Name)
	m := Mail{
		To: t.Email, Kind: MailLinkConfirm, ValidFor: linkTTL,
		Provider: firstNonEmpty(s.cfg.ProviderLabels[t.Profile.Provider], t.Profile.Provider), ProviderAccount: account,
	}
	slot, ok, err := s.reserve(ctx, m, "")
	if err != nil || !ok {
		return err
	}
	confirm, err := s.issueToken(ctx, Token{
		Purpose: PurposeLinkConfirm, Subject: t.UserID, Email: t.Email, UserID: t.UserID,
		Profile: t.Profile, LinkHash: t.Hash, ReturnTo: t.ReturnTo,
	}, linkTTL)
	if err != nil {
		s.voidMail(ctx, slot)
		return err
	}
	m.Link = s.mailLink("/auth/link/confirm", confirm, "")
	return s.queue(ctx, slot, m)
}

// CheckLinkConfirmation reports whether a mailed confirmation can be used
// from the browser holding linkRaw, without using it.
func (s *Service) CheckLinkConfirmation(ctx context.Context, confirmRaw, linkRaw string) (PendingLink, error) {
	t2, err := s.liveToken(ctx, PurposeLinkConfirm, confirmRaw)
	if err != nil {
		return PendingLink{}, err
	}
	if !validTokenSyntax(linkRaw) || !equalHash(t2.LinkHash, hashSecret(linkRaw)) {
		return PendingLink{}, ErrTokenInvalid
	}
	return s.PendingLink(ctx, linkRaw)
}

// ConfirmLink links a pending identity with the mailed confirmation,
// presented from the browser that holds the pending link, and signs in.
func (s *Service) ConfirmLink(ctx context.Context, confirmRaw, linkRaw, previous string, c Client) (User, NewSession, string, error) {
	if err := s.limit(ActVerify, c, ""); err != nil {
		return User{}, NewSession{}, "", err
	}
	if _, err := s.CheckLinkConfirmation(ctx, confirmRaw, linkRaw); err != nil {
		return User{}, NewSession{}, "", err
	}
	t2, err := s.liveToken(ctx, PurposeLinkConfirm, confirmRaw)
	if err != nil {
		return User{}, NewSession{}, "", err
	}
	won, err := s.store.DeleteToken(ctx, t2.Hash)
	if err != nil {
		return User{}, NewSession{}, "", fmt.Errorf("consume token: %w", err)
	}
	if !won {
		return User{}, NewSession{}, "", ErrTokenInvalid
	}
	t, err := s.liveToken(ctx, PurposeLink, linkRaw)
	if err != nil {
		return User{}, NewSession{}, "", err
	}
	u, err := s.store.User(ctx, t.UserID)
	if err != nil {
		return User{}, NewSession{}, "", fmt.Errorf("find user: %w", err)
	}
	return s.completeLink(ctx, t, u, previous, c)
}

// completeLink links the identity of a pending link token to u, uses the
// token up, and signs in.
func (s *Service) completeLink(ctx context.Context, t Token, u User, previous string, c Client) (User, NewSession, string, error) {
	if err := s.link(ctx, u.ID, *t.Profile); err != nil {
		return User{}, NewSession{}, "", err
	}
	if _, err := s.store.DeleteToken(ctx, t.Hash); err != nil {
		s.log.Warn("delete link token", "error", err)
	}
	ns, err := s.startSession(ctx, u.ID, previous, c)
	if err != nil {
		return User{}, NewSession{}, "", err
	}
	s.log.Info("login", "event", "login_succeeded", "method", "link", "user_id", u.ID)
	return u, ns, t.ReturnTo, nil
}
