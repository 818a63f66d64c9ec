// Command webpreview writes every Gatehouse page, rendered with sample data,
// to a directory for a look in a browser:
//
//	go run ./cmd/webpreview /tmp/preview
//	cd /tmp/preview && python3 -m http.server 8000   # then open http://localhost:8000/login.html
package main

import (
	"fmt"
	"os"

	"github.com/gatehouse/gatehouse/web"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: webpreview DIR")
		os.Exit(2)
	}
	if err := web.WritePreview(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "webpreview:", err)
		os.Exit(1)
	}
	fmt.Println("wrote the pages to", os.Args[1])
}
