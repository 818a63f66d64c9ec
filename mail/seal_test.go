package mail

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/accounts"
)

func mustSealer(tb testing.TB, key []byte) *sealer {
	tb.Helper()
	s, err := newSealer(key)
	if err != nil {
		tb.Fatalf("newSealer: %v", err)
	}
	return s
}

func TestSealRoundTrip(t *testing.T) {
	s := mustSealer(t, testKey(1))
	m := StoredMessage{ID: newID(), To: "ann@example.com", Kind: accounts.MailReset}
	want := sealedData{Link: testLink, Email: "ann@example.com"}

	sealed, err := s.seal(m, want)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{testLink, testToken} {
		if bytes.Contains(sealed, []byte(secret)) {
			t.Errorf("got %q in the sealed bytes", secret)
		}
	}
	m.Sealed = sealed
	got, err := s.open(m)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("open mismatch (-want +got):\n%s", diff)
	}

	again, err := s.seal(m, want)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(again, sealed) {
		t.Error("got identical ciphertexts for one plaintext; want a fresh nonce per message")
	}
}

func TestSealOpenFails(t *testing.T) {
	s := mustSealer(t, testKey(1))
	m := StoredMessage{ID: newID(), To: "ann@example.com", Kind: accounts.MailReset}
	sealed, err := s.seal(m, sealedData{Link: testLink, Email: m.To})
	if err != nil {
		t.Fatal(err)
	}
	m.Sealed = sealed
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1

	tests := []struct {
		name   string
		sealer *sealer
		edit   func(*StoredMessage)
	}{
		{"rotated key", mustSealer(t, testKey(2)), func(*StoredMessage) {}},
		{"tampered", s, func(m *StoredMessage) { m.Sealed = tampered }},
		{"redirected to another address", s, func(m *StoredMessage) { m.To = "mallory@example.com" }},
		{"moved to another message", s, func(m *StoredMessage) { m.ID = newID() }},
		{"other kind", s, func(m *StoredMessage) { m.Kind = accounts.MailVerify }},
		{"truncated", s, func(m *StoredMessage) { m.Sealed = m.Sealed[:5] }},
		{"empty", s, func(m *StoredMessage) { m.Sealed = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := m
			tt.edit(&m)
			if _, err := tt.sealer.open(m); !errors.Is(err, errUnseal) {
				t.Errorf("got %v; want errUnseal", err)
			}
		})
	}
}

func TestNewSealerKeySize(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33} {
		if _, err := newSealer(make([]byte, n)); err == nil {
			t.Errorf("%d-byte key: got nil error; want one", n)
		}
	}
}
