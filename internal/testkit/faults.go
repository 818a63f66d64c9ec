package testkit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// The Try methods send a request like their Client counterparts but return
// transport errors instead of failing the test, so they may be called from
// goroutines other than the test's (testing.T.Fatal may not be) and let a
// test assert that a request was not cut off.

// Try sends req with the client's headers and reads the answer.
func (c *Client) Try(req *http.Request) (*Response, error) {
	for k, vs := range c.Header {
		if req.Header.Get(k) == "" {
			req.Header[k] = vs
		}
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: read body: %w", req.Method, req.URL.Path, err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: body}, nil
}

// TryJSON sends v as JSON with any method, as a same-origin fetch would.
func (c *Client) TryJSON(method, path string, v any) (*Response, error) {
	var body io.Reader
	if v != nil {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.url(path), body)
	if err != nil {
		return nil, err
	}
	if v != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return c.Try(req)
}

// TryForm submits an HTML form as a browser does from one of our pages.
func (c *Client) TryForm(path string, vals url.Values) (*Response, error) {
	req, err := http.NewRequest(http.MethodPost, c.url(path), strings.NewReader(vals.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", c.Base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return c.Try(req)
}

func (c *Client) url(path string) string {
	if strings.HasPrefix(path, "/") {
		return c.Base + path
	}
	return path
}

// MailsWithSubject returns the messages captured for a recipient whose
// subject contains sub (case-insensitive).
func (s *SMTPServer) MailsWithSubject(to, sub string) []Mail {
	var out []Mail
	for _, m := range s.Mails(to) {
		if strings.Contains(strings.ToLower(m.Subject), strings.ToLower(sub)) {
			out = append(out, m)
		}
	}
	return out
}
