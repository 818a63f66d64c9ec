package config

import (
	"bytes"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

// defaults reads the repository's config.yaml, the file main embeds.
func defaults(tb testing.TB) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", "config.yaml"))
	if err != nil {
		tb.Fatalf("read ../config.yaml: %v", err)
	}
	return b
}

// envFunc returns a getenv over a map.
func envFunc(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

// writeFile writes a config file into a temporary directory.
func writeFile(tb testing.TB, content string) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	c, err := Load(defaults(t), "", envFunc(nil))
	if err != nil {
		t.Fatalf("Load(config.yaml) = %v; want no error", err)
	}
	checks := []struct {
		key       string
		got, want any
	}{
		{"server.address", c.Server.Address, "127.0.0.1:8080"},
		{"server.public_url", c.Server.PublicURL, "http://127.0.0.1:8080"},
		{"server.max_body_bytes", c.Server.MaxBodyBytes, int64(65536)},
		{"server.read_header_timeout", c.Server.ReadHeaderTimeout, 5 * time.Second},
		{"dev_mode", c.DevMode, true},
		{"mongodb.uri", c.MongoDB.URI, Secret("")},
		{"mongodb.database", c.MongoDB.Database, "gatehouse"},
		{"session.idle_timeout", c.Session.IdleTimeout, 168 * time.Hour},
		{"session.absolute_timeout", c.Session.AbsoluteTimeout, 720 * time.Hour},
		{"smtp.port", c.SMTP.Port, 587},
		{"smtp.tls", c.SMTP.TLS, "starttls"},
		{"tokens.verify_ttl", c.Tokens.VerifyTTL, 24 * time.Hour},
		{"tokens.reset_ttl", c.Tokens.ResetTTL, time.Hour},
		{"password.min_length", c.Password.MinLength, 12},
		{"password.argon2.memory_kib", c.Password.Argon2.MemoryKiB, uint32(19456)},
		{"password.argon2.iterations", c.Password.Argon2.Iterations, uint32(2)},
		{"password.argon2.parallelism", c.Password.Argon2.Parallelism, uint8(1)},
		{"cors.allowed_origins", len(c.CORS.AllowedOrigins), 0},
		{"redirects.allowed_hosts", len(c.Redirects.AllowedHosts), 0},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %#v; want %#v", ch.key, ch.got, ch.want)
		}
	}
	if got := c.CookieName(); got != "gatehouse" {
		t.Errorf("CookieName() on plain HTTP = %q; want gatehouse", got)
	}
	if c.SecureCookies() {
		t.Error("SecureCookies() on plain HTTP = true; want false")
	}
}

// yamlKeys returns every dotted key path of a YAML document's mappings,
// leaves and intermediate mappings alike.
func yamlKeys(tb testing.TB, b []byte) map[string]bool {
	tb.Helper()
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		tb.Fatalf("parse config.yaml: %v", err)
	}
	keys := map[string]bool{}
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := prefix + n.Content[i].Value
			keys[k] = true
			walk(n.Content[i+1], k+".")
		}
	}
	walk(root.Content[0], "")
	return keys
}

// structKeys returns every dotted key path of Config's yaml tags; leaves
// maps each path to whether it is a leaf.
func structKeys(t reflect.Type, prefix string, out map[string]bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		name := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if name == "" || name == "-" {
			continue
		}
		key := prefix + name
		leaf := f.Type.Kind() != reflect.Struct
		out[key] = leaf
		if !leaf {
			structKeys(f.Type, key+".", out)
		}
	}
}

// TestConfigFileDocumentsEveryField: config.yaml lists every key the
// program reads, and reads nothing it does not list (API.md: config.yaml
// documents every key).
func TestConfigFileDocumentsEveryField(t *testing.T) {
	t.Parallel()
	inFile := yamlKeys(t, defaults(t))
	inStruct := map[string]bool{}
	structKeys(reflect.TypeOf(Config{}), "", inStruct)
	for k := range inFile {
		if _, ok := inStruct[k]; !ok {
			t.Errorf("config.yaml key %s has no field in Config", k)
		}
	}
	for k, leaf := range inStruct {
		if !inFile[k] {
			kind := "section"
			if leaf {
				kind = "field"
			}
			t.Errorf("Config %s %s is not in config.yaml", kind, k)
		}
	}
	// Every leaf can be overridden from the environment: its name is
	// derived from the key.
	for k, leaf := range inStruct {
		if leaf && !strings.HasPrefix(EnvName(k), "GATEHOUSE_") {
			t.Errorf("EnvName(%s) = %s; want a GATEHOUSE_ variable", k, EnvName(k))
		}
	}
}

