// Command spa serves examples/spa/index.html, an example single-page app
// that signs up, signs in and out and reads the session through Gatehouse's
// JSON API with fetch(..., {credentials: "include"}).
//
// Run Gatehouse so that it accepts this origin, then open the page:
//
//	GATEHOUSE_SERVER_PUBLIC_URL=http://localhost:8080 \
//	GATEHOUSE_CORS_ALLOWED_ORIGINS=http://localhost:5173 \
//	GATEHOUSE_REDIRECTS_ALLOWED_HOSTS=http://localhost:5173 go run .
//	go run ./examples/spa            # http://localhost:5173
//
// The page and Gatehouse must be on the same site (localhost here, or
// subdomains of one domain in production): the session cookie is
// SameSite=Lax, so browsers send it on fetch only within one site.
package main

import (
	_ "embed"
	"flag"
	"log"
	"net/http"
)

//go:embed index.html
var index []byte

func main() {
	addr := flag.String("addr", "localhost:5173", "listen address")
	flag.Parse()
	http.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(index)
	})
	log.Printf("example SPA on http://%s (Gatehouse expected at http://localhost:8080; ?gateway=URL for another)", *addr)
	log.Fatal(http.ListenAndServe(*addr, nil))
}
