package ratelimit

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := New(3, time.Minute, func() time.Time { return now })
	for i := range 3 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("event %d refused; want allowed within burst", i)
		}
	}
	ok, wait := l.Allow("a")
	if ok {
		t.Fatal("4th event allowed; want refused")
	}
	if wait <= 0 || wait > 20*time.Second {
		t.Errorf("retry after %v; want (0, 20s]", wait)
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Error("other key refused; want keys independent")
	}
	now = now.Add(20 * time.Second)
	if ok, _ := l.Allow("a"); !ok {
		t.Error("event after one interval refused; want allowed")
	}
	if ok, _ := l.Allow("a"); ok {
		t.Error("second event after one interval allowed; want refused")
	}
}

func TestSweepForgetsIdleKeys(t *testing.T) {
	now := time.Unix(1000, 0)
	l := New(10, time.Minute, func() time.Time { return now })
	for i := range 5000 {
		l.Allow(string(rune('a'+i%26)) + time.Duration(i).String())
	}
	now = now.Add(time.Hour)
	l.Allow("x")
	total := 0
	for i := range l.shards {
		total += len(l.shards[i].tat)
	}
	if total > 100 {
		t.Errorf("%d keys kept after an idle hour; want old keys swept", total)
	}
}
