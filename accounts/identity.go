package accounts

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Profile is what a provider vouches for after a successful sign-in there.
// EmailVerified must come from the provider's own assurance (Google's
// email_verified in a validated id_token, GitHub's primary and verified
// address), never be assumed.
type Profile struct {
	Provider      string
	Subject       string // the provider's stable id for the person
	Email         string
	EmailVerified bool
	Name          string
	Username      string
	AvatarURL     string
}

// Identity is a provider account linked to a user. It is keyed by
// (Provider, Subject): a returning person is recognised by it, never by
// email (OA-4).
type Identity struct {
	Provider      string
	Subject       string
	UserID        string
	Email         string
	EmailVerified bool
	Name          string
	Username      string
	AvatarURL     string
	LinkedAt      time.Time
}

// IdentityStore keeps identities by (provider, subject), and for each user
// and provider a claim naming the linked subject: one account per provider
// per user, and a user's identities found by key without a query.
type IdentityStore interface {
	// InsertIdentity stores an identity; ErrConflict if (provider, subject) exists.
	InsertIdentity(ctx context.Context, id Identity) error
	// Identity returns the identity of (provider, subject), or ErrNotFound.
	Identity(ctx context.Context, provider, subject string) (Identity, error)
	// DeleteIdentity deletes an identity and reports whether it existed.
	DeleteIdentity(ctx context.Context, provider, subject string) (bool, error)
	// ClaimProvider records that the user has subject linked at provider;
	// ErrConflict if the user has one linked there already.
	ClaimProvider(ctx context.Context, userID, provider, subject string) error
	// ProviderClaim returns the subject the user has linked at provider, or ErrNotFound.
	ProviderClaim(ctx context.Context, userID, provider string) (string, error)
	// ReleaseProvider deletes the user's claim at provider.
	ReleaseProvider(ctx context.Context, userID, provider string) error
}

// SocialResult is the outcome of a provider sign-in: either a signed-in
// user, or a pending link that the owner of an existing account must
// confirm first.
type SocialResult struct {
	User    User
	Session NewSession
	// Created is true when the sign-in created the user.
	Created bool
	// Pending, when set, means nothing was signed in: an account with the
	// provider's verified address exists, and its owner must prove it.
	Pending *PendingLink
}

// PendingLink is a provider identity waiting to be linked to an account.
type PendingLink struct {
	// Token is the secret the browser keeps (in a cookie) until the proof.
	Token    string
	Email    string
	Provider string
	Profile  Profile
	ReturnTo string
	// HasPassword says whether the account can be proved with a password;
	// the mailed confirmation works for every account.
	HasPassword bool
}

// verifiedEmail returns the normalized address a provider verified.
func verifiedEmail(p Profile) (string, error) {
	if !p.EmailVerified || p.Email == "" {
		return "", ErrProviderEmailUnverified
	}
	email, err := NormalizeEmail(p.Email)
	if err != nil {
		return "", ErrProviderEmailUnverified
	}
	return email, nil
}

// link links a provider identity to a user. It refuses an identity linked
// to someone else (ErrIdentityLinked) and a second account of a provider
// the user already has (ErrProviderLinked); linking the same identity
// again is a no-op.
func (s *Service) link(ctx context.Context, userID string, p Profile) error {
	if err := s.store.ClaimProvider(ctx, userID, p.Provider, p.Subject); errors.Is(err, ErrConflict) {
		sub, err := s.store.ProviderClaim(ctx, userID, p.Provider)
		if err != nil {
			return fmt.Errorf("find provider claim: %w", err)
		}
		if sub != p.Subject {
			if _, err := s.store.Identity(ctx, p.Provider, sub); !errors.Is(err, ErrNotFound) {
				return ErrProviderLinked
			}
			// A stale claim from an interrupted unlink: take it over.
			if err := s.store.ReleaseProvider(ctx, userID, p.Provider); err != nil {
				return fmt.Errorf("release stale provider claim: %w", err)
			}
			if err := s.store.ClaimProvider(ctx, userID, p.Provider, p.Subject); err != nil {
				return fmt.Errorf("claim provider: %w", err)
			}
		}
	} else if err != nil {
		return fmt.Errorf("claim provider: %w", err)
	}
	email, _ := NormalizeEmail(p.Email)
	id := Identity{
		Provider: p.Provider, Subject: p.Subject, UserID: userID, Email: email, EmailVerified: p.EmailVerified,
		Name: p.Name, Username: p.Username, AvatarURL: p.AvatarURL, LinkedAt: s.now(),
	}
	if err := s.store.InsertIdentity(ctx, id); errors.Is(err, ErrConflict) {
		existing, err := s.store.Identity(ctx, p.Provider, p.Subject)
		if err != nil {
			return fmt.Errorf("find identity: %w", err)
		}
		if existing.UserID != userID {
			if err := s.store.ReleaseProvider(ctx, userID, p.Provider); err != nil {
				return fmt.Errorf("undo provider claim: %w", err)
			}
			return ErrIdentityLinked
		}
	} else if err != nil {
		return fmt.Errorf("insert identity: %w", err)
	}
	s.cache.dropUser(userID, "")
	s.log.Info("identity linked", "event", "identity_linked", "provider", p.Provider, "user_id", userID)
	return nil
}

func firstNonEmpty(list ...string) string {
	for _, s := range list {
		if s != "" {
			return s
		}
	}
	return ""
}
