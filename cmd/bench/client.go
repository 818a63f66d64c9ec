package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// rawClient speaks keep-alive HTTP/1.1 on one connection with prebuilt
// requests, so that the load generator spends as little of the shared CPU
// as possible: no header maps, no allocations per request.
type rawClient struct {
	addr     string
	deadline time.Time
	conn     net.Conn
	br       *bufio.Reader
}

// getRequest is the wire form of a GET with an optional cookie.
func getRequest(host, path, cookie string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: gatehouse-bench\r\n", path, host)
	if cookie != "" {
		fmt.Fprintf(&b, "Cookie: %s\r\n", cookie)
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// postRequest is the wire form of a POST of a JSON body.
func postRequest(host, path string, body []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: gatehouse-bench\r\n", path, host)
	fmt.Fprintf(&b, "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
	b.Write(body)
	return b.Bytes()
}

// rawOps makes runLoad's ops for raw clients, one per worker, sending reqs
// round-robin: worker w starts at reqs[w] and steps by workers. Their
// connections live until deadline or closeAll.
func rawOps(host string, reqs [][]byte, workers int, deadline time.Time) (newOp func(w int) op, closeAll func()) {
	var clients []*rawClient
	newOp = func(w int) op {
		c := &rawClient{addr: host, deadline: deadline}
		clients = append(clients, c)
		i := w
		return func() (int, error) {
			req := reqs[i%len(reqs)]
			i += workers
			return c.do(req)
		}
	}
	closeAll = func() {
		for _, c := range clients {
			c.close()
		}
		clients = nil
	}
	return newOp, closeAll
}

// do sends req and reads the whole response; it returns the status code.
func (c *rawClient) do(req []byte) (int, error) {
	if c.conn == nil {
		conn, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
		if err != nil {
			return 0, err
		}
		_ = conn.SetDeadline(c.deadline)
		c.conn, c.br = conn, bufio.NewReaderSize(conn, 16<<10)
	}
	if _, err := c.conn.Write(req); err != nil {
		c.close()
		return 0, err
	}
	status, err := c.readResponse()
	if err != nil {
		c.close()
	}
	return status, err
}

var errChunked = errors.New("response without Content-Length")

func (c *rawClient) readResponse() (int, error) {
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	status, _ := strconv.Atoi(string(line[9:12]))
	length, closing := -1, false
	for {
		h, err := c.br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(h) <= 2 {
			break
		}
		name, value, _ := bytes.Cut(h, []byte(":"))
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			length, _ = strconv.Atoi(string(bytes.TrimSpace(value)))
		case bytes.EqualFold(name, []byte("Connection")):
			closing = bytes.EqualFold(bytes.TrimSpace(value), []byte("close"))
		}
	}
	if length < 0 {
		return 0, errChunked
	}
	if _, err := c.br.Discard(length); err != nil {
		return 0, err
	}
	if closing {
		c.close()
	}
	return status, nil
}

func (c *rawClient) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// api drives the gateway's JSON API for setup and logins.
type api struct {
	base string
	http *http.Client
}

func newAPI(base string, conns int) *api {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxIdleConns: conns, IdleConnTimeout: time.Minute}
	return &api{base: base, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// user is a verified account of the benchmark.
type user struct {
	ID, Email, Password string
	Cookie              string // "name=value" of the session verification started
}

// post sends a JSON body and returns the status, the body and the session
// cookie set by the answer, if any.
func (a *api) post(ctx context.Context, path string, body any) (int, []byte, string, error) {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, a.base+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.http.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	cookie := ""
	for _, c := range resp.Cookies() {
		if c.Value != "" {
			cookie = c.Name + "=" + c.Value
		}
	}
	return resp.StatusCode, out, cookie, err
}

// login signs email in and returns the status and the session cookie.
func (a *api) login(ctx context.Context, email, password string) (int, string, error) {
	status, _, cookie, err := a.post(ctx, "/api/v1/login", map[string]string{"email": email, "password": password})
	return status, cookie, err
}

// sessionID asks the gateway which session a cookie holds.
func (a *api) sessionID(ctx context.Context, cookie string) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, a.base+"/api/v1/session", nil)
	req.Header.Set("Cookie", cookie)
	resp, err := a.http.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var v struct {
		Session struct{ ID string } `json:"session"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || v.Session.ID == "" {
		return "", fmt.Errorf("GET /api/v1/session: status %d", resp.StatusCode)
	}
	return v.Session.ID, nil
}

// createUsers signs n users up, takes their links from the development
// mailbox and verifies them (each verification signs the user in).
func (a *api) createUsers(ctx context.Context, n int) ([]user, error) {
	users := make([]user, n)
	for i := range users {
		users[i] = user{Email: fmt.Sprintf("bench%03d@example.com", i), Password: "Gatehouse-bench-pw-7421!"}
		status, body, _, err := a.post(ctx, "/api/v1/signup", map[string]string{"email": users[i].Email, "password": users[i].Password})
		if err != nil || status != http.StatusAccepted {
			return nil, fmt.Errorf("signup %s: status %d %s %v", users[i].Email, status, body, err)
		}
	}
	tokens, err := a.mailboxTokens(ctx, users)
	if err != nil {
		return nil, err
	}
	for i := range users {
		status, body, cookie, err := a.post(ctx, "/api/v1/verify", map[string]string{"token": tokens[users[i].Email], "password": users[i].Password})
		if err != nil || status != http.StatusOK || cookie == "" {
			return nil, fmt.Errorf("verify %s: status %d %s %v", users[i].Email, status, body, err)
		}
		var v struct {
			User struct{ ID string } `json:"user"`
		}
		_ = json.Unmarshal(body, &v)
		users[i].ID, users[i].Cookie = v.User.ID, cookie
	}
	return users, nil
}

var (
	mailRE  = regexp.MustCompile(`(?s)<article.*?</article>`)
	tokenRE = regexp.MustCompile(`/verify\?token=([A-Za-z0-9_-]+)`)
)

// mailboxTokens polls /dev/mailbox (dev mode, loopback only) until every
// user's verification token is there. The dev mailbox logs links at Info,
// which the benchmark's log level (warn) hides, so the page is the source.
func (a *api) mailboxTokens(ctx context.Context, users []user) (map[string]string, error) {
	tokens := map[string]string{}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, a.base+"/dev/mailbox", nil)
		resp, err := a.http.Do(req)
		if err != nil {
			return nil, err
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, m := range mailRE.FindAllString(string(page), -1) {
			for _, u := range users {
				if t := tokenRE.FindStringSubmatch(m); t != nil && strings.Contains(m, ">"+u.Email+"<") {
					tokens[u.Email] = t[1]
				}
			}
		}
		if len(tokens) == len(users) {
			return tokens, nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return nil, fmt.Errorf("found %d of %d verification mails in /dev/mailbox", len(tokens), len(users))
}