func TestLoadEnvOverrides(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"GATEHOUSE_SERVER_PUBLIC_URL":           "https://login.example.com",
		"GATEHOUSE_CORS_ALLOWED_ORIGINS":        "http://a.example, http://b.example",
		"GATEHOUSE_REDIRECTS_ALLOWED_HOSTS":     "https://app.example:8443",
		"GATEHOUSE_SESSION_IDLE_TIMEOUT":        "90m",
		"GATEHOUSE_SERVER_READ_HEADER_TIMEOUT":  "1s",
		"GATEHOUSE_FORWARD_AUTH_REDIRECT":       "false",
		"GATEHOUSE_PASSWORD_MIN_LENGTH":         "16",
		"GATEHOUSE_SERVER_MAX_BODY_BYTES":       "4096",
		"GATEHOUSE_PASSWORD_ARGON2_PARALLELISM": "2",
		"GATEHOUSE_SMTP_PASSWORD":               "smtp-pass-from-env",
		"GATEHOUSE_SMTP_USERNAME":               "mailer",
	}
	c, err := Load(defaults(t), "", envFunc(env))
	if err != nil {
		t.Fatalf("Load = %v; want no error", err)
	}
	checks := []struct {
		key       string
		got, want any
	}{
		{"server.public_url", c.Server.PublicURL, "https://login.example.com"},
		{"cors.allowed_origins", c.CORS.AllowedOrigins, []string{"http://a.example", "http://b.example"}},
		{"redirects.allowed_hosts", c.Redirects.AllowedHosts, []string{"https://app.example:8443"}},
		{"session.idle_timeout", c.Session.IdleTimeout, 90 * time.Minute},
		{"server.read_header_timeout", c.Server.ReadHeaderTimeout, time.Second},
		{"forward_auth.redirect", c.ForwardAuth.Redirect, false},
		{"password.min_length", c.Password.MinLength, 16},
		{"server.max_body_bytes", c.Server.MaxBodyBytes, int64(4096)},
		{"password.argon2.parallelism", c.Password.Argon2.Parallelism, uint8(2)},
		{"smtp.password", c.SMTP.Password.Reveal(), "smtp-pass-from-env"},
		// Untouched keys keep their defaults.
		{"session.absolute_timeout", c.Session.AbsoluteTimeout, 720 * time.Hour},
		{"server.address", c.Server.Address, "127.0.0.1:8080"},
	}
	for _, ch := range checks {
		if diff := cmp.Diff(ch.want, ch.got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", ch.key, diff)
		}
	}
	if got := c.CookieName(); got != "__Host-gatehouse" {
		t.Errorf("CookieName() on HTTPS without a domain = %q; want __Host-gatehouse", got)
	}
	if !c.SecureCookies() {
		t.Error("SecureCookies() on HTTPS = false; want true")
	}
}

// TestLoadOrder: a file overrides the defaults and the environment
// overrides the file.
func TestLoadOrder(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "password:\n  min_length: 14\nserver:\n  address: 127.0.0.1:9090\n")
	c, err := Load(defaults(t), path, envFunc(map[string]string{"GATEHOUSE_PASSWORD_MIN_LENGTH": "20"}))
	if err != nil {
		t.Fatalf("Load = %v; want no error", err)
	}
	if c.Password.MinLength != 20 {
		t.Errorf("password.min_length = %d; want 20 from the environment", c.Password.MinLength)
	}
	if c.Server.Address != "127.0.0.1:9090" {
		t.Errorf("server.address = %q; want 127.0.0.1:9090 from the file", c.Server.Address)
	}
	if c.Server.PublicURL != "http://127.0.0.1:8080" {
		t.Errorf("server.public_url = %q; want the default", c.Server.PublicURL)
	}
}

