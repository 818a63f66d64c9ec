package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

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
		name := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if name == "-" {
			continue // not a key: filled by validation
		}
		key := prefix + name
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
