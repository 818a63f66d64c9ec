package mail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	netmail "net/mail"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/gatehouse/gatehouse/accounts"
)

// TLS modes of an SMTPConfig.
const (
	// SMTPTLSNone speaks plain SMTP, for a relay on a trusted network or a test server.
	SMTPTLSNone = "none"
	// SMTPTLSStartTLS requires STARTTLS and fails if the server does not offer it.
	SMTPTLSStartTLS = "starttls"
	// SMTPTLSImplicit speaks TLS from the first byte (SMTPS, port 465).
	SMTPTLSImplicit = "tls"
)

// defaultSMTPTimeout bounds each network step of a delivery.
const defaultSMTPTimeout = 15 * time.Second

// SMTPConfig configures an SMTP transport.
type SMTPConfig struct {
	Host string
	// Port defaults to 25, 587 or 465 for TLS none, starttls or tls.
	Port int
	// Username enables SMTP AUTH; empty means no authentication.
	Username string
	Password string
	// TLS is SMTPTLSNone, SMTPTLSStartTLS (the default) or SMTPTLSImplicit.
	TLS string
	// From is the sender, e.g. "Gatehouse <no-reply@example.com>".
	From string
	// HELO is the name the client announces; go-mail's default (the host name) if empty.
	HELO string
	// Timeout bounds each network step of a delivery (default 15s).
	Timeout time.Duration
}

// LogValue keeps the password out of logs, should a config ever be logged whole.
func (c SMTPConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("host", c.Host),
		slog.Int("port", c.Port),
		slog.String("username", c.Username),
		slog.Bool("password_set", c.Password != ""),
		slog.String("tls", c.TLS),
		slog.String("from", c.From),
	)
}

var _ Transport = (*SMTP)(nil)

// SMTP delivers mail to an SMTP server with go-mail. It dials once per mail:
// a login gateway sends little mail, and a fresh connection has no stale state
// to recover after the server restarts.
type SMTP struct {
	cfg      SMTPConfig
	from     *netmail.Address
	idDomain string
	// rootCAs replaces the system roots; tests set it to trust their server.
	rootCAs *x509.CertPool
}

// NewSMTP validates cfg and returns an SMTP transport. It does not connect:
// the server may well be down at startup, and the outbox waits for it.
// logger receives one warning if credentials would cross the network unencrypted.
func NewSMTP(cfg SMTPConfig, logger *slog.Logger) (*SMTP, error) {
	if cfg.Host == "" {
		return nil, errors.New("smtp config: empty host")
	}
	if cfg.TLS == "" {
		cfg.TLS = SMTPTLSStartTLS
	}
	if cfg.Port == 0 {
		switch cfg.TLS {
		case SMTPTLSNone:
			cfg.Port = 25
		case SMTPTLSStartTLS:
			cfg.Port = 587
		case SMTPTLSImplicit:
			cfg.Port = 465
		}
	}
	switch cfg.TLS {
	case SMTPTLSNone, SMTPTLSStartTLS, SMTPTLSImplicit:
	default:
		return nil, fmt.Errorf("smtp config: tls %q: want %s, %s or %s", cfg.TLS, SMTPTLSNone, SMTPTLSStartTLS, SMTPTLSImplicit)
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		return nil, fmt.Errorf("smtp config: port %d out of range", cfg.Port)
	}
	from, err := netmail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("smtp config: from %q: %w", cfg.From, err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultSMTPTimeout
	}
	if cfg.TLS == SMTPTLSNone && cfg.Username != "" {
		logger.Warn("smtp credentials will be sent without TLS", "host", cfg.Host, "port", cfg.Port)
	}
	return &SMTP{
		cfg:      cfg,
		from:     from,
		idDomain: from.Address[strings.LastIndexByte(from.Address, '@')+1:],
	}, nil
}

