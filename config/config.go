// Package config loads Gatehouse's configuration: the embedded defaults
// (config.yaml at the repository root), an optional file given with -config,
// and GATEHOUSE_* environment variables, in that order. Unknown keys and
// invalid values are errors that name the key, so a typo stops the program at
// startup instead of silently running with a default.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/mail"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
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

// EnvPrefix starts every environment variable that overrides a key.
const EnvPrefix = "GATEHOUSE_"

// Load builds the configuration from the embedded defaults, then the file
// (if path is not empty), then the environment. It validates the result.
func Load(defaults []byte, path string, getenv func(string) string) (*Config, error) {
	var c Config
	if err := decodeStrict(defaults, "defaults", &c); err != nil {
		return nil, err
	}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		if err := decodeStrict(b, path, &c); err != nil {
			return nil, err
		}
	}
	if err := applyEnv(reflect.ValueOf(&c).Elem(), "", getenv); err != nil {
		return nil, err
	}
	for i := range c.Providers.OIDC {
		p := &c.Providers.OIDC[i]
		if v := getenv(OIDCEnvName(p.ID, "client_id")); v != "" {
			p.ClientID = v
		}
		if v := getenv(OIDCEnvName(p.ID, "client_secret")); v != "" {
			p.ClientSecret = Secret(v)
		}
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// decodeStrict decodes YAML over c, refusing keys that c does not have.
func decodeStrict(b []byte, name string, c *Config) error {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if len(root.Content) == 0 {
		return nil // empty file
	}
	if err := checkKeys(root.Content[0], reflect.TypeOf(*c), ""); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: %w", name, describeYAMLError(err))
	}
	return nil
}

// checkKeys walks a mapping node beside the struct type so that an unknown
// key is reported with its full dotted path and line.
func checkKeys(n *yaml.Node, t reflect.Type, prefix string) error {
	if n.Kind == yaml.SequenceNode {
		// yaml drops null items from a list silently; [null] must not
		// quietly become an empty allow-list.
		for _, item := range n.Content {
			if item.Tag == "!!null" {
				return fmt.Errorf("line %d: %s: null is not a valid item", item.Line, strings.TrimSuffix(prefix, "."))
			}
		}
	}
	if n.Kind == yaml.SequenceNode && t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct {
		for i, item := range n.Content {
			if err := checkKeys(item, t.Elem(), fmt.Sprintf("%s[%d].", strings.TrimSuffix(prefix, "."), i)); err != nil {
				return err
			}
		}
		return nil
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		if n.Tag == "!!null" {
			return nil
		}
		return fmt.Errorf("line %d: %s must be a mapping", n.Line, strings.TrimSuffix(prefix, "."))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		f, ok := fieldByTag(t, k.Value)
		if !ok {
			return fmt.Errorf("line %d: unknown key %q", k.Line, prefix+k.Value)
		}
		if err := checkKeys(v, f.Type, prefix+k.Value+"."); err != nil {
			return err
		}
	}
	return nil
}

func fieldByTag(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if strings.Split(f.Tag.Get("yaml"), ",")[0] == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// describeYAMLError keeps yaml's message, which names the line and the value.
func describeYAMLError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return fmt.Errorf("invalid value: %s", strings.Join(te.Errors, "; "))
	}
	return err
}

// applyEnv sets every leaf field whose environment variable is set.
func applyEnv(v reflect.Value, prefix string, getenv func(string) string) error {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		key := prefix + strings.Split(f.Tag.Get("yaml"), ",")[0]
		fv := v.Field(i)
		if f.Type.Kind() == reflect.Struct {
			if err := applyEnv(fv, key+".", getenv); err != nil {
				return err
			}
			continue
		}
		env := EnvName(key)
		raw := getenv(env)
		if raw == "" {
			continue
		}
		if f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct {
			return fmt.Errorf("%s (%s): a list of entries is set in the config file, not in a variable", key, env)
		}
		if err := setFromString(fv, raw); err != nil {
			return fmt.Errorf("%s (%s): %w", key, env, err)
		}
	}
	return nil
}

// EnvName returns the environment variable that overrides a dotted key.
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

