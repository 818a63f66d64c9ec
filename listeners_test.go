package main

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testkit"
)

// TestListensOnlyOnItsAddresses: with the embedded database, the gateway
// opens exactly two network listeners, server.address and
// server.ops_address. The database is reached over a Unix socket in
// data_dir that only the gateway's user can open: FerretDB has no
// authentication, and a TCP port would let any local user rewrite a
// password hash.
//
// Not parallel: parallel tests are paused while it runs, so every listener
// that appears between the two snapshots is the gateway's.
func TestListensOnlyOnItsAddresses(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	if os.Getenv(testkit.MongoEnv) != "" {
		t.Skip("the embedded database is the subject")
	}
	smtp := testkit.StartSMTP(t)
	before := netListeners(t)
	g := testkit.Start(t, run, smtp, testkit.Options{})
	after := netListeners(t)
	var added []string
	for l := range after {
		if !before[l] {
			added = append(added, l)
		}
	}
	want := map[string]bool{"tcp " + g.Addr: true, "tcp " + strings.TrimPrefix(g.OpsURL, "http://"): true}
	if len(added) != len(want) || !want[added[0]] || !want[added[len(added)-1]] {
		t.Errorf("network listeners the gateway opened: %v; want exactly %v", added, want)
	}

	sock := filepath.Join(g.DataDir, "db", "ferretdb.sock")
	for path, mode := range map[string]fs.FileMode{filepath.Dir(sock): 0o700, sock: 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatalf("embedded database socket: %v", err)
		}
		if got := fi.Mode().Perm(); got != mode {
			t.Errorf("%s: mode %o; want %o", path, got, mode)
		}
	}
	if !strings.Contains(g.Logs(), "Unix socket only") {
		t.Errorf("startup log does not say the embedded database is on a Unix socket only")
	}
	// The gateway works over that socket.
	if _, email := testkit.NewUser(t, g, "a listener test passphrase"); email == "" {
		t.Fatal("no user")
	}
}

// netListeners returns this process's listening TCP sockets and bound UDP
// sockets as "tcp 127.0.0.1:8080", from /proc.
func netListeners(tb testing.TB) map[string]bool {
	tb.Helper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		tb.Fatal(err)
	}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(target, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] = true
		}
	}
	out := map[string]bool{}
	for _, f := range []struct {
		name, proto string
		listenOnly  bool
	}{{"tcp", "tcp", true}, {"tcp6", "tcp", true}, {"udp", "udp", false}, {"udp6", "udp", false}} {
		file, err := os.Open("/proc/self/net/" + f.name)
		if err != nil {
			continue // no IPv6 here
		}
		sc := bufio.NewScanner(file)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || !inodes[fields[9]] || (f.listenOnly && fields[3] != "0A") {
				continue
			}
			addr, err := procAddr(fields[1])
			if err != nil {
				tb.Fatalf("%s: %v", f.name, err)
			}
			out[f.proto+" "+addr] = true
		}
		file.Close()
	}
	return out
}

// procAddr decodes /proc/net's "0100007F:1F90" (IPv4, and IPv6 as four
// 32-bit words, each in host byte order: little-endian here).
func procAddr(s string) (string, error) {
	hexIP, hexPort, ok := strings.Cut(s, ":")
	if !ok {
		return "", fmt.Errorf("address %q", s)
	}
	raw, err := hex.DecodeString(hexIP)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return "", fmt.Errorf("address %q", s)
	}
	for i := 0; i < len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if err != nil {
		return "", fmt.Errorf("port %q", s)
	}
	ip, _ := netip.AddrFromSlice(raw)
	return net.JoinHostPort(ip.Unmap().String(), strconv.Itoa(int(port))), nil
}