// Deliver sends msg to one recipient. msg.Link is ignored: it is already in the bodies.
func (s *SMTP) Deliver(ctx context.Context, to string, msg Rendered) error {
	m := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	m.FromMailAddress(s.from)
	// The recipient's domain in punycode: SMTP servers without SMTPUTF8
	// accept only ASCII domains, and the stored address keeps its Unicode
	// form.
	if err := m.To(accounts.DomainToASCII(to)); err != nil {
		return fmt.Errorf("smtp recipient: %w", err)
	}
	m.Subject(msg.Subject)
	m.SetDate()
	m.SetMessageIDWithValue(newID() + "@" + s.idDomain)
	// RFC 3834: keeps vacation responders from answering a no-reply address.
	m.SetGenHeader(gomail.Header("Auto-Submitted"), "auto-generated")
	m.SetBodyString(gomail.TypeTextPlain, msg.Text)
	m.AddAlternativeString(gomail.TypeTextHTML, msg.HTML)

	client, err := s.client(ctx)
	if err != nil {
		return err
	}
	if err := client.DialAndSendWithContext(ctx, m); err != nil {
		if ctx.Err() != nil {
			// The conversation was cut off because ctx ended (shutdown,
			// or the lease running out): say so, not "use of closed
			// network connection".
			return fmt.Errorf("smtp delivery: %w (%w)", context.Cause(ctx), err)
		}
		return fmt.Errorf("smtp delivery: %w", err)
	}
	return nil
}

// dial connects to the server for one delivery and ties the connection to
// ctx: when ctx ends, the connection is closed, which aborts the SMTP
// conversation at once. go-mail honours a context only while dialling; after
// that a server that stops answering mid-conversation would hold a
// delivery, and a shutdown, for up to the per-step timeout. For implicit TLS
// the TLS handshake happens here, so go-mail sees a *tls.Conn.
func (s *SMTP) dial(delivery context.Context, tlsCfg *tls.Config) gomail.DialContextFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := &net.Dialer{}
		var conn net.Conn
		var err error
		if s.cfg.TLS == SMTPTLSImplicit {
			conn, err = (&tls.Dialer{NetDialer: d, Config: tlsCfg}).DialContext(ctx, network, addr)
		} else {
			conn, err = d.DialContext(ctx, network, addr)
		}
		if err != nil {
			return nil, err
		}
		// Released when delivery ends: the worker cancels it after Deliver.
		context.AfterFunc(delivery, func() { _ = conn.Close() })
		return conn, nil
	}
}

// client returns a go-mail client for one delivery.
func (s *SMTP) client(ctx context.Context) (*gomail.Client, error) {
	// go-mail applies ctx only while dialing; after that each step has its own
	// timeout (set once at dial and again before sending). Capping that timeout
	// at half the time left keeps the whole conversation inside ctx's deadline,
	// which the worker sets before its lease on the mail ends.
	timeout := s.cfg.Timeout
	if deadline, ok := ctx.Deadline(); ok {
		left := time.Until(deadline) / 2
		if left <= 0 {
			return nil, fmt.Errorf("smtp delivery: %w", context.DeadlineExceeded)
		}
		timeout = min(timeout, left)
	}
	tlsCfg := &tls.Config{
		ServerName: s.cfg.Host,
		MinVersion: tls.VersionTLS12,
		RootCAs:    s.rootCAs,
	}
	opts := []gomail.Option{
		gomail.WithPort(s.cfg.Port),
		gomail.WithTimeout(timeout),
		gomail.WithTLSConfig(tlsCfg),
		gomail.WithDialContextFunc(s.dial(ctx, tlsCfg)),
	}
	switch s.cfg.TLS {
	case SMTPTLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case SMTPTLSStartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case SMTPTLSImplicit:
		// dial does the TLS handshake; go-mail must not try STARTTLS.
		opts = append(opts, gomail.WithSSL())
	}
	if s.cfg.HELO != "" {
		opts = append(opts, gomail.WithHELO(s.cfg.HELO))
	}
	if s.cfg.Username != "" {
		opts = append(opts, gomail.WithUsername(s.cfg.Username), gomail.WithPassword(s.cfg.Password))
		if s.cfg.TLS != SMTPTLSStartTLS {
			// go-mail's auto-discovery refuses plain-text mechanisms when
			// it did not encrypt the connection itself: with "none" the
			// operator chose that explicitly, and with implicit TLS our
			// dial did the TLS handshake. So allow them, last.
			opts = append(opts, gomail.WithOpportunisticSMTPAuth(
				gomail.SMTPAuthSCRAMSHA256, gomail.SMTPAuthSCRAMSHA1, gomail.SMTPAuthCramMD5,
				gomail.SMTPAuthPlainNoEnc, gomail.SMTPAuthLoginNoEnc))
		} else {
			opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover))
		}
	}
	c, err := gomail.NewClient(s.cfg.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("smtp client: %w", err)
	}
	return c, nil
}
