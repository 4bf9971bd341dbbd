// Package web is lispd's read-only web view: static pages, embedded in the
// binary, that draw the state the admin API serves (the same JSON lispctl
// reads) and follow the event stream live. It has no server-side logic of
// its own: the admin listener serves these files beside the GET endpoints
// of the API.
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// Pages are the web view's pages, by path, for links and tests.
var Pages = []string{"/", "/map-server.html", "/xtr.html", "/counters.html"}

// Handler serves the pages and their assets. Everything comes from this
// origin (the Content-Security-Policy says so): no CDN, nothing inline.
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return Files(sub)
}

// Files serves the files of fsys with the web view's headers: lisplab
// serves its lab page the same way.
func Files(fsys fs.FS) http.Handler {
	files := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}
