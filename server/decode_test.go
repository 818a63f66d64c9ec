package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// decodeSeeds are the bodies of IN-1, shared by the table and the fuzz
// corpus.
var decodeSeeds = []string{
	`{"email":"a@b.co","password":"x"}`,
	`{"email":"a@b.co"}`,
	`{}`,
	` {"email":"a@b.co","password":"x"} `,
	`{"em\u0061il":"a@b.co"}`,
	`{"email":"a@b.co","password":"x","admin":true}`,
	`{"email":"a@b.co","email":"c@d.co","password":"x"}`,
	`{"email":"a@b.co","em\u0061il":"c@d.co"}`,
	`{"Email":"a@b.co","password":"x"}`,
	`{"EMAIL":"a@b.co","password":"x"}`,
	"{\"\u017fmail\":\"a@b.co\"}",
	`{"email":1,"password":"x"}`,
	`{"email":1e999}`,
	`{"email":true}`,
	`{"email":["a@b.co"]}`,
	`{"email":{"$ne":null},"password":"x"}`,
	`{"email":null,"password":null}`,
	"{\"email\":\"a\xffb@c.co\",\"password\":\"x\"}",
	"{\"email\":\"a@b.co\",\"pass\xc3\":\"x\"}",
	"\xef\xbb\xbf{\"email\":\"a@b.co\"}",
	`{"email":"\ud800@b.co"}`,
	`{"email":"a@b.co","password":"x"} {}`,
	`{"email":"a@b.co","password":"x"}x`,
	`{"email":"a@b.co","password":"x"}]`,
	`{"email":"a@b.co",}`,
	`{"email":"a@b.co"`,
	`{"email"}`,
	`[{"email":"a@b.co"}]`,
	`null`,
	`"a@b.co"`,
	`1`,
	``,
	` `,
	`{"email":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`,
}

type decodeTarget struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

