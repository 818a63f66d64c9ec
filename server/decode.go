package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"
	"unicode/utf8"
)

// decodeJSON reads a JSON object body into dst (a pointer to a struct with
// json tags) and refuses anything but exactly that (IN-1): another content
// type (415), a body over the limit (413), invalid UTF-8, a non-object,
// unknown, duplicate or case-variant keys, wrong types, or trailing data
// (400). encoding/json alone accepts case-variant and duplicate keys
// (last one wins), which lets two parsers disagree about a request.
func decodeJSON(r *http.Request, dst any) error {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" || (params["charset"] != "" && !strings.EqualFold(params["charset"], "utf-8")) {
		return requestError(http.StatusUnsupportedMediaType, "unsupported_media_type", "Send the body as application/json.")
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return requestError(http.StatusRequestEntityTooLarge, "payload_too_large", "The request body is too large.")
		}
		return requestError(http.StatusBadRequest, "invalid_request", "The request body could not be read.")
	}
	return decodeStrict(body, dst)
}

// decodeStrict is decodeJSON without the HTTP parts; it is the fuzz target.
func decodeStrict(body []byte, dst any) error {
	if !utf8.Valid(body) {
		return requestError(http.StatusBadRequest, "invalid_json", "The body is not valid UTF-8.")
	}
	allowed := jsonFields(reflect.TypeOf(dst).Elem())
	if err := checkKeys(body, allowed); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return requestError(http.StatusBadRequest, "invalid_json", "Field "+te.Field+" has the wrong type.")
		}
		return requestError(http.StatusBadRequest, "invalid_json", "The body is not a valid JSON object for this request.")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return requestError(http.StatusBadRequest, "invalid_json", "Unexpected data after the JSON object.")
	}
	return nil
}

// checkKeys walks the top-level object and refuses keys that are not
// exactly one of allowed, and keys that appear twice.
func checkKeys(body []byte, allowed map[string]bool) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return requestError(http.StatusBadRequest, "invalid_json", "The body must be a JSON object.")
	}
	seen := make(map[string]bool, len(allowed))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return requestError(http.StatusBadRequest, "invalid_json", "The body is not valid JSON.")
		}
		key, _ := tok.(string)
		if !allowed[key] {
			return requestError(http.StatusBadRequest, "invalid_json", "Unknown field "+quoteField(key)+".")
		}
		if seen[key] {
			return requestError(http.StatusBadRequest, "invalid_json", "Field "+quoteField(key)+" appears twice.")
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return requestError(http.StatusBadRequest, "invalid_json", "The body is not valid JSON.")
		}
	}
	return nil
}

// quoteField keeps error messages short and printable whatever the key.
func quoteField(s string) string {
	if len(s) > 40 {
		s = s[:40]
	}
	return `"` + strings.ToValidUTF8(strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '"' {
			return -1
		}
		return r
	}, s), "") + `"`
}

// jsonFields returns the exact json names of a struct's fields.
func jsonFields(t reflect.Type) map[string]bool {
	out := make(map[string]bool, t.NumField())
	for i := range t.NumField() {
		name := strings.Split(t.Field(i).Tag.Get("json"), ",")[0]
		if name != "" && name != "-" {
			out[name] = true
		}
	}
	return out
}