// TestLoadErrorsNameTheKey: unknown keys and invalid values stop the
// program with a message naming the key (API.md, configuration contract).
func TestLoadErrorsNameTheKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		file string
		env  map[string]string
		key  string
	}{
		{"unknown key", "server:\n  adress: x\n", nil, "server.adress"},
		{"unknown top-level key", "sessions:\n  secret: x\n", nil, "sessions"},
		{"unknown nested key", "password:\n  argon2:\n    memory: 1\n", nil, "password.argon2.memory"},
		{"min_length below 8", "password:\n  min_length: 7\n", nil, "password.min_length"},
		{"min_length above 128", "password:\n  min_length: 129\n", nil, "password.min_length"},
		{"min_length not a number", "password:\n  min_length: twelve\n", nil, "min_length"},
		{"smtp.tls", "smtp:\n  tls: maybe\n", nil, "smtp.tls"},
		{"negative idle timeout", "session:\n  idle_timeout: -1s\n", nil, "session.idle_timeout"},
		{"null origin", "cors:\n  allowed_origins: [null]\n", nil, "cors.allowed_origins"},
		{"origin with a path", "cors:\n  allowed_origins: [\"http://a.example/app\"]\n", nil, "cors.allowed_origins"},
		{"origin null string", "cors:\n  allowed_origins: [\"null\"]\n", nil, "cors.allowed_origins"},
		{"redirect host with userinfo", "redirects:\n  allowed_hosts: [\"http://u@a.example\"]\n", nil, "redirects.allowed_hosts"},
		{"mongodb.uri not mongodb", "mongodb:\n  uri: http://x\n", nil, "mongodb.uri"},
		{"public_url with a path", "server:\n  public_url: http://127.0.0.1:8080/login\n", nil, "server.public_url"},
		{"argon2 memory below the floor", "password:\n  argon2:\n    memory_kib: 1024\n", nil, "password.argon2.memory_kib"},
		{"max_body_bytes too small", "server:\n  max_body_bytes: 10\n", nil, "server.max_body_bytes"},
		{"env: min_length", "", map[string]string{"GATEHOUSE_PASSWORD_MIN_LENGTH": "7"}, "password.min_length"},
		{"env: not a number", "", map[string]string{"GATEHOUSE_SMTP_PORT": "abc"}, "smtp.port"},
		{"env: not a duration", "", map[string]string{"GATEHOUSE_SESSION_IDLE_TIMEOUT": "a week"}, "session.idle_timeout"},
		{"env: not a bool", "", map[string]string{"GATEHOUSE_DEV_MODE": "perhaps"}, "dev_mode"},
		{"env: bad origin in a list", "", map[string]string{"GATEHOUSE_CORS_ALLOWED_ORIGINS": "http://a.example, null"}, "cors.allowed_origins"},
		{"oidc: unknown key in an entry", "providers:\n  oidc:\n    - id: kc\n      isuer: https://sso.example\n", nil, "providers.oidc[0].isuer"},
		{"oidc: id with capitals", "providers:\n  oidc:\n    - id: KC\n      label: K\n      issuer: https://sso.example\n      client_id: a\n      client_secret: b\n", nil, "providers.oidc[0].id"},
		{"oidc: id of a built-in provider", "providers:\n  oidc:\n    - id: google\n      label: G\n      issuer: https://sso.example\n      client_id: a\n      client_secret: b\n", nil, "providers.oidc[0].id"},
		{"oidc: id of a route", "providers:\n  oidc:\n    - id: check\n      label: C\n      issuer: https://sso.example\n      client_id: a\n      client_secret: b\n", nil, "providers.oidc[0].id"},
		{"oidc: duplicate id", "providers:\n  oidc:\n    - {id: kc, label: K, issuer: \"https://a.example\", client_id: a, client_secret: b}\n    - {id: kc, label: K, issuer: \"https://b.example\", client_id: a, client_secret: b}\n", nil, "providers.oidc[1].id"},
		{"oidc: no label", "providers:\n  oidc:\n    - id: kc\n      issuer: https://sso.example\n      client_id: a\n      client_secret: b\n", nil, "providers.oidc[0].label"},
		{"oidc: issuer not a URL", "providers:\n  oidc:\n    - id: kc\n      label: K\n      issuer: sso.example\n      client_id: a\n      client_secret: b\n", nil, "providers.oidc[0].issuer"},
		{"oidc: no secret", "providers:\n  oidc:\n    - id: kc\n      label: K\n      issuer: https://sso.example\n      client_id: a\n", nil, "GATEHOUSE_PROVIDERS_OIDC_KC_CLIENT_SECRET"},
		{"oidc: some endpoints", "providers:\n  oidc:\n    - id: kc\n      label: KC\n      issuer: https://sso.example\n      client_id: a\n      client_secret: b\n      auth_url: https://sso.example/auth\n", nil, "providers.oidc[0]"},
		{"oidc: a list from a variable", "", map[string]string{"GATEHOUSE_PROVIDERS_OIDC": "kc"}, "providers.oidc"},
		{"no secret outside dev mode", "dev_mode: false\n", nil, "session.secret"},
		{"short secret outside dev mode", "dev_mode: false\nsession:\n  secret: short\n", nil, "session.secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := ""
			if tt.file != "" {
				path = writeFile(t, tt.file)
			}
			_, err := Load(defaults(t), path, envFunc(tt.env))
			if err == nil {
				t.Fatalf("Load(%q, env %v) = nil; want an error naming %s", tt.file, tt.env, tt.key)
			}
			if !strings.Contains(err.Error(), tt.key) {
				t.Errorf("Load(%q, env %v) = %q; want it to name %s", tt.file, tt.env, err, tt.key)
			}
		})
	}
}

