package humantime

import (
	"testing"
	"time"
)

func TestDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, ""},
		{24 * time.Hour, "24 hours"},
		{time.Hour, "1 hour"},
		{72 * time.Hour, "3 days"},
		{90 * time.Minute, "1 hour"},
		{30 * time.Minute, "30 minutes"},
		{2 * time.Second, "2 seconds"},
		{time.Millisecond, "1 second"},
	}
	for _, tt := range tests {
		if got := Duration(tt.d); got != tt.want {
			t.Errorf("Duration(%v) = %q; want %q", tt.d, got, tt.want)
		}
	}
}
