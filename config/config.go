// Package config loads Gatehouse's configuration: the embedded defaults
// (config.yaml at the repository root), an optional file given with -config,
// and GATEHOUSE_* environment variables, in that order. Unknown keys and
// invalid values are errors that name the key, so a typo stops the program at
// startup instead of silently running with a default.
package config

import (
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Secret is a configuration value that must never be printed: it redacts
// itself in logs and in fmt output.
type Secret string

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value {
	if s == "" {
		return slog.StringValue("")
	}
	return slog.StringValue("[redacted]")
}

// String implements fmt.Stringer so %v and %s never print the value.
func (s Secret) String() string { return s.LogValue().String() }

// GoString implements fmt.GoStringer so %#v never prints the value either.
func (s Secret) GoString() string { return "config.Secret(" + strconv.Quote(s.String()) + ")" }

// MarshalText keeps the value out of any encoding of the configuration
// (JSON logs of a whole struct, for one).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Reveal returns the secret's value, for the one place that needs it.
func (s Secret) Reveal() string { return string(s) }

// Config is the whole configuration. The yaml tags are the key names of
// config.yaml and, upper-cased with dots as underscores, of the environment
// variables (server.public_url → GATEHOUSE_SERVER_PUBLIC_URL).
type Config struct {
	Server      Server      `yaml:"server"`
	DataDir     string      `yaml:"data_dir"`
	DevMode     bool        `yaml:"dev_mode"`
	Log         Log         `yaml:"log"`
	MongoDB     MongoDB     `yaml:"mongodb"`
	Session     Session     `yaml:"session"`
	SMTP        SMTP        `yaml:"smtp"`
	Tokens      Tokens      `yaml:"tokens"`
	Password    Password    `yaml:"password"`
	RateLimits  RateLimits  `yaml:"rate_limits"`
	CORS        CORS        `yaml:"cors"`
	Redirects   Redirects   `yaml:"redirects"`
	ForwardAuth ForwardAuth `yaml:"forward_auth"`
	Providers   Providers   `yaml:"providers"`

	// Parsed holds what validation parsed from the keys above, so that the
	// program uses those values instead of parsing the keys again (and
	// dropping the errors the second time).
	Parsed Parsed `yaml:"-"`
}

// Parsed values of the configuration, filled by Load.
type Parsed struct {
	// TrustedProxies are server.trusted_proxies as networks.
	TrustedProxies []*net.IPNet
	// CORSOrigins and RedirectHosts are cors.allowed_origins and
	// redirects.allowed_hosts as canonical origins (scheme://host[:port]).
	CORSOrigins   map[string]bool
	RedirectHosts map[string]bool
}

// Server configures the HTTP listener.
type Server struct {
	Address string `yaml:"address"`
	// OpsAddress is the operations listener (/metrics, /healthz, /readyz,
	// later /admin/v1); empty or "off" disables it.
	OpsAddress        string        `yaml:"ops_address"`
	PublicURL         string        `yaml:"public_url"`
	TrustedProxies    []string      `yaml:"trusted_proxies"`
	MaxBodyBytes      int64         `yaml:"max_body_bytes"`
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	RequestTimeout    time.Duration `yaml:"request_timeout"`
	ShutdownTimeout   time.Duration `yaml:"shutdown_timeout"`
}

// Log configures the logger.
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// MongoDB configures the database; an empty URI starts the embedded one.
type MongoDB struct {
	URI      Secret        `yaml:"uri"`
	Database string        `yaml:"database"`
	Timeout  time.Duration `yaml:"timeout"`
}

// Session configures the session cookie and its lifetime.
type Session struct {
	Secret          Secret        `yaml:"secret"`
	CookieName      string        `yaml:"cookie_name"`
	CookieDomain    string        `yaml:"cookie_domain"`
	IdleTimeout     time.Duration `yaml:"idle_timeout"`
	AbsoluteTimeout time.Duration `yaml:"absolute_timeout"`
	CacheTTL        time.Duration `yaml:"cache_ttl"`
	RecentSignIn    time.Duration `yaml:"recent_sign_in"`
}

// SMTP configures outgoing mail; an empty host selects the development mailbox.
type SMTP struct {
	Host         string `yaml:"host"`
	Port         int    `yaml:"port"`
	Username     string `yaml:"username"`
	Password     Secret `yaml:"password"`
	TLS          string `yaml:"tls"`
	From         string `yaml:"from"`
	TemplatesDir string `yaml:"templates_dir"`
}

// Tokens configures the lifetime of mailed links.
type Tokens struct {
	VerifyTTL time.Duration `yaml:"verify_ttl"`
	ResetTTL  time.Duration `yaml:"reset_ttl"`
}

// Password configures the password policy and hashing cost.
type Password struct {
	MinLength int    `yaml:"min_length"`
	Argon2    Argon2 `yaml:"argon2"`
}

// Argon2 holds the argon2id cost and the bound on concurrent hashing.
type Argon2 struct {
	MemoryKiB     uint32        `yaml:"memory_kib"`
	Iterations    uint32        `yaml:"iterations"`
	Parallelism   uint8         `yaml:"parallelism"`
	MaxConcurrent int           `yaml:"max_concurrent"`
	MaxWaiting    int           `yaml:"max_waiting"`
	MaxWait       time.Duration `yaml:"max_wait"`
}

// RateLimits configures abuse protection.
type RateLimits struct {
	PerIP        int           `yaml:"per_ip"`
	PerAddress   int           `yaml:"per_address"`
	LockoutAfter int           `yaml:"lockout_after"`
	LockoutMax   time.Duration `yaml:"lockout_max"`
	MailInterval time.Duration `yaml:"mail_interval"`
	MailPerHour  int           `yaml:"mail_per_hour"`
	IPv6Prefix   int           `yaml:"ipv6_prefix"`
}

// CORS configures which browser origins may call /api/v1 with credentials.
type CORS struct {
	AllowedOrigins []string `yaml:"allowed_origins"`
}

// Redirects configures which absolute URLs return_to may name.
type Redirects struct {
	AllowedHosts []string `yaml:"allowed_hosts"`
}

// ForwardAuth configures /auth/check.
type ForwardAuth struct {
	Redirect bool `yaml:"redirect"`
}

// Providers configures social sign-in.
type Providers struct {
	Google                Google `yaml:"google"`
	GitHub                GitHub `yaml:"github"`
	OIDC                  []OIDC `yaml:"oidc"`
	AutoLinkVerifiedEmail bool   `yaml:"auto_link_verified_email"`
}

// OIDC configures "Sign in with <Label>" for any OpenID Connect provider
// (Microsoft, GitLab, Keycloak, …). Its endpoints come from the issuer's
// discovery document at startup, unless auth_url, token_url and jwks_url
// are all set. Environment variables cannot add entries; they can set an
// entry's client id and secret: GATEHOUSE_PROVIDERS_OIDC_<ID>_CLIENT_SECRET
// (the id upper-cased, "-" as "_").
type OIDC struct {
	ID           string `yaml:"id"`
	Label        string `yaml:"label"`
	Issuer       string `yaml:"issuer"`
	ClientID     string `yaml:"client_id"`
	ClientSecret Secret `yaml:"client_secret"`
	AuthURL      string `yaml:"auth_url"`
	TokenURL     string `yaml:"token_url"`
	JWKSURL      string `yaml:"jwks_url"`
}

// OIDCEnvName returns the variable that sets field (client_id or
// client_secret) of the providers.oidc entry with id.
func OIDCEnvName(id, field string) string {
	return EnvName("providers.oidc." + strings.ReplaceAll(id, "-", "_") + "." + field)
}

// oidcID is what an entry's id may be: it names the routes /auth/{id}.
var oidcID = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// Google configures "Sign in with Google"; endpoints default to Google's.
type Google struct {
	ClientID     string `yaml:"client_id"`
	ClientSecret Secret `yaml:"client_secret"`
	AuthURL      string `yaml:"auth_url"`
	TokenURL     string `yaml:"token_url"`
	UserinfoURL  string `yaml:"userinfo_url"`
	JWKSURL      string `yaml:"jwks_url"`
	Issuer       string `yaml:"issuer"`
}

// GitHub configures "Sign in with GitHub"; endpoints default to github.com.
type GitHub struct {
	ClientID     string `yaml:"client_id"`
	ClientSecret Secret `yaml:"client_secret"`
	AuthURL      string `yaml:"auth_url"`
	TokenURL     string `yaml:"token_url"`
	APIURL       string `yaml:"api_url"`
}

// SecureCookies reports whether cookies get the Secure attribute: always,
// except on plain-HTTP development setups.
func (c *Config) SecureCookies() bool {
	return strings.HasPrefix(c.Server.PublicURL, "https://")
}

// CookieName returns the session cookie's name: the configured one, or
// __Host-gatehouse when the browser can enforce its guarantees (HTTPS, no
// Domain attribute), or plain "gatehouse" otherwise.
func (c *Config) CookieName() string {
	switch {
	case c.Session.CookieName != "":
		return c.Session.CookieName
	case c.SecureCookies() && c.Session.CookieDomain == "":
		return "__Host-gatehouse"
	default:
		return "gatehouse"
	}
}
