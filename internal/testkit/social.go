package testkit

import (
	"net/http"
	"strings"
)

// Callback runs the first half of a provider flow as a browser: GET start
// (e.g. "/auth/google?return_to=/x"), follow the redirect to the fake
// provider, and return the gateway path (with its query) that the provider
// sent the browser back to, without requesting it. Tests replay, alter,
// delay or hand the callback to another client.
func (c *Client) Callback(start string) string {
	c.tb.Helper()
	return c.CallbackFrom(c.Get(start))
}

// CallbackFrom is Callback from a redirect to the provider that the client
// already received (the answer of GET /auth/{provider} or of a connect form).
func (c *Client) CallbackFrom(r *Response) string {
	c.tb.Helper()
	if r.Status != http.StatusFound && r.Status != http.StatusSeeOther {
		c.tb.Fatalf("start of provider flow: status %d; want a redirect to the provider\n%s", r.Status, r.Body)
	}
	idp := c.Get(r.Header.Get("Location"))
	if idp.Status != http.StatusFound {
		c.tb.Fatalf("provider authorize: status %d; want 302\n%s", idp.Status, idp.Body)
	}
	back := idp.Header.Get("Location")
	if !strings.HasPrefix(back, c.Base+"/") {
		c.tb.Fatalf("provider redirected to %s; want the gateway's callback", back)
	}
	return strings.TrimPrefix(back, c.Base)
}

// AccessTokens returns every access token the fake has issued, so tests can
// look for them where they must not be (logs).
func (f *FakeIdP) AccessTokens() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.tokens))
	for t := range f.tokens {
		out = append(out, t)
	}
	return out
}
