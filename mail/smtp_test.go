package mail

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	netmail "net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/gatehouse/gatehouse/accounts"
)

// smtpServer is a real SMTP server on loopback that captures what it receives.
type smtpServer struct {
	host string
	port int

	mu       sync.Mutex
	received []captured
	auths    []string // "mechanism user:password" per successful AUTH
	// reject, if set, answers DATA of the nth mail transaction (from 0).
	reject func(n int) error
	txns   int
}

type captured struct {
	From string
	To   []string
	Raw  []byte
}

type smtpServerOptions struct {
	tls      string // SMTPTLSNone, SMTPTLSStartTLS or SMTPTLSImplicit
	auth     bool   // offer AUTH PLAIN
	reject   func(n int) error
	certPool *x509.CertPool // filled with the server's certificate
}

func newSMTPServer(tb testing.TB, opts smtpServerOptions) *smtpServer {
	tb.Helper()
	s := &smtpServer{reject: opts.reject}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		sess := &smtpSession{srv: s}
		if opts.auth {
			return &smtpAuthSession{sess}, nil
		}
		return sess, nil
	}))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	switch opts.tls {
	case SMTPTLSStartTLS:
		srv.TLSConfig = serverTLS(tb, opts.certPool)
	case SMTPTLSImplicit:
		l = tls.NewListener(l, serverTLS(tb, opts.certPool))
	}
	go func() { _ = srv.Serve(l) }()
	tb.Cleanup(func() { _ = srv.Close() })

	addr := l.Addr().(*net.TCPAddr)
	s.host, s.port = addr.IP.String(), addr.Port
	return s
}

// serverTLS returns a TLS config with a fresh self-signed certificate for
// 127.0.0.1, and adds the certificate to pool.
func serverTLS(tb testing.TB, pool *x509.CertPool) *tls.Config {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

func (s *smtpServer) mails() []captured {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]captured(nil), s.received...)
}

func (s *smtpServer) authLog() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.auths...)
}

type smtpSession struct {
	srv  *smtpServer
	from string
	to   []string
}

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *smtpSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	n := s.srv.txns
	s.srv.txns++
	if s.srv.reject != nil {
		if err := s.srv.reject(n); err != nil {
			return err
		}
	}
	s.srv.received = append(s.srv.received, captured{From: s.from, To: s.to, Raw: raw})
	return nil
}

func (s *smtpSession) Reset() { s.from, s.to = "", nil }

func (s *smtpSession) Logout() error { return nil }

// smtpAuthSession also offers AUTH PLAIN, accepting user "mailer" with password "s3cret".
type smtpAuthSession struct{ *smtpSession }

func (s *smtpAuthSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *smtpAuthSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != "mailer" || password != "s3cret" {
			return errors.New("invalid credentials")
		}
		s.srv.mu.Lock()
		defer s.srv.mu.Unlock()
		s.srv.auths = append(s.srv.auths, mech+" "+username+":"+password)
		return nil
	}), nil
}

var tempFailure = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}

func mustSMTP(tb testing.TB, cfg SMTPConfig, pool *x509.CertPool) *SMTP {
	tb.Helper()
	logger, _ := newTestLogger(tb)
	s, err := NewSMTP(cfg, logger)
	if err != nil {
		tb.Fatalf("NewSMTP: %v", err)
	}
	s.rootCAs = pool
	return s
}

func TestSMTPDeliver(t *testing.T) {
	tests := []struct {
		name     string
		tls      string
		auth     bool
		wantAuth []string
	}{
		{name: "plain, no auth", tls: SMTPTLSNone},
		{name: "plain, auth", tls: SMTPTLSNone, auth: true, wantAuth: []string{"PLAIN mailer:s3cret"}},
		{name: "starttls, auth", tls: SMTPTLSStartTLS, auth: true, wantAuth: []string{"PLAIN mailer:s3cret"}},
		{name: "implicit tls, auth", tls: SMTPTLSImplicit, auth: true, wantAuth: []string{"PLAIN mailer:s3cret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool := x509.NewCertPool()
			srv := newSMTPServer(t, smtpServerOptions{tls: tt.tls, auth: tt.auth, certPool: pool})
			cfg := SMTPConfig{
				Host: srv.host, Port: srv.port, TLS: tt.tls,
				From: "Gatehouse <no-reply@gate.example>", HELO: "gate.example", Timeout: 5 * time.Second,
			}
			if tt.auth {
				cfg.Username, cfg.Password = "mailer", "s3cret"
			}
			tr := mustSMTP(t, cfg, pool)
			msg := Rendered{
				Subject: "Réinitialiser your password",
				Text:    "Open " + testLink + "\n",
				HTML:    `<p><a href="` + testLink + `">Reset</a></p>`,
				Link:    testLink,
			}

			if err := tr.Deliver(t.Context(), "ann@example.com", msg); err != nil {
				t.Fatalf("Deliver: %v", err)
			}

			mails := srv.mails()
			if len(mails) != 1 {
				t.Fatalf("got %d mails; want 1", len(mails))
			}
			if mails[0].From != "no-reply@gate.example" || len(mails[0].To) != 1 || mails[0].To[0] != "ann@example.com" {
				t.Errorf("got envelope %s -> %v; want no-reply@gate.example -> [ann@example.com]", mails[0].From, mails[0].To)
			}
			checkMessage(t, mails[0].Raw, msg)
			if got := srv.authLog(); strings.Join(got, ",") != strings.Join(tt.wantAuth, ",") {
				t.Errorf("got auth %v; want %v", got, tt.wantAuth)
			}
		})
	}
}