func TestDecodeStrict(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want *decodeTarget // nil: refused with 400
	}{
		{"valid", `{"email":"a@b.co","password":"x"}`, &decodeTarget{Email: "a@b.co", Password: "x"}},
		{"missing field", `{"email":"a@b.co"}`, &decodeTarget{Email: "a@b.co"}},
		{"empty object", `{}`, &decodeTarget{}},
		{"surrounding space", ` {"email":"a@b.co","password":"x"} `, &decodeTarget{Email: "a@b.co", Password: "x"}},
		{"escaped key", `{"em\u0061il":"a@b.co"}`, &decodeTarget{Email: "a@b.co"}},
		{"lone surrogate is replaced", `{"email":"\ud800@b.co"}`, &decodeTarget{Email: "\ufffd@b.co"}},
		{"unknown field", `{"email":"a@b.co","password":"x","admin":true}`, nil},
		{"duplicate key", `{"email":"a@b.co","email":"c@d.co","password":"x"}`, nil},
		{"duplicate key through an escape", `{"email":"a@b.co","em\u0061il":"c@d.co"}`, nil},
		{"case variant", `{"Email":"a@b.co","password":"x"}`, nil},
		{"upper case", `{"EMAIL":"a@b.co","password":"x"}`, nil},
		{"unicode fold variant", "{\"\u017fmail\":\"a@b.co\"}", nil},
		{"number for string", `{"email":1,"password":"x"}`, nil},
		{"huge number", `{"email":1e999}`, nil},
		{"bool for string", `{"email":true}`, nil},
		{"array for string", `{"email":["a@b.co"]}`, nil},
		{"NoSQL operator", `{"email":{"$ne":null},"password":"x"}`, nil},
		{"invalid UTF-8 in a value", "{\"email\":\"a\xffb@c.co\",\"password\":\"x\"}", nil},
		{"invalid UTF-8 in a key", "{\"email\":\"a@b.co\",\"pass\xc3\":\"x\"}", nil},
		{"byte order mark", "\xef\xbb\xbf{\"email\":\"a@b.co\"}", nil},
		{"second object", `{"email":"a@b.co","password":"x"} {}`, nil},
		{"trailing garbage", `{"email":"a@b.co","password":"x"}x`, nil},
		{"trailing bracket", `{"email":"a@b.co","password":"x"}]`, nil},
		{"trailing comma", `{"email":"a@b.co",}`, nil},
		{"truncated", `{"email":"a@b.co"`, nil},
		{"key without value", `{"email"}`, nil},
		{"top-level array", `[{"email":"a@b.co"}]`, nil},
		{"top-level null", `null`, nil},
		{"top-level string", `"a@b.co"`, nil},
		{"top-level number", `1`, nil},
		{"empty", ``, nil},
		{"blank", ` `, nil},
		{"deep nesting", `{"email":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got decodeTarget
			err := decodeStrict([]byte(tt.body), &got)
			if tt.want == nil {
				var ae *apiError
				if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest {
					t.Fatalf("decodeStrict(%q) = %v; want a 400 apiError", tt.body, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("decodeStrict(%q) = %v; want nil", tt.body, err)
			}
			if got != *tt.want {
				t.Errorf("decodeStrict(%q) decoded %+v; want %+v", tt.body, got, *tt.want)
			}
		})
	}
}

func TestDecodeJSON(t *testing.T) {
	t.Parallel()
	const valid = `{"email":"a@b.co","password":"x"}`
	tests := []struct {
		name        string
		contentType string
		body        string
		limit       int64
		want        int // 0: success
	}{
		{"json", "application/json", valid, 1 << 16, 0},
		{"json utf-8", "application/json; charset=utf-8", valid, 1 << 16, 0},
		{"json UTF-8 upper", "application/json; charset=UTF-8", valid, 1 << 16, 0},
		{"text/plain", "text/plain", valid, 1 << 16, http.StatusUnsupportedMediaType},
		{"no content type", "", valid, 1 << 16, http.StatusUnsupportedMediaType},
		{"form", "application/x-www-form-urlencoded", "email=a%40b.co", 1 << 16, http.StatusUnsupportedMediaType},
		{"json latin1", "application/json; charset=latin1", valid, 1 << 16, http.StatusUnsupportedMediaType},
		{"malformed content type", "application/json; charset", valid, 1 << 16, http.StatusUnsupportedMediaType},
		{"over the limit", "application/json", `{"email":"` + strings.Repeat("a", 2000) + `"}`, 1024, http.StatusRequestEntityTooLarge},
		{"bad json", "application/json", `{"email":1}`, 1 << 16, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/api/v1/login", strings.NewReader(tt.body))
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, tt.limit)
			var got decodeTarget
			err := decodeJSON(r, &got)
			if tt.want == 0 {
				if err != nil {
					t.Fatalf("decodeJSON = %v; want nil", err)
				}
				if got.Email != "a@b.co" || got.Password != "x" {
					t.Errorf("decoded %+v; want email a@b.co, password x", got)
				}
				return
			}
			var ae *apiError
			if !errors.As(err, &ae) || ae.Status != tt.want {
				t.Fatalf("decodeJSON = %v; want an apiError with status %d", err, tt.want)
			}
		})
	}
}

// FuzzDecodeStrict checks IN-1 for any body: no panic; a refusal is always
// a client error (an *apiError with a 4xx status, never a 500); and what is
// accepted survives a round trip, so the decoder and the encoder agree
// about it.
func FuzzDecodeStrict(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var got decodeTarget
		err := decodeStrict(body, &got)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) {
				t.Fatalf("decodeStrict(%q) = %T %v; want an *apiError", body, err, err)
			}
			if ae.Status < 400 || ae.Status > 499 {
				t.Fatalf("decodeStrict(%q) status %d; want 4xx", body, ae.Status)
			}
			return
		}
		again, err := json.Marshal(got)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", got, err)
		}
		var back decodeTarget
		if err := decodeStrict(again, &back); err != nil {
			t.Fatalf("decodeStrict(%q) accepted, but its re-encoding %q is refused: %v", body, again, err)
		}
		if back != got {
			t.Fatalf("round trip of %q: %+v then %+v", body, got, back)
		}
		if !bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("{")) {
			t.Fatalf("decodeStrict(%q) accepted a body that is not an object", body)
		}
	})
}
