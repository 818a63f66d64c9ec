package accounts

import "testing"

func TestClientNetwork(t *testing.T) {
	for _, tc := range []struct {
		ip     string
		prefix int
		want   string
	}{
		{"203.0.113.9", 64, "203.0.113.9"},
		{"::ffff:203.0.113.9", 64, "203.0.113.9"},
		{"2001:db8:1:2:aaaa:bbbb:cccc:dddd", 64, "2001:db8:1:2::/64"},
		{"2001:db8:1:2::1", 64, "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", 64, "2001:db8:1:3::/64"},
		{"2001:db8:1:2::1", 56, "2001:db8:1::/56"},
		{"2001:db8:1:2::1", 128, "2001:db8:1:2::1"},
		{"fe80::1%eth0", 64, "fe80::/64"},
		{"not an ip", 64, "not an ip"},
	} {
		if got := clientNetwork(tc.ip, tc.prefix); got != tc.want {
			t.Errorf("clientNetwork(%q, %d) = %q; want %q", tc.ip, tc.prefix, got, tc.want)
		}
	}
}