// TestLoadProductionSecret: outside dev mode a long enough secret is all
// that is needed, and it is kept as configured.
func TestLoadProductionSecret(t *testing.T) {
	t.Parallel()
	secret := strings.Repeat("s", 40)
	c, err := Load(defaults(t), writeFile(t, "dev_mode: false\n"), envFunc(map[string]string{"GATEHOUSE_SESSION_SECRET": secret}))
	if err != nil {
		t.Fatalf("Load = %v; want no error", err)
	}
	if c.Session.Secret.Reveal() != secret {
		t.Errorf("session.secret = %q; want the configured value", c.Session.Secret.Reveal())
	}
}

// TestSecretNeverPrints: secrets stay out of fmt output, slog lines in both
// formats, and error messages (IN-4).
func TestSecretNeverPrints(t *testing.T) {
	t.Parallel()
	const (
		sessionSecret = "session-secret-value-0123456789-abcdef"
		smtpPassword  = "smtp-password-value-4242"
		dbPassword    = "db-password-value-9999"
		googleSecret  = "google-client-secret-value"
		githubSecret  = "github-client-secret-value"
	)
	secrets := []string{sessionSecret, smtpPassword, dbPassword, googleSecret, githubSecret}
	env := map[string]string{
		"GATEHOUSE_SESSION_SECRET":                 sessionSecret,
		"GATEHOUSE_SMTP_USERNAME":                  "mailer",
		"GATEHOUSE_SMTP_PASSWORD":                  smtpPassword,
		"GATEHOUSE_MONGODB_URI":                    "mongodb://app:" + dbPassword + "@db.example:27017/",
		"GATEHOUSE_PROVIDERS_GOOGLE_CLIENT_ID":     "google-id",
		"GATEHOUSE_PROVIDERS_GOOGLE_CLIENT_SECRET": googleSecret,
		"GATEHOUSE_PROVIDERS_GITHUB_CLIENT_ID":     "github-id",
		"GATEHOUSE_PROVIDERS_GITHUB_CLIENT_SECRET": githubSecret,
	}
	c, err := Load(defaults(t), "", envFunc(env))
	if err != nil {
		t.Fatalf("Load = %v; want no error", err)
	}
	if c.SMTP.Password.Reveal() != smtpPassword {
		t.Fatalf("smtp.password = %q; want the configured value", c.SMTP.Password.Reveal())
	}

	outputs := map[string]string{
		"fmt %v":              fmt.Sprintf("%v", *c),
		"fmt %+v":             fmt.Sprintf("%+v", *c),
		"fmt %v pointer":      fmt.Sprintf("%v", c),
		"fmt %s":              fmt.Sprintf("%s", c.SMTP.Password),
		"fmt %q":              fmt.Sprintf("%q", c.SMTP.Password),
		"fmt %#v":             fmt.Sprintf("%#v", *c),
		"fmt %v secret":       fmt.Sprintf("%v", c.Session.Secret),
		"fmt Sprint":          fmt.Sprint(c.Providers),
		"fmt %v section":      fmt.Sprintf("%v", c.SMTP),
		"fmt %+v section ptr": fmt.Sprintf("%+v", &c.SMTP),
	}
	for _, format := range []string{"text", "json"} {
		var buf bytes.Buffer
		var h slog.Handler = slog.NewTextHandler(&buf, nil)
		if format == "json" {
			h = slog.NewJSONHandler(&buf, nil)
		}
		slog.New(h).Info("config",
			"session_secret", c.Session.Secret,
			slog.Any("smtp_password", c.SMTP.Password),
			slog.Group("mongodb", "uri", c.MongoDB.URI))
		outputs["slog "+format+" values"] = buf.String()
		buf.Reset()
		slog.New(h).Info("config", "smtp", c.SMTP, "providers", c.Providers)
		outputs["slog "+format+" sections"] = buf.String()
		buf.Reset()
		slog.New(h).Info("config", "config", c)
		outputs["slog "+format+" whole config"] = buf.String()
	}
	for _, name := range slices.Sorted(maps.Keys(outputs)) {
		out := outputs[name]
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s prints the secret %q", name, s)
			}
		}
	}

	// Validation errors about a secret do not echo it.
	bad := map[string]string{
		"GATEHOUSE_MONGODB_URI":    "http://app:" + dbPassword + "@db.example/",
		"GATEHOUSE_SESSION_SECRET": "short-" + smtpPassword[:10],
	}
	_, err = Load(defaults(t), "", envFunc(bad))
	if err == nil {
		t.Fatal("Load with a bad mongodb.uri and a short secret = nil; want an error")
	}
	for _, s := range []string{dbPassword, bad["GATEHOUSE_SESSION_SECRET"]} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("validation error prints the secret %q: %v", s, err)
		}
	}
}