func setFromString(v reflect.Value, raw string) error {
	switch v.Interface().(type) {
	case time.Duration:
		d, err := time.ParseDuration(raw)
		if err != nil {
			return fmt.Errorf("invalid duration %q", raw)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("invalid boolean %q", raw)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return fmt.Errorf("invalid number %q", raw)
		}
		v.SetInt(n)
	case reflect.Uint8, reflect.Uint32:
		n, err := strconv.ParseUint(raw, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("invalid number %q", raw)
		}
		v.SetUint(n)
	case reflect.Slice:
		var items []string
		for _, s := range strings.Split(raw, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
		v.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

// Argon2 floor from the OWASP Password Storage Cheat Sheet; configuration may
// raise the cost, never lower it below this.
const (
	minArgonMemoryKiB  = 19 * 1024
	minArgonIterations = 2
)

func (c *Config) validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}

	if _, _, err := net.SplitHostPort(c.Server.Address); err != nil {
		bad("server.address", "must be host:port, got %q", c.Server.Address)
	}
	if strings.EqualFold(c.Server.OpsAddress, "off") {
		c.Server.OpsAddress = ""
	}
	if c.Server.OpsAddress != "" {
		if _, _, err := net.SplitHostPort(c.Server.OpsAddress); err != nil {
			bad("server.ops_address", "must be host:port, empty or off, got %q", c.Server.OpsAddress)
		} else if c.Server.OpsAddress == c.Server.Address {
			bad("server.ops_address", "must differ from server.address: /metrics must not be public")
		}
	}
	pu, err := url.Parse(c.Server.PublicURL)
	switch {
	case err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "":
		bad("server.public_url", "must be an absolute http(s) URL, got %q", c.Server.PublicURL)
	case pu.Path != "" && pu.Path != "/" || pu.RawQuery != "" || pu.Fragment != "":
		bad("server.public_url", "must be an origin without path, query or fragment, got %q", c.Server.PublicURL)
	case pu.Scheme == "http" && !c.DevMode && !isLoopbackHost(pu.Hostname()):
		bad("server.public_url", "must be https outside dev_mode (session cookies are Secure), got %q", c.Server.PublicURL)
	}
	c.Server.PublicURL = strings.TrimSuffix(c.Server.PublicURL, "/")
	for _, p := range c.Server.TrustedProxies {
		if _, err := ParseCIDR(p); err != nil {
			bad("server.trusted_proxies", "%q is not an IP address or CIDR", p)
		}
	}
	if c.Server.MaxBodyBytes < 1024 || c.Server.MaxBodyBytes > 10<<20 {
		bad("server.max_body_bytes", "must be between 1024 and 10485760, got %d", c.Server.MaxBodyBytes)
	}
	positive := func(key string, d time.Duration) {
		if d <= 0 {
			bad(key, "must be a positive duration, got %s", d)
		}
	}
	positive("server.read_header_timeout", c.Server.ReadHeaderTimeout)
	positive("server.request_timeout", c.Server.RequestTimeout)
	positive("server.shutdown_timeout", c.Server.ShutdownTimeout)

	if c.DataDir == "" {
		bad("data_dir", "must not be empty")
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "must be text or json, got %q", c.Log.Format)
	}

	if c.MongoDB.URI != "" {
		if u, err := url.Parse(c.MongoDB.URI.Reveal()); err != nil || (u.Scheme != "mongodb" && u.Scheme != "mongodb+srv") {
			bad("mongodb.uri", "must be a mongodb:// or mongodb+srv:// URI")
		}
	}
	if c.MongoDB.Database == "" || strings.ContainsAny(c.MongoDB.Database, `/\. "$`) {
		bad("mongodb.database", "must be a plain database name, got %q", c.MongoDB.Database)
	}
	positive("mongodb.timeout", c.MongoDB.Timeout)

	if !c.DevMode && len(c.Session.Secret) < 32 {
		bad("session.secret", "must be set to at least 32 characters outside dev_mode (GATEHOUSE_SESSION_SECRET)")
	}
	if c.Session.Secret != "" && len(c.Session.Secret) < 32 {
		bad("session.secret", "must be at least 32 characters")
	}
	if c.Session.CookieName != "" && !validCookieName(c.Session.CookieName) {
		bad("session.cookie_name", "%q is not a valid cookie name", c.Session.CookieName)
	}
	if strings.HasPrefix(c.Session.CookieName, "__Host-") && c.Session.CookieDomain != "" {
		bad("session.cookie_name", "a __Host- cookie cannot have session.cookie_domain")
	}
	if d := c.Session.CookieDomain; d != "" && (strings.ContainsAny(d, " ;,/:") || !strings.Contains(strings.Trim(d, "."), ".")) {
		bad("session.cookie_domain", "%q is not a domain", d)
	}
	positive("session.idle_timeout", c.Session.IdleTimeout)
	positive("session.absolute_timeout", c.Session.AbsoluteTimeout)
	if c.Session.IdleTimeout > c.Session.AbsoluteTimeout {
		bad("session.idle_timeout", "must not exceed session.absolute_timeout")
	}
	if c.Session.CacheTTL < 0 || c.Session.CacheTTL > time.Minute {
		bad("session.cache_ttl", "must be between 0s and 1m, got %s", c.Session.CacheTTL)
	}
	if c.Session.RecentSignIn < time.Minute || c.Session.RecentSignIn > 24*time.Hour {
		bad("session.recent_sign_in", "must be between 1m and 24h, got %s", c.Session.RecentSignIn)
	}

	if c.SMTP.Host != "" {
		if c.SMTP.Port < 1 || c.SMTP.Port > 65535 {
			bad("smtp.port", "must be a TCP port, got %d", c.SMTP.Port)
		}
		if c.SMTP.Password != "" && c.SMTP.Username == "" {
			bad("smtp.username", "must be set when smtp.password is")
		}
	}
	switch c.SMTP.TLS {
	case "none", "starttls", "tls":
	default:
		bad("smtp.tls", "must be none, starttls or tls, got %q", c.SMTP.TLS)
	}
	if _, err := mail.ParseAddress(c.SMTP.From); err != nil {
		bad("smtp.from", "is not a mail address: %q", c.SMTP.From)
	}
	if c.SMTP.TemplatesDir != "" {
		if st, err := os.Stat(c.SMTP.TemplatesDir); err != nil || !st.IsDir() {
			bad("smtp.templates_dir", "%q is not a directory", c.SMTP.TemplatesDir)
		}
	}

	positive("tokens.verify_ttl", c.Tokens.VerifyTTL)
	positive("tokens.reset_ttl", c.Tokens.ResetTTL)

	if c.Password.MinLength < 8 || c.Password.MinLength > 128 {
		bad("password.min_length", "must be between 8 and 128, got %d", c.Password.MinLength)
	}
	a := c.Password.Argon2
	if a.MemoryKiB < minArgonMemoryKiB || a.MemoryKiB > 4<<20 {
		bad("password.argon2.memory_kib", "must be between %d and %d, got %d", minArgonMemoryKiB, 4<<20, a.MemoryKiB)
	}
	if a.Iterations < minArgonIterations || a.Iterations > 100 {
		bad("password.argon2.iterations", "must be between %d and 100, got %d", minArgonIterations, a.Iterations)
	}
	if a.Parallelism < 1 {
		bad("password.argon2.parallelism", "must be at least 1")
	}
	if a.MaxConcurrent < 0 || a.MaxConcurrent > 1024 {
		bad("password.argon2.max_concurrent", "must be between 0 (number of CPUs) and 1024, got %d", a.MaxConcurrent)
	}
	if a.MaxWaiting < 0 || a.MaxWaiting > 100000 {
		bad("password.argon2.max_waiting", "must be between 0 and 100000, got %d", a.MaxWaiting)
	}
	positive("password.argon2.max_wait", a.MaxWait)

	if c.RateLimits.PerIP < 1 {
		bad("rate_limits.per_ip", "must be at least 1, got %d", c.RateLimits.PerIP)
	}
	if c.RateLimits.PerAddress < 1 {
		bad("rate_limits.per_address", "must be at least 1, got %d", c.RateLimits.PerAddress)
	}
	if c.RateLimits.LockoutAfter < 1 {
		bad("rate_limits.lockout_after", "must be at least 1, got %d", c.RateLimits.LockoutAfter)
	}
	positive("rate_limits.lockout_max", c.RateLimits.LockoutMax)
	if c.RateLimits.MailInterval < time.Second || c.RateLimits.MailInterval > time.Hour {
		bad("rate_limits.mail_interval", "must be between 1s and 1h, got %s", c.RateLimits.MailInterval)
	}
	if c.RateLimits.IPv6Prefix < 32 || c.RateLimits.IPv6Prefix > 128 {
		bad("rate_limits.ipv6_prefix", "must be between 32 and 128, got %d", c.RateLimits.IPv6Prefix)
	}
	if c.RateLimits.MailPerHour < 1 || c.RateLimits.MailPerHour > 100 {
		bad("rate_limits.mail_per_hour", "must be between 1 and 100, got %d", c.RateLimits.MailPerHour)
	}

	for _, o := range c.CORS.AllowedOrigins {
		if _, err := ParseOrigin(o); err != nil {
			bad("cors.allowed_origins", "%v", err)
		}
	}
	for _, o := range c.Redirects.AllowedHosts {
		if _, err := ParseOrigin(o); err != nil {
			bad("redirects.allowed_hosts", "%v", err)
		}
	}

	g := c.Providers.Google
	if (g.ClientID == "") != (g.ClientSecret == "") {
		bad("providers.google", "client_id and client_secret must be set together")
	}
	for key, u := range map[string]string{"auth_url": g.AuthURL, "token_url": g.TokenURL, "userinfo_url": g.UserinfoURL, "jwks_url": g.JWKSURL, "issuer": g.Issuer} {
		if u != "" && !isHTTPURL(u) {
			bad("providers.google."+key, "must be an http(s) URL, got %q", u)
		}
	}
	gh := c.Providers.GitHub
	if (gh.ClientID == "") != (gh.ClientSecret == "") {
		bad("providers.github", "client_id and client_secret must be set together")
	}
	for key, u := range map[string]string{"auth_url": gh.AuthURL, "token_url": gh.TokenURL, "api_url": gh.APIURL} {
		if u != "" && !isHTTPURL(u) {
			bad("providers.github."+key, "must be an http(s) URL, got %q", u)
		}
	}
	c.validateOIDC(bad)
	return errors.Join(errs...)
}

