// Command upstream is an example app to put behind Gatehouse's forward auth.
// It shows who the proxy says the visitor is — the X-Auth-Request-User and
// X-Auth-Request-Email headers that nginx, Traefik or Caddy copy from
// Gatehouse's /auth/check answer — and then every header it received, with
// a link to Gatehouse's /account page, where the user signs out.
//
// It trusts those headers blindly, as a protected app does: it must be
// reachable only through the proxy (here it listens on loopback only).
//
//	go run ./examples/upstream -addr 127.0.0.1:9000 -gateway http://127.0.0.1:8080
package main

import (
	"flag"
	"html/template"
	"log"
	"net/http"
	"slices"
	"strings"
)

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Example app behind Gatehouse</title></head>
<body>
<h1>Example app behind Gatehouse</h1>
<p>You asked for <code id="uri">{{.URI}}</code> on <code id="host">{{.Host}}</code>.</p>
<dl>
  <dt>X-Auth-Request-User (user id)</dt><dd id="user">{{.User}}</dd>
  <dt>X-Auth-Request-Email</dt><dd id="email">{{.Email}}</dd>
</dl>
<p><a id="account" href="{{.Gateway}}/account">Your account and sign-out</a></p>
<h2>Every request header</h2>
<table id="headers">
{{range .Headers}}<tr><th>{{.Name}}</th><td>{{.Value}}</td></tr>
{{end}}</table>
</body>
</html>
`))

type header struct{ Name, Value string }

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address")
	gateway := flag.String("gateway", "http://127.0.0.1:8080", "Gatehouse's public URL, for the link to /account")
	flag.Parse()

	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		var hs []header
		for name, values := range r.Header {
			for _, v := range values {
				hs = append(hs, header{name, v})
			}
		}
		slices.SortFunc(hs, func(a, b header) int { return strings.Compare(a.Name, b.Name) })
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store") // the page is per user
		err := page.Execute(w, map[string]any{
			"URI": r.RequestURI, "Host": r.Host, "Gateway": strings.TrimSuffix(*gateway, "/"), "Headers": hs,
			"User": r.Header.Get("X-Auth-Request-User"), "Email": r.Header.Get("X-Auth-Request-Email"),
		})
		if err != nil {
			log.Printf("render: %v", err)
		}
	})
	log.Printf("example app on http://%s (Gatehouse at %s)", *addr, *gateway)
	log.Fatal(http.ListenAndServe(*addr, nil))
}