// TestLoadOIDC: a providers.oidc entry from the file, its client id and
// secret from the environment under a name derived from its id.
func TestLoadOIDC(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "providers:\n  oidc:\n    - id: corp-sso\n      label: Corp SSO\n      issuer: https://sso.example/realms/main\n      client_id: from-file\n")
	c, err := Load(defaults(t), path, envFunc(map[string]string{
		"GATEHOUSE_PROVIDERS_OIDC_CORP_SSO_CLIENT_ID":     "from-env",
		"GATEHOUSE_PROVIDERS_OIDC_CORP_SSO_CLIENT_SECRET": "s3cret",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := []OIDC{{ID: "corp-sso", Label: "Corp SSO", Issuer: "https://sso.example/realms/main", ClientID: "from-env", ClientSecret: "s3cret"}}
	if diff := cmp.Diff(want, c.Providers.OIDC); diff != "" {
		t.Errorf("providers.oidc (-want +got):\n%s", diff)
	}
}

// TestLoadParsed: validation hands back what it parsed, so the program does
// not parse the keys a second time.
func TestLoadParsed(t *testing.T) {
	t.Parallel()
	c, err := Load(defaults(t), "", envFunc(map[string]string{
		"GATEHOUSE_SERVER_TRUSTED_PROXIES":  "10.0.0.0/8, 192.0.2.7",
		"GATEHOUSE_CORS_ALLOWED_ORIGINS":    "HTTP://SPA.Example:5173",
		"GATEHOUSE_REDIRECTS_ALLOWED_HOSTS": "https://app.example/",
	}))
	if err != nil {
		t.Fatal(err)
	}
	var nets []string
	for _, n := range c.Parsed.TrustedProxies {
		nets = append(nets, n.String())
	}
	if want := []string{"10.0.0.0/8", "192.0.2.7/32"}; !slices.Equal(nets, want) {
		t.Errorf("trusted proxies %v; want %v", nets, want)
	}
	if !c.Parsed.CORSOrigins["http://spa.example:5173"] || len(c.Parsed.CORSOrigins) != 1 {
		t.Errorf("CORS origins %v; want the canonical http://spa.example:5173", c.Parsed.CORSOrigins)
	}
	if !c.Parsed.RedirectHosts["https://app.example"] || len(c.Parsed.RedirectHosts) != 1 {
		t.Errorf("redirect hosts %v; want https://app.example", c.Parsed.RedirectHosts)
	}
}