// validateOIDC checks the providers.oidc entries.
func (c *Config) validateOIDC(bad func(key, format string, args ...any)) {
	// google and github are the built-in providers; /auth/link and
	// /auth/check are routes of their own.
	seen := map[string]bool{"google": true, "github": true, "link": true, "check": true}
	for i, p := range c.Providers.OIDC {
		key := fmt.Sprintf("providers.oidc[%d]", i)
		switch {
		case !oidcID.MatchString(p.ID):
			bad(key+".id", "must be 1-32 lower-case letters, digits and '-', starting with a letter, got %q", p.ID)
		case seen[p.ID]:
			bad(key+".id", "%q is taken by another provider or route", p.ID)
		}
		seen[p.ID] = true
		if strings.TrimSpace(p.Label) == "" {
			bad(key+".label", "must be set: buttons say \"Continue with <label>\"")
		}
		if !isHTTPURL(p.Issuer) {
			bad(key+".issuer", "must be the provider's http(s) issuer URL, got %q", p.Issuer)
		}
		if p.ClientID == "" || p.ClientSecret == "" {
			bad(key, "client_id and client_secret must be set (%s, %s)", OIDCEnvName(p.ID, "client_id"), OIDCEnvName(p.ID, "client_secret"))
		}
		set := 0
		for k, u := range map[string]string{"auth_url": p.AuthURL, "token_url": p.TokenURL, "jwks_url": p.JWKSURL} {
			if u == "" {
				continue
			}
			set++
			if !isHTTPURL(u) {
				bad(key+"."+k, "must be an http(s) URL, got %q", u)
			}
		}
		if set != 0 && set != 3 {
			bad(key, "set all of auth_url, token_url and jwks_url, or none to use discovery")
		}
	}
}

// ParseOrigin checks that s is exactly scheme://host[:port] (an origin as a
// browser sends it) and returns it in canonical form.
func ParseOrigin(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q is not an origin (scheme://host[:port])", s)
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

// ParseCIDR accepts a CIDR or a single IP address.
func ParseCIDR(s string) (*net.IPNet, error) {
	if !strings.Contains(s, "/") {
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, fmt.Errorf("invalid IP %q", s)
		}
		bits := 128
		if ip4 := ip.To4(); ip4 != nil {
			ip, bits = ip4, 32
		}
		return &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}, nil
	}
	_, n, err := net.ParseCIDR(s)
	return n, err
}

func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func validCookieName(s string) bool {
	for _, r := range s {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune(`()<>@,;:\"/[]?={}`, r) {
			return false
		}
	}
	return s != ""
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
