// Package testkit holds the pieces Gatehouse's black-box tests share: a real
// SMTP server that captures mail, the gateway run in-process on the real
// wiring, an HTTP client with a cookie jar, and a TCP proxy that can cut the
// database off. Everything listens on 127.0.0.1 only.
package testkit

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Mail is one captured message.
type Mail struct {
	From    string
	To      []string
	Header  mail.Header
	Subject string
	Text    string
	HTML    string
	Raw     []byte
	At      time.Time
}

var linkRE = regexp.MustCompile(`https?://[^\s<>"]+`)

// Link returns the first link of the plain-text body.
func (m Mail) Link(tb testing.TB) string {
	tb.Helper()
	l := linkRE.FindString(m.Text)
	if l == "" {
		tb.Fatalf("mail %q has no link in its text body:\n%s", m.Subject, m.Text)
	}
	return l
}

// Token returns the token= parameter of the mail's link.
func (m Mail) Token(tb testing.TB) string {
	tb.Helper()
	u, err := url.Parse(m.Link(tb))
	if err != nil {
		tb.Fatalf("parse link: %v", err)
	}
	t := u.Query().Get("token")
	if t == "" {
		tb.Fatalf("link %s has no token", u.Redacted())
	}
	return t
}

// SMTPServer is a real SMTP server (go-smtp) on loopback that keeps every
// message it accepts. Refuse makes it answer 451 to every message until
// turned off again.
type SMTPServer struct {
	Host string
	Port int

	srv     *smtp.Server
	refuse  atomic.Bool
	refused atomic.Int64
	mu      sync.Mutex
	mails   []Mail
	changed chan struct{}
	// hangNext sessions still to hang at MAIL FROM; hung counts those that
	// did; release ends them all (at the test's end).
	hangNext atomic.Int64
	hung     atomic.Int64
	release  chan struct{}
}

// StartSMTP starts a capturing SMTP server and stops it at the test's end.
func StartSMTP(tb testing.TB) *SMTPServer {
	tb.Helper()
	s := &SMTPServer{changed: make(chan struct{}), release: make(chan struct{})}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &smtpSession{s: s}, nil
	}))
	s.srv.Domain = "localhost"
	s.srv.ReadTimeout = 10 * time.Second
	s.srv.WriteTimeout = 10 * time.Second
	s.srv.MaxMessageBytes = 1 << 20
	s.srv.AllowInsecureAuth = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen smtp: %v", err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	s.Host, s.Port = addr.IP.String(), addr.Port
	go func() { _ = s.srv.Serve(ln) }()
	tb.Cleanup(func() {
		close(s.release)
		_ = s.srv.Close()
	})
	return s
}

// HangNext makes the next n conversations stop answering at MAIL FROM, as a
// server that hangs mid-conversation does, until the test ends.
func (s *SMTPServer) HangNext(n int) { s.hangNext.Store(int64(n)) }

// Hung counts the conversations that hung so far.
func (s *SMTPServer) Hung() int64 { return s.hung.Load() }

// Refuse makes the server refuse (true) or accept (false) messages.
func (s *SMTPServer) Refuse(on bool) { s.refuse.Store(on) }

// Refused counts the messages refused so far.
func (s *SMTPServer) Refused() int64 { return s.refused.Load() }

// Mails returns the messages captured for a recipient (all if to is "").
func (s *SMTPServer) Mails(to string) []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Mail
	for _, m := range s.mails {
		if to == "" || containsFold(m.To, to) {
			out = append(out, m)
		}
	}
	return out
}

// WaitMail waits until the n-th (1-based) mail for to has arrived and
// returns it, failing the test after timeout.
func (s *SMTPServer) WaitMail(tb testing.TB, to string, n int, timeout time.Duration) Mail {
	tb.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if ms := s.Mails(to); len(ms) >= n {
			return ms[n-1]
		}
		select {
		case <-ch:
		case <-deadline:
			tb.Fatalf("mail #%d for %s did not arrive within %s (got %d)", n, to, timeout, len(s.Mails(to)))
			return Mail{}
		}
	}
}

// WaitSubject waits for a mail to `to` whose subject contains sub.
func (s *SMTPServer) WaitSubject(tb testing.TB, to, sub string, timeout time.Duration) Mail {
	tb.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		for _, m := range s.Mails(to) {
			if strings.Contains(strings.ToLower(m.Subject), strings.ToLower(sub)) {
				return m
			}
		}
		select {
		case <-ch:
		case <-deadline:
			tb.Fatalf("no mail to %s with subject containing %q within %s", to, sub, timeout)
			return Mail{}
		}
	}
}

func (s *SMTPServer) add(m Mail) {
	s.mu.Lock()
	s.mails = append(s.mails, m)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

type smtpSession struct {
	s    *SMTPServer
	from string
	to   []string
}

func (ss *smtpSession) refuse() error {
	if ss.s.refuse.Load() {
		ss.s.refused.Add(1)
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	return nil
}

func (ss *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.hangNext.Add(-1) >= 0 {
		ss.s.hung.Add(1)
		<-ss.s.release
		return errors.New("hung up")
	}
	if err := ss.refuse(); err != nil {
		return err
	}
	ss.from = from
	return nil
}

func (ss *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

func (ss *smtpSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := ss.refuse(); err != nil {
		return err
	}
	m, err := parseMail(raw)
	if err != nil {
		return &smtp.SMTPError{Code: 554, Message: "unparsable message: " + err.Error()}
	}
	m.From, m.To, m.At = ss.from, ss.to, time.Now()
	ss.s.add(m)
	return nil
}

func (ss *smtpSession) Reset()        { ss.from, ss.to = "", nil }
func (ss *smtpSession) Logout() error { return nil }

// parseMail decodes headers and the text and HTML parts of a message.
func parseMail(raw []byte) (Mail, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Mail{}, err
	}
	dec := new(mime.WordDecoder)
	subject, err := dec.DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		return Mail{}, err
	}
	m := Mail{Header: msg.Header, Subject: subject, Raw: raw}
	if err := walkPart(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body, &m); err != nil {
		return Mail{}, err
	}
	return m, nil
}

func walkPart(contentType, encoding string, body io.Reader, m *Mail) error {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt = "text/plain"
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if err := walkPart(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p, m); err != nil {
				return err
			}
		}
	}
	b, err := io.ReadAll(decodeTransfer(encoding, body))
	if err != nil {
		return err
	}
	switch mt {
	case "text/plain":
		m.Text += string(b)
	case "text/html":
		m.HTML += string(b)
	}
	return nil
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
