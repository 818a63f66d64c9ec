package mail

import (
	"cmp"
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"

	"github.com/gatehouse/gatehouse/accounts"
)

// memStore is an in-memory OutboxStore with the same guarantees as the MongoDB
// one: an attempt insert is atomic and fails on a duplicate key, nothing else
// is transactional. Each method yields first, so that concurrent workers
// interleave between store calls as they would over a network.
type memStore struct {
	mu       sync.Mutex
	msgs     map[string]StoredMessage
	attempts map[attemptKey]Attempt
	// down makes every call fail with accounts.ErrUnavailable.
	down bool
	// pending counts PendingMessages calls.
	pending int
}

type attemptKey struct {
	id string
	n  int
}

var _ OutboxStore = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{msgs: make(map[string]StoredMessage), attempts: make(map[attemptKey]Attempt)}
}

func (s *memStore) lock() error {
	runtime.Gosched()
	s.mu.Lock()
	if s.down {
		s.mu.Unlock()
		return fmt.Errorf("mem store: %w", accounts.ErrUnavailable)
	}
	return nil
}

func (s *memStore) setDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

func (s *memStore) AddMessage(ctx context.Context, m StoredMessage) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.msgs[m.ID]; ok {
		return accounts.ErrConflict
	}
	m.Sealed = slices.Clone(m.Sealed)
	s.msgs[m.ID] = m
	return nil
}

func (s *memStore) Message(ctx context.Context, id string) (StoredMessage, error) {
	if err := s.lock(); err != nil {
		return StoredMessage{}, err
	}
	defer s.mu.Unlock()
	m, ok := s.msgs[id]
	if !ok {
		return StoredMessage{}, accounts.ErrNotFound
	}
	m.Sealed = slices.Clone(m.Sealed)
	return m, nil
}

func (s *memStore) PendingMessages(ctx context.Context, limit int) ([]StoredMessage, error) {
	if err := s.lock(); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	s.pending++
	out := make([]StoredMessage, 0, len(s.msgs))
	for _, m := range s.msgs {
		m.Sealed = slices.Clone(m.Sealed)
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b StoredMessage) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out[:min(limit, len(out))], nil
}

func (s *memStore) Attempt(ctx context.Context, messageID string, n int) (Attempt, error) {
	if err := s.lock(); err != nil {
		return Attempt{}, err
	}
	defer s.mu.Unlock()
	a, ok := s.attempts[attemptKey{messageID, n}]
	if !ok {
		return Attempt{}, accounts.ErrNotFound
	}
	return a, nil
}

func (s *memStore) ClaimAttempt(ctx context.Context, a Attempt) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	k := attemptKey{a.MessageID, a.N}
	if _, ok := s.attempts[k]; ok {
		return accounts.ErrConflict
	}
	s.attempts[k] = a
	return nil
}

func (s *memStore) FinishAttempt(ctx context.Context, a Attempt) error {
	if err := s.lock(); err != nil {
		return err
	}
	defer s.mu.Unlock()
	k := attemptKey{a.MessageID, a.N}
	if _, ok := s.attempts[k]; !ok {
		return accounts.ErrNotFound
	}
	s.attempts[k] = a
	return nil
}

func (s *memStore) DeleteMessage(ctx context.Context, messageID string, attempts int) error {
	if err := s.lock(); err != nil {
		return err
	}
	delete(s.msgs, messageID)
	s.mu.Unlock()
	// Like the MongoDB store: the message goes first, then its attempts one
	// by one, with other workers free to act in between.
	for n := range attempts {
		if err := s.lock(); err != nil {
			return err
		}
		delete(s.attempts, attemptKey{messageID, n})
		s.mu.Unlock()
	}
	return nil
}

func (s *memStore) pendingCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending
}

// counts returns the number of messages and attempts held.
func (s *memStore) counts() (msgs, attempts int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs), len(s.attempts)
}

// only returns the single message held, or fails.
func (s *memStore) only() (StoredMessage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.msgs {
		return m, len(s.msgs) == 1
	}
	return StoredMessage{}, false
}
