package accounts

import (
	"context"
	"errors"
	"fmt"
)

// SocialSignIn signs in the person a provider vouches for (DESIGN.md,
// Linking):
//   - identity already linked: sign in its user;
//   - unknown identity, verified address, no user with it: create the user
//     (verified, no password); a pending signup for the address and its
//     password are discarded, so whoever planted them gets nothing (LK-1);
//   - unknown identity, verified address of an existing user: no silent
//     merge (LK-2); a pending link is returned for the owner to prove,
//     unless auto-linking of verified addresses is configured;
//   - unknown identity without a verified address: refused (LK-3).
func (s *Service) SocialSignIn(ctx context.Context, p Profile, returnTo, previous string, c Client) (SocialResult, error) {
	for range 3 { // a concurrent sign-in of the same identity may win a race once
		res, retry, err := s.socialSignIn(ctx, p, returnTo, previous, c)
		if !retry {
			return res, err
		}
	}
	return SocialResult{}, fmt.Errorf("social sign-in: %w", ErrConflict)
}

func (s *Service) socialSignIn(ctx context.Context, p Profile, returnTo, previous string, c Client) (res SocialResult, retry bool, err error) {
	if p.Provider == "" || p.Subject == "" {
		return SocialResult{}, false, fmt.Errorf("social sign-in: empty provider identity")
	}
	id, err := s.store.Identity(ctx, p.Provider, p.Subject)
	switch {
	case err == nil:
		u, err := s.identityUser(ctx, id)
		if errors.Is(err, ErrNotFound) {
			return SocialResult{}, true, nil // the half-created user was undone; start over
		}
		if err != nil {
			return SocialResult{}, false, err
		}
		return s.socialSession(ctx, u, false, previous, c)
	case !errors.Is(err, ErrNotFound):
		return SocialResult{}, false, fmt.Errorf("find identity: %w", err)
	}

	email, err := verifiedEmail(p)
	if err != nil {
		s.log.Info("provider sign-in without verified email", "event", "social_unverified", "provider", p.Provider)
		return SocialResult{}, false, err
	}
	owner, err := s.userByEmail(ctx, email)
	switch {
	case err == nil:
		if s.cfg.AutoLinkVerifiedEmail {
			if err := s.link(ctx, owner.ID, p); err != nil {
				return SocialResult{}, false, err
			}
			return s.socialSession(ctx, owner, false, previous, c)
		}
		pl, err := s.pendingLink(ctx, owner, p, returnTo)
		return SocialResult{Pending: pl}, false, err
	case !errors.Is(err, ErrNotFound):
		return SocialResult{}, false, fmt.Errorf("find user: %w", err)
	}

	// A new user. The identity is written first, naming the id the user
	// will get, so that an interrupted creation is completed by the next
	// sign-in (identityUser) instead of leaving a half-made account.
	now := s.now()
	id = Identity{
		Provider: p.Provider, Subject: p.Subject, UserID: newID(), Email: email, EmailVerified: true,
		Name: p.Name, Username: p.Username, AvatarURL: p.AvatarURL, LinkedAt: now,
	}
	if err := s.store.InsertIdentity(ctx, id); errors.Is(err, ErrConflict) {
		return SocialResult{}, true, nil
	} else if err != nil {
		return SocialResult{}, false, fmt.Errorf("insert identity: %w", err)
	}
	u, err := s.identityUser(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return SocialResult{}, true, nil // the address was claimed meanwhile: now it is a link
	}
	if err != nil {
		return SocialResult{}, false, err
	}
	s.log.Info("user created by provider sign-in", "event", "signup_social", "provider", p.Provider, "user_id", u.ID)
	return s.socialSession(ctx, u, true, previous, c)
}

// identityUser returns the user of an identity, completing its creation if
// a previous sign-in was interrupted: the provider claim, the address claim
// and the user record are written idempotently with the identity's user id.
// If the address turns out to belong to someone else, the identity is
// removed again and ErrNotFound returned.
func (s *Service) identityUser(ctx context.Context, id Identity) (User, error) {
	u, err := s.store.User(ctx, id.UserID)
	if err == nil {
		return u, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return User{}, fmt.Errorf("find user: %w", err)
	}
	if err := s.store.ClaimProvider(ctx, id.UserID, id.Provider, id.Subject); err != nil && !errors.Is(err, ErrConflict) {
		return User{}, fmt.Errorf("claim provider: %w", err)
	}
	if err := s.claimEmail(ctx, id.Email, id.UserID); errors.Is(err, ErrConflict) {
		if _, err := s.store.DeleteIdentity(ctx, id.Provider, id.Subject); err != nil {
			return User{}, fmt.Errorf("undo identity: %w", err)
		}
		if err := s.store.ReleaseProvider(ctx, id.UserID, id.Provider); err != nil {
			return User{}, fmt.Errorf("undo provider claim: %w", err)
		}
		return User{}, ErrNotFound
	} else if err != nil {
		return User{}, err
	}
	now := s.now()
	u = User{ID: id.UserID, Email: id.Email, CreatedAt: now, UpdatedAt: now}
	if err := s.store.CreateUser(ctx, u); err != nil && !errors.Is(err, ErrConflict) {
		return User{}, fmt.Errorf("create user: %w", err)
	}
	// The address is now an account: a pending signup for it, with
	// whatever password someone chose, is void (LK-1).
	if err := s.cancelTokens(ctx, PurposeVerify, id.Email); err != nil {
		return User{}, err
	}
	return s.store.User(ctx, id.UserID)
}

func (s *Service) socialSession(ctx context.Context, u User, created bool, previous string, c Client) (SocialResult, bool, error) {
	ns, err := s.startSession(ctx, u.ID, previous, c)
	if err != nil {
		return SocialResult{}, false, err
	}
	s.log.Info("login", "event", "login_succeeded", "method", "provider", "user_id", u.ID)
	return SocialResult{User: u, Session: ns, Created: created}, false, nil
}