// parseMail parses a raw mail into its header and its parts by content type
// (in order), with transfer encodings undone and line ends normalised.
func parseMail(tb testing.TB, raw []byte) (netmail.Header, []string, map[string]string) {
	tb.Helper()
	m, err := netmail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		tb.Fatalf("parse mail: %v", err)
	}
	mediaType, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/alternative" {
		tb.Fatalf("got Content-Type %q (%v); want multipart/alternative", m.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	var order []string
	bodies := make(map[string]string)
	for range 10 {
		p, err := mr.NextPart() // also decodes quoted-printable
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			tb.Fatalf("read part: %v", err)
		}
		body, err := io.ReadAll(p)
		if err != nil {
			tb.Fatal(err)
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		order = append(order, ct)
		bodies[ct] = strings.ReplaceAll(string(body), "\r\n", "\n")
	}
	return m.Header, order, bodies
}

// checkMessage checks a raw mail's headers and both parts.
func checkMessage(tb testing.TB, raw []byte, want Rendered) {
	tb.Helper()
	h, order, bodies := parseMail(tb, raw)
	subject, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
	if err != nil || subject != want.Subject {
		tb.Errorf("got Subject %q (%v); want %q", subject, err, want.Subject)
	}
	if from, err := h.AddressList("From"); err != nil || len(from) != 1 || from[0].Address != "no-reply@gate.example" || from[0].Name != "Gatehouse" {
		tb.Errorf("got From %q; want Gatehouse <no-reply@gate.example>", h.Get("From"))
	}
	if to, err := h.AddressList("To"); err != nil || len(to) != 1 || to[0].Address != "ann@example.com" {
		tb.Errorf("got To %q; want ann@example.com", h.Get("To"))
	}
	if _, err := h.Date(); err != nil {
		tb.Errorf("got Date %q: %v", h.Get("Date"), err)
	}
	if id := h.Get("Message-Id"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@gate.example>") {
		tb.Errorf("got Message-ID %q; want <…@gate.example>", id)
	}
	if got := h.Get("Auto-Submitted"); got != "auto-generated" {
		tb.Errorf("got Auto-Submitted %q; want auto-generated", got)
	}
	if strings.Join(order, ",") != "text/plain,text/html" {
		tb.Errorf("got parts %v; want [text/plain text/html]", order)
	}
	if bodies["text/plain"] != want.Text {
		tb.Errorf("got text part %q; want %q", bodies["text/plain"], want.Text)
	}
	if bodies["text/html"] != want.HTML {
		tb.Errorf("got html part %q; want %q", bodies["text/html"], want.HTML)
	}
}

func TestSMTPStartTLSIsMandatory(t *testing.T) {
	srv := newSMTPServer(t, smtpServerOptions{tls: SMTPTLSNone})
	tr := mustSMTP(t, SMTPConfig{Host: srv.host, Port: srv.port, TLS: SMTPTLSStartTLS, From: "no-reply@gate.example"}, nil)
	if err := tr.Deliver(t.Context(), "ann@example.com", Rendered{Subject: "s", Text: "t", HTML: "h"}); err == nil {
		t.Error("got nil error from a server without STARTTLS; want one")
	}
	if got := len(srv.mails()); got != 0 {
		t.Errorf("got %d mails; want 0", got)
	}
}

func TestSMTPServerDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there now
	tr := mustSMTP(t, SMTPConfig{Host: "127.0.0.1", Port: port, TLS: SMTPTLSNone, From: "no-reply@gate.example"}, nil)
	if err := tr.Deliver(t.Context(), "ann@example.com", Rendered{Subject: "s", Text: "t", HTML: "h"}); err == nil {
		t.Error("got nil error; want one")
	}
}

