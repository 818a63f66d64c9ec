package config

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"os"
	"strings"
	"time"
)

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
		} else if c.Server.OpsAddress == c.Server.Address && !strings.HasSuffix(c.Server.Address, ":0") {
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
	c.Parsed = Parsed{CORSOrigins: map[string]bool{}, RedirectHosts: map[string]bool{}}
	for _, p := range c.Server.TrustedProxies {
		n, err := ParseCIDR(p)
		if err != nil {
			bad("server.trusted_proxies", "%q is not an IP address or CIDR", p)
			continue
		}
		c.Parsed.TrustedProxies = append(c.Parsed.TrustedProxies, n)
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
		origin, err := ParseOrigin(o)
		if err != nil {
			bad("cors.allowed_origins", "%v", err)
			continue
		}
		c.Parsed.CORSOrigins[origin] = true
	}
	for _, o := range c.Redirects.AllowedHosts {
		origin, err := ParseOrigin(o)
		if err != nil {
			bad("redirects.allowed_hosts", "%v", err)
			continue
		}
		c.Parsed.RedirectHosts[origin] = true
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
