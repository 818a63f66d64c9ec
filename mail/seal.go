package mail

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// KeySize is the length of the outbox key: AES-256.
const KeySize = 32

// sealedData is the part of a mail that is encrypted in the outbox.
type sealedData struct {
	Link     string        `json:"link"`
	Email    string        `json:"email"`
	ValidFor time.Duration `json:"valid_for,omitempty"`
	// Provider and ProviderAccount describe a link_confirm mail's identity.
	Provider        string `json:"provider,omitempty"`
	ProviderAccount string `json:"provider_account,omitempty"`
	// PasswordHash and ReturnTo carry a signup request to its resolution.
	PasswordHash string `json:"password_hash,omitempty"`
	ReturnTo     string `json:"return_to,omitempty"`
}

// sealer encrypts template data with AES-256-GCM so that the database never
// holds a link, and with it a token, in the clear.
type sealer struct {
	aead cipher.AEAD
}

func newSealer(key []byte) (*sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("outbox key: got %d bytes; want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("outbox key: %w", err)
	}
	// A random 96-bit nonce per message is safe far beyond the volume of mail
	// a login gateway sends (NIST's limit is 2^32 messages per key), and it
	// needs no counter shared between instances.
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("outbox key: %w", err)
	}
	return &sealer{aead: aead}, nil
}

// additionalData binds the ciphertext to its message: with write access to the
// database but not the key, one cannot redirect a sealed reset link to another
// address or reuse it under another message or kind.
func additionalData(m StoredMessage) []byte {
	return []byte(m.ID + "\x00" + m.To + "\x00" + string(m.Kind))
}

// seal encrypts d for message m (whose Sealed field is ignored) and returns
// nonce||ciphertext.
func (s *sealer) seal(m StoredMessage, d sealedData) ([]byte, error) {
	plain, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("encode template data: %w", err)
	}
	return s.aead.Seal(nil, nil, plain, additionalData(m)), nil
}

// errUnseal is deliberately vague: the reason is always a wrong key or
// tampered data, and the details would not help an operator.
var errUnseal = errors.New("cannot unseal message (outbox key changed or data tampered with)")

// open decrypts m.Sealed.
func (s *sealer) open(m StoredMessage) (sealedData, error) {
	plain, err := s.aead.Open(nil, nil, m.Sealed, additionalData(m))
	if err != nil {
		return sealedData{}, errUnseal
	}
	var d sealedData
	if err := json.Unmarshal(plain, &d); err != nil {
		return sealedData{}, fmt.Errorf("decode template data: %w", err)
	}
	return d, nil
}
