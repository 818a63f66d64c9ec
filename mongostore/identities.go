package mongostore

import (
	"context"
	"time"

	"github.com/gatehouse/gatehouse/accounts"
	"github.com/gatehouse/gatehouse/providers"
)

var _ providers.StateStore = (*Store)(nil)

type identityDoc struct {
	ID            string    `bson:"_id"` // "<provider>:<subject>"
	Provider      string    `bson:"provider"`
	Subject       string    `bson:"subject"`
	UserID        string    `bson:"user_id"`
	Email         string    `bson:"email"`
	EmailVerified bool      `bson:"email_verified"`
	Name          string    `bson:"name,omitempty"`
	Username      string    `bson:"username,omitempty"`
	AvatarURL     string    `bson:"avatar_url,omitempty"`
	LinkedAt      time.Time `bson:"linked_at"`
}

func identityID(provider, subject string) string { return provider + ":" + subject }

// InsertIdentity implements accounts.IdentityStore.
func (s *Store) InsertIdentity(ctx context.Context, id accounts.Identity) error {
	return s.insert(ctx, collIdentities, identityDoc{
		ID: identityID(id.Provider, id.Subject), Provider: id.Provider, Subject: id.Subject, UserID: id.UserID,
		Email: id.Email, EmailVerified: id.EmailVerified, Name: id.Name, Username: id.Username,
		AvatarURL: id.AvatarURL, LinkedAt: id.LinkedAt,
	})
}

// Identity implements accounts.IdentityStore.
func (s *Store) Identity(ctx context.Context, provider, subject string) (accounts.Identity, error) {
	var d identityDoc
	if err := s.findByID(ctx, collIdentities, identityID(provider, subject), &d); err != nil {
		return accounts.Identity{}, err
	}
	return accounts.Identity{
		Provider: d.Provider, Subject: d.Subject, UserID: d.UserID, Email: d.Email, EmailVerified: d.EmailVerified,
		Name: d.Name, Username: d.Username, AvatarURL: d.AvatarURL, LinkedAt: d.LinkedAt,
	}, nil
}

// DeleteIdentity implements accounts.IdentityStore.
func (s *Store) DeleteIdentity(ctx context.Context, provider, subject string) (bool, error) {
	return s.deleteByID(ctx, collIdentities, identityID(provider, subject))
}

type providerClaimDoc struct {
	ID        string    `bson:"_id"` // "<user id>|<provider>"
	Subject   string    `bson:"subject"`
	ClaimedAt time.Time `bson:"claimed_at"`
}

func providerClaimID(userID, provider string) string { return userID + "|" + provider }

// ClaimProvider implements accounts.IdentityStore.
func (s *Store) ClaimProvider(ctx context.Context, userID, provider, subject string) error {
	return s.insert(ctx, collUserProviders, providerClaimDoc{ID: providerClaimID(userID, provider), Subject: subject, ClaimedAt: time.Now().UTC()})
}

// ProviderClaim implements accounts.IdentityStore.
func (s *Store) ProviderClaim(ctx context.Context, userID, provider string) (string, error) {
	var d providerClaimDoc
	if err := s.findByID(ctx, collUserProviders, providerClaimID(userID, provider), &d); err != nil {
		return "", err
	}
	return d.Subject, nil
}

// ReleaseProvider implements accounts.IdentityStore.
func (s *Store) ReleaseProvider(ctx context.Context, userID, provider string) error {
	_, err := s.deleteByID(ctx, collUserProviders, providerClaimID(userID, provider))
	return err
}

type oauthStateDoc struct {
	Key       string           `bson:"_id"` // SHA-256 of the state
	Provider  string           `bson:"provider"`
	Intent    providers.Intent `bson:"intent"`
	UserID    string           `bson:"user_id,omitempty"`
	SessionID string           `bson:"session_id,omitempty"`
	ReturnTo  string           `bson:"return_to,omitempty"`
	Browser   string           `bson:"browser"`
	CreatedAt time.Time        `bson:"created_at"`
	ExpiresAt time.Time        `bson:"expires_at"`
}

// InsertOAuthState implements providers.StateStore.
func (s *Store) InsertOAuthState(ctx context.Context, key string, f providers.Flow) error {
	return s.insert(ctx, collOAuthStates, oauthStateDoc{
		Key: key, Provider: f.Provider, Intent: f.Intent, UserID: f.UserID, SessionID: f.SessionID,
		ReturnTo: f.ReturnTo, Browser: f.Browser, CreatedAt: f.CreatedAt, ExpiresAt: f.ExpiresAt,
	})
}

// TakeOAuthState implements providers.StateStore: a read, then a delete
// whose count decides which of concurrent callers gets the flow.
func (s *Store) TakeOAuthState(ctx context.Context, key string) (providers.Flow, error) {
	var d oauthStateDoc
	if err := s.findByID(ctx, collOAuthStates, key, &d); err != nil {
		return providers.Flow{}, err
	}
	won, err := s.deleteByID(ctx, collOAuthStates, key)
	if err != nil {
		return providers.Flow{}, err
	}
	if !won {
		return providers.Flow{}, accounts.ErrNotFound
	}
	return providers.Flow{
		Provider: d.Provider, Intent: d.Intent, UserID: d.UserID, SessionID: d.SessionID,
		ReturnTo: d.ReturnTo, Browser: d.Browser, CreatedAt: d.CreatedAt, ExpiresAt: d.ExpiresAt,
	}, nil
}
