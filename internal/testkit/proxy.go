package testkit

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Proxy is a TCP proxy on loopback in front of a database server. Cut
// closes the listener and every connection, as a database outage looks to
// the gateway; Restore listens again on the same port.
type Proxy struct {
	tb     testing.TB
	Addr   string
	target string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	// refusal, when set, is the error document the proxy answers write
	// commands with, instead of forwarding them: to the collections in
	// refuseIn, or to all if it is empty.
	refusal  bson.D
	refuseIn []string
}

// StartProxy proxies to the host of a mongodb:// URI and returns the proxy
// and a URI that goes through it (directConnection, so a replica set does
// not lead the driver around the proxy).
func StartProxy(tb testing.TB, mongoURI string) (*Proxy, string) {
	tb.Helper()
	u, err := url.Parse(mongoURI)
	if err != nil {
		tb.Fatalf("parse uri: %v", err)
	}
	p := &Proxy{tb: tb, target: u.Host, conns: map[net.Conn]struct{}{}}
	p.listen("127.0.0.1:0")
	tb.Cleanup(p.Cut)
	u.Host = p.Addr
	q := u.Query()
	q.Set("directConnection", "true")
	u.RawQuery = q.Encode()
	if u.Path == "" {
		u.Path = "/"
	}
	return p, u.String()
}

func (p *Proxy) listen(addr string) {
	var ln net.Listener
	var err error
	for range 50 { // the port may linger briefly after Cut
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		p.tb.Fatalf("proxy listen %s: %v", addr, err)
	}
	p.mu.Lock()
	p.ln, p.Addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go p.accept(ln)
}

func (p *Proxy) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go p.serve(c)
	}
}

func (p *Proxy) serve(c net.Conn) {
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.ln == nil { // cut meanwhile
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	// Replies to the client come from the server or, for refused writes,
	// from the proxy; whole messages only, so the two never interleave.
	var toClient sync.Mutex
	go func() {
		p.forwardRequests(up, c, &toClient)
		done <- struct{}{}
	}()
	go func() {
		_ = copyMessages(c, up, &toClient)
		done <- struct{}{}
	}()
	<-done
	c.Close()
	up.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// Cut stops accepting and drops every open connection.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// Restore accepts connections again on the same address.
func (p *Proxy) Restore() {
	p.listen(p.Addr)
}

// RefuseWrites makes the proxy answer every insert, update, delete and
// findAndModify with a server error of the given code and message, as a
// database on a full disk or a read-only file system does, until
// AcceptWrites. Reads pass through. With collections, only writes to those
// are refused.
func (p *Proxy) RefuseWrites(code int32, codeName, message string, collections ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refuseIn = collections
	p.refusal = bson.D{
		{Key: "ok", Value: 0.0}, {Key: "errmsg", Value: message},
		{Key: "code", Value: code}, {Key: "codeName", Value: codeName},
	}
}

// AcceptWrites forwards writes again.
func (p *Proxy) AcceptWrites() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refusal = nil
}

// Wire protocol: a 16-byte header (length, request id, response to, op
// code); OP_MSG bodies start with 4 bytes of flags and a kind-0 section
// holding the command document, whose first key names the command.
const (
	wireHeaderLen = 16
	opMsg         = 2013
	maxWireMsg    = 48 << 20
)

var writeCommands = map[string]bool{"insert": true, "update": true, "delete": true, "findAndModify": true}

// readMessage reads one whole wire message.
func readMessage(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(binary.LittleEndian.Uint32(hdr[:]))
	if n < wireHeaderLen || n > maxWireMsg {
		return nil, errors.New("bad wire message length")
	}
	msg := make([]byte, n)
	copy(msg, hdr[:])
	_, err := io.ReadFull(r, msg[4:])
	return msg, err
}

// copyMessages copies whole messages from src to dst.
func copyMessages(dst, src net.Conn, mu *sync.Mutex) error {
	for {
		msg, err := readMessage(src)
		if err != nil {
			return err
		}
		mu.Lock()
		_, err = dst.Write(msg)
		mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// forwardRequests passes the client's messages to the server, answering
// refused writes itself.
func (p *Proxy) forwardRequests(up, c net.Conn, toClient *sync.Mutex) {
	for {
		msg, err := readMessage(c)
		if err != nil {
			return
		}
		p.mu.Lock()
		refusal, refuseIn := p.refusal, p.refuseIn
		p.mu.Unlock()
		if refusal != nil && isWriteCommand(msg, refuseIn) {
			reply, err := errorReply(msg, refusal)
			if err != nil {
				return
			}
			toClient.Lock()
			_, err = c.Write(reply)
			toClient.Unlock()
			if err != nil {
				return
			}
			continue
		}
		if _, err := up.Write(msg); err != nil {
			return
		}
	}
}

// isWriteCommand reports whether msg is a write command, to one of
// collections if any are given.
func isWriteCommand(msg []byte, collections []string) bool {
	if binary.LittleEndian.Uint32(msg[12:]) != opMsg || len(msg) < wireHeaderLen+5+5 || msg[wireHeaderLen+4] != 0 {
		return false
	}
	el, err := bson.Raw(msg[wireHeaderLen+5:]).IndexErr(0)
	if err != nil || !writeCommands[el.Key()] {
		return false
	}
	coll, _ := el.Value().StringValueOK()
	return len(collections) == 0 || slices.Contains(collections, coll)
}

// errorReply builds the OP_MSG answer to request carrying doc.
func errorReply(request []byte, doc bson.D) ([]byte, error) {
	body, err := bson.Marshal(doc)
	if err != nil {
		return nil, err
	}
	n := wireHeaderLen + 4 + 1 + len(body)
	msg := make([]byte, wireHeaderLen+5, n)
	binary.LittleEndian.PutUint32(msg[0:], uint32(n))
	binary.LittleEndian.PutUint32(msg[4:], binary.LittleEndian.Uint32(request[4:])+1<<30)
	binary.LittleEndian.PutUint32(msg[8:], binary.LittleEndian.Uint32(request[4:])) // responseTo
	binary.LittleEndian.PutUint32(msg[12:], opMsg)
	// flags 0, section kind 0
	return append(msg, body...), nil
}
