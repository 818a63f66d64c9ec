package mail

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestDevMailbox(t *testing.T) {
	logger, logs := newTestLogger(t)
	mb := NewDevMailbox(logger, newFakeClock().Now)
	const total = devMailboxSize + 5
	var wg sync.WaitGroup
	for i := range 5 { // concurrent deliveries, for the race detector
		wg.Go(func() {
			_ = mb.Deliver(t.Context(), "early@example.com", Rendered{Subject: fmt.Sprint("early ", i)})
		})
	}
	wg.Wait()
	for i := range total - 5 {
		msg := Rendered{Subject: fmt.Sprint("mail ", i), Text: "t", HTML: "h", Link: testLink}
		if err := mb.Deliver(t.Context(), "ann@example.com", msg); err != nil {
			t.Fatalf("Deliver: %v", err)
		}
	}

	got := mb.Messages()
	if len(got) != devMailboxSize {
		t.Fatalf("got %d messages; want %d", len(got), devMailboxSize)
	}
	if want := fmt.Sprint("mail ", total-6); got[0].Subject != want {
		t.Errorf("got newest subject %q; want %q", got[0].Subject, want)
	}
	if got[len(got)-1].Subject != "mail 0" {
		t.Errorf("got oldest subject %q; want %q (the early ones evicted)", got[len(got)-1].Subject, "mail 0")
	}
	m, ok := mb.Message(got[3].ID)
	if !ok || m.Subject != got[3].Subject || m.Link != testLink || m.At.IsZero() {
		t.Errorf("Message(%q): got %+v, %v; want the fourth newest mail", got[3].ID, m, ok)
	}
	if _, ok := mb.Message("nope"); ok {
		t.Error("Message(nope): got ok; want not found")
	}
	// The development mailbox logs links on purpose (DESIGN.md).
	if !strings.Contains(logs.String(), testToken) {
		t.Error("got logs without the link; want it logged in development")
	}
}
