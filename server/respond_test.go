package server

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/accounts"
)

// TestLogIfClientGone checks that a database error is logged as a warning,
// unless the client hung up first: then it is no outage and stays at debug.
func TestLogIfClientGone(t *testing.T) {
	var logs bytes.Buffer
	rs := &responder{log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	err := fmt.Errorf("find session: %w", accounts.ErrUnavailable)

	live := httptest.NewRequest("GET", "/auth/check", nil)
	rs.logIf(live, errorFor(err), err)
	if !strings.Contains(logs.String(), "level=WARN") {
		t.Fatalf("database error of a live request: logged %q; want WARN", logs.String())
	}

	logs.Reset()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	gone := live.WithContext(ctx)
	rs.logIf(gone, errorFor(err), err)
	if !strings.Contains(logs.String(), "level=DEBUG") {
		t.Fatalf("database error after the client hung up: logged %q; want DEBUG", logs.String())
	}
}
