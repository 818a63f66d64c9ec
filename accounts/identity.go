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

// linkTTL bounds how long a pending link waits for its proof.
const linkTTL = time.Hour

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
	slot, ok, err := s.reserveMail(ctx, t.Email, MailLinkConfirm, "")
	if err != nil {
		return err
	}
	if !ok {
		s.heldBack(ctx, m)
		return nil
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

// ConnectStart names who started connecting a provider: the user and the
// session that asked for it on their account page.
type ConnectStart struct {
	UserID    string
	SessionID string
}

// StartConnect reports whether a signed-in user may start connecting a
// provider: it needs a sign-in within RecentAuth (LK-4), or
// ErrReauthRequired.
func (s *Service) StartConnect(a Auth) error {
	if !s.RecentlySignedIn(a) {
		return ErrReauthRequired
	}
	return nil
}

// ConnectIdentity links the provider identity p to the signed-in user who
// started connecting it. The flow must come back to the session that
// started it (ErrConnectSession: a callback planted in another browser, or
// finished after signing in as someone else), and the sign-in must still be
// recent (ErrReauthRequired), as for SetFirstPassword (LK-4).
func (s *Service) ConnectIdentity(ctx context.Context, a Auth, started ConnectStart, p Profile) error {
	if a.Session.ID == "" || a.Session.ID != started.SessionID || a.User.ID != started.UserID {
		return ErrConnectSession
	}
	if err := s.StartConnect(a); err != nil {
		return err
	}
	return s.link(ctx, a.User.ID, p)
}

// Identities lists the user's linked identities, one per provider at most.
func (s *Service) Identities(ctx context.Context, userID string) ([]Identity, error) {
	var out []Identity
	for _, provider := range s.cfg.Providers {
		sub, err := s.store.ProviderClaim(ctx, userID, provider)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("find provider claim: %w", err)
		}
		id, err := s.store.Identity(ctx, provider, sub)
		if errors.Is(err, ErrNotFound) || (err == nil && id.UserID != userID) {
			continue // a claim left by an interrupted link or unlink
		}
		if err != nil {
			return nil, fmt.Errorf("find identity: %w", err)
		}
		out = append(out, id)
	}
	return out, nil
}

// DisconnectIdentity unlinks the user's identity at provider. The last
// way to sign in cannot be removed (LK-4): a user without a password keeps
// at least one identity.
func (s *Service) DisconnectIdentity(ctx context.Context, a Auth, provider string) error {
	ids, err := s.Identities(ctx, a.User.ID)
	if err != nil {
		return err
	}
	var target *Identity
	for i := range ids {
		if ids[i].Provider == provider {
			target = &ids[i]
		}
	}
	if target == nil {
		return ErrNotFound
	}
	u, err := s.store.User(ctx, a.User.ID)
	if err != nil {
		return fmt.Errorf("find user: %w", err)
	}
	if !u.HasPassword() && len(ids) <= 1 {
		return ErrLastLoginMethod
	}
	if _, err := s.store.DeleteIdentity(ctx, target.Provider, target.Subject); err != nil {
		return fmt.Errorf("delete identity: %w", err)
	}
	if err := s.store.ReleaseProvider(ctx, u.ID, provider); err != nil {
		return fmt.Errorf("release provider claim: %w", err)
	}
	s.cache.dropUser(u.ID, "")
	s.log.Info("identity unlinked", "event", "identity_unlinked", "provider", provider, "user_id", u.ID)
	return nil
}

// RecentlySignedIn reports whether the session's sign-in is recent enough
// for sensitive changes: connecting a provider, setting a first password.
func (s *Service) RecentlySignedIn(a Auth) bool {
	return s.now().Sub(a.Session.CreatedAt) <= s.cfg.RecentAuth
}

// SetFirstPassword gives a user who signs in only through providers a
// password. It needs a recent sign-in instead of a current password.
func (s *Service) SetFirstPassword(ctx context.Context, a Auth, password string, c Client) error {
	if err := s.limit(ActChange, c, a.User.Email); err != nil {
		return err
	}
	u, err := s.store.User(ctx, a.User.ID)
	if err != nil {
		return fmt.Errorf("find user: %w", err)
	}
	if u.HasPassword() {
		return ErrInvalidCredentials // changing a password needs the current one
	}
	if !s.RecentlySignedIn(a) {
		return ErrReauthRequired
	}
	if err := s.policy.Check(password, u.Email); err != nil {
		return err
	}
	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	if err := s.setPassword(ctx, u, hash, a.Session.ID); err != nil {
		return err
	}
	s.log.Info("password set", "event", "password_set", "user_id", u.ID)
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
