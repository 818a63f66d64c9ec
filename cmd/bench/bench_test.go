package main

import (
	"bufio"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestReadResponse(t *testing.T) {
	tests := []struct {
		name, wire string
		status     int
		wantErr    bool
	}{
		{"ok with body", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nX-A: b\r\n\r\nok\n", 200, false},
		{"no body", "HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n", 401, false},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 0, true},
		{"garbage", "SSH-2.0-x\r\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &rawClient{br: bufio.NewReader(strings.NewReader(tt.wire))}
			status, err := c.readResponse()
			if status != tt.status || (err != nil) != tt.wantErr {
				t.Errorf("got %d, %v; want %d, error %v", status, err, tt.status, tt.wantErr)
			}
		})
	}
}

func TestIntList(t *testing.T) {
	got, err := intList(" 1000, 100000,,1000000 ")
	if want := []int{1000, 100000, 1000000}; err != nil || !slices.Equal(got, want) {
		t.Errorf("got %v, %v; want %v", got, err, want)
	}
	if _, err := intList("1e6"); err == nil {
		t.Error("got no error for 1e6; want one")
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	if p50, p99 := percentile(d, .5), percentile(d, .99); p50 != 51 || p99 != 100 {
		t.Errorf("got p50 %v, p99 %v; want 51, 100", p50, p99)
	}
	if got := percentile(nil, .5); got != 0 {
		t.Errorf("got %v for no samples; want 0", got)
	}
}

func TestParseUnit(t *testing.T) {
	for in, want := range map[[2]string]float64{{"512", "us"}: 0.512, {"1.5", "ms"}: 1.5, {"2", "s"}: 2000} {
		if got := parseUnit(in[0], in[1]); got != want {
			t.Errorf("parseUnit(%s %s) = %v; want %v", in[0], in[1], got, want)
		}
	}
}
