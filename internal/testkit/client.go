package testkit

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// Client is a browser-like HTTP client with a cookie jar. It does not
// follow redirects, so tests see every 303 and its Location.
type Client struct {
	tb   testing.TB
	Base string
	HTTP *http.Client
	// Header is added to every request (e.g. a User-Agent).
	Header http.Header
}

// Client returns a new client with an empty cookie jar.
func (g *Gateway) Client(tb testing.TB) *Client {
	return NewClient(tb, g.URL)
}

// NewClient returns a client for base with an empty cookie jar.
func NewClient(tb testing.TB, base string) *Client {
	jar, _ := cookiejar.New(nil)
	return &Client{
		tb:   tb,
		Base: base,
		HTTP: &http.Client{
			Jar:           jar,
			Timeout:       60 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		Header: http.Header{},
	}
}

// Response is a fully read answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body as a JSON object.
func (r *Response) JSON(tb testing.TB) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		tb.Fatalf("status %d, body is not a JSON object: %v\n%s", r.Status, err, r.Body)
	}
	return m
}

// ErrorCode returns error.code of an API error answer ("" if none).
func (r *Response) ErrorCode() string {
	var m struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &m)
	return m.Error.Code
}

// Text returns the body as a string.
func (r *Response) Text() string { return string(r.Body) }

// Do sends req with the client's headers and reads the answer.
func (c *Client) Do(req *http.Request) *Response {
	c.tb.Helper()
	for k, vs := range c.Header {
		if req.Header.Get(k) == "" {
			req.Header[k] = vs
		}
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		c.tb.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.tb.Fatalf("%s %s: read body: %v", req.Method, req.URL.Path, err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

// NewRequest builds a request for a path (or absolute URL).
func (c *Client) NewRequest(method, path string, body io.Reader) *http.Request {
	c.tb.Helper()
	u := path
	if strings.HasPrefix(path, "/") {
		u = c.Base + path
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		c.tb.Fatalf("new request: %v", err)
	}
	return req
}

// Get fetches a path.
func (c *Client) Get(path string) *Response {
	c.tb.Helper()
	return c.Do(c.NewRequest(http.MethodGet, path, nil))
}

// PostJSON sends v as JSON, as a same-origin fetch would.
func (c *Client) PostJSON(path string, v any) *Response {
	c.tb.Helper()
	return c.SendJSON(http.MethodPost, path, v)
}

// SendJSON sends v as JSON with any method (nil v sends no body).
func (c *Client) SendJSON(method, path string, v any) *Response {
	c.tb.Helper()
	var body io.Reader
	if v != nil {
		b, err := json.Marshal(v)
		if err != nil {
			c.tb.Fatalf("marshal: %v", err)
		}
		body = bytes.NewReader(b)
	}
	req := c.NewRequest(method, path, body)
	if v != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return c.Do(req)
}

// PostForm submits an HTML form as a browser does from one of our pages.
func (c *Client) PostForm(path string, vals url.Values) *Response {
	c.tb.Helper()
	req := c.NewRequest(http.MethodPost, path, strings.NewReader(vals.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", c.Base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return c.Do(req)
}

// Cookie returns the client's cookie named name for the base URL, or nil.
func (c *Client) Cookie(name string) *http.Cookie {
	u, _ := url.Parse(c.Base)
	for _, ck := range c.HTTP.Jar.Cookies(u) {
		if ck.Name == name {
			return ck
		}
	}
	return nil
}

// SetCookie puts a cookie into the jar (to replay a copied cookie).
func (c *Client) SetCookie(ck *http.Cookie) {
	u, _ := url.Parse(c.Base)
	c.HTTP.Jar.SetCookies(u, []*http.Cookie{ck})
}

// CookieName is the session cookie's name on a plain-HTTP test gateway.
const CookieName = "gatehouse"

// SignUp signs up through the API and returns the verification mail.
func (c *Client) SignUp(g *Gateway, email, password string) Mail {
	c.tb.Helper()
	n := len(g.SMTP.Mails(email))
	r := c.PostJSON("/api/v1/signup", map[string]string{"email": email, "password": password})
	if r.Status != http.StatusAccepted {
		c.tb.Fatalf("signup %s: status %d; want 202\n%s", email, r.Status, r.Body)
	}
	return g.SMTP.WaitMail(c.tb, email, n+1, 15*time.Second)
}

// Verify confirms a signup through the API, signing the client in.
func (c *Client) Verify(token, password string) *Response {
	c.tb.Helper()
	return c.PostJSON("/api/v1/verify", map[string]string{"token": token, "password": password})
}

// Login signs in through the API.
func (c *Client) Login(email, password string) *Response {
	c.tb.Helper()
	return c.PostJSON("/api/v1/login", map[string]string{"email": email, "password": password})
}

// NewUser signs up and verifies a fresh address and returns a client signed
// in as that user, and the address.
func NewUser(tb testing.TB, g *Gateway, password string) (*Client, string) {
	tb.Helper()
	c := g.Client(tb)
	email := Email(tb)
	m := c.SignUp(g, email, password)
	if r := c.Verify(m.Token(tb), password); r.Status != http.StatusOK {
		tb.Fatalf("verify %s: status %d; want 200\n%s", email, r.Status, r.Body)
	}
	return c, email
}