func TestSMTPDeliverHonoursDeadline(t *testing.T) {
	tr := mustSMTP(t, SMTPConfig{Host: "127.0.0.1", Port: 25, TLS: SMTPTLSNone, From: "no-reply@gate.example"}, nil)
	ctx, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel()
	if err := tr.Deliver(ctx, "ann@example.com", Rendered{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v; want context.DeadlineExceeded", err)
	}
}

func TestNewSMTPValidates(t *testing.T) {
	valid := SMTPConfig{Host: "smtp.example.com", From: "Gatehouse <no-reply@gate.example>"}
	tests := []struct {
		name string
		edit func(*SMTPConfig)
	}{
		{"empty host", func(c *SMTPConfig) { c.Host = "" }},
		{"bad from", func(c *SMTPConfig) { c.From = "not an address" }},
		{"from with CRLF", func(c *SMTPConfig) { c.From = "a@b.example\r\nBcc: x@y.example" }},
		{"bad tls", func(c *SMTPConfig) { c.TLS = "ssl" }},
		{"bad port", func(c *SMTPConfig) { c.Port = 70000 }},
	}
	logger, _ := newTestLogger(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			tt.edit(&cfg)
			if _, err := NewSMTP(cfg, logger); err == nil {
				t.Error("got nil error; want one")
			}
		})
	}
	t.Run("defaults", func(t *testing.T) {
		s, err := NewSMTP(valid, logger)
		if err != nil {
			t.Fatal(err)
		}
		if s.cfg.TLS != SMTPTLSStartTLS || s.cfg.Port != 587 || s.cfg.Timeout != defaultSMTPTimeout {
			t.Errorf("got tls %q, port %d, timeout %s; want starttls, 587, %s", s.cfg.TLS, s.cfg.Port, s.cfg.Timeout, defaultSMTPTimeout)
		}
	})
}

func TestSMTPConfigLogValueHidesPassword(t *testing.T) {
	logger, logs := newTestLogger(t)
	logger.Info("config", "smtp", SMTPConfig{Host: "h", Username: "u", Password: "hunter2-secret"})
	if strings.Contains(logs.String(), "hunter2-secret") {
		t.Errorf("got the password in the log:\n%s", logs)
	}
}

// TestWorkerWithRefusingSMTPServer: a real server refuses twice, then accepts;
// the worker delivers exactly one mail, whose link is the one queued.
func TestWorkerWithRefusingSMTPServer(t *testing.T) {
	srv := newSMTPServer(t, smtpServerOptions{auth: true, reject: func(n int) error {
		if n < 2 {
			return tempFailure
		}
		return nil
	}})
	tr := mustSMTP(t, SMTPConfig{
		Host: srv.host, Port: srv.port, TLS: SMTPTLSNone, Username: "mailer", Password: "s3cret",
		From: "Gatehouse <no-reply@gate.example>", Timeout: 5 * time.Second,
	}, nil)
	store := newMemStore()
	clock := newFakeClock()
	logger, logs := newTestLogger(t)
	w, o := newTestWorker(t, store, tr, clock.Now, logger, nil)
	queue(t, o, accounts.Mail{To: "ann@example.com", Kind: accounts.MailVerify, Link: testLink})

	for range 5 { // three attempts are needed; the extra polls must change nothing
		w.poll(t.Context())
		clock.Advance(time.Minute)
	}

	mails := srv.mails()
	if len(mails) != 1 {
		t.Fatalf("got %d mails; want 1", len(mails))
	}
	_, _, bodies := parseMail(t, mails[0].Raw)
	if !strings.Contains(bodies["text/plain"], testLink) || !strings.Contains(bodies["text/html"], `href="`+testLink+`"`) {
		t.Errorf("got a mail without the queued link:\n%s", mails[0].Raw)
	}
	if msgs, attempts := store.counts(); msgs != 0 || attempts != 0 {
		t.Errorf("got %d messages, %d attempts left; want 0, 0", msgs, attempts)
	}
	if got := strings.Count(logs.String(), `"event":"mail_failed"`); got != 2 {
		t.Errorf("got %d mail_failed logs; want 2", got)
	}
	assertNoSecret(t, "log", logs.String())
}

// hangingSMTPServer greets, answers EHLO, and then never answers again: a
// server that hangs mid-conversation.
func hangingSMTPServer(tb testing.TB) (host string, port int) {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.WriteString(c, "220 localhost ESMTP\r\n")
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if strings.HasPrefix(strings.ToUpper(line), "EHLO") {
						_, _ = io.WriteString(c, "250-localhost\r\n250 8BITMIME\r\n")
					}
					// Anything else: no answer, ever (until the client hangs up).
				}
			}()
		}
	}()
	a := l.Addr().(*net.TCPAddr)
	return a.IP.String(), a.Port
}

// TestSMTPDeliverAbortsHangingServer: a delivery to a server that stops
// answering after the greeting ends as soon as its context is cancelled
// (shutdown), not after the per-step timeout: go-mail honours the context
// only while dialling, so the transport closes the connection itself.
func TestSMTPDeliverAbortsHangingServer(t *testing.T) {
	host, port := hangingSMTPServer(t)
	tr := mustSMTP(t, SMTPConfig{Host: host, Port: port, TLS: SMTPTLSNone, From: "no-reply@gate.example", Timeout: time.Minute}, nil)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(200*time.Millisecond, cancel)
	began := time.Now()
	err := tr.Deliver(ctx, "ann@example.com", Rendered{Subject: "s", Text: "t", HTML: "h"})
	took := time.Since(began)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Deliver to a hanging server, cancelled: %v; want context.Canceled", err)
	}
	if took > 5*time.Second {
		t.Errorf("Deliver returned %s after its context was cancelled; want at once (the step timeout is 1m)", took-200*time.Millisecond)
	}
}
