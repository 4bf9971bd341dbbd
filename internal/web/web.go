// Package web is lispd's read-only web view: static pages, embedded in the
// binary, that draw the state the admin API serves (the same JSON lispctl
// reads) and follow the event stream live. It has no server-side logic of
// its own: the admin listener serves these files beside the GET endpoints
// of the API.
package web

import (
	"bytes"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"time"
)

//go:embed static
var static embed.FS

// page is one page of the view: its content (static/pages/FILE) in the
// common layout (static/layout.html).
type page struct {
	Path, File, ID, Title string
}

var pages = []page{
	{"/", "index.html", "overview", "Overview"},
	{"/map-server.html", "map-server.html", "map-server", "Map-Server"},
	{"/xtr.html", "xtr.html", "xtr", "Tunnel router"},
	{"/counters.html", "counters.html", "counters", "Counters"},
}

// Pages are the web view's pages, by path, for links and tests.
var Pages = func() []string {
	out := make([]string, len(pages))
	for i, p := range pages {
		out[i] = p.Path
	}
	return out
}()

// Handler serves the pages and their assets. Everything comes from this
// origin (the Content-Security-Policy says so): no CDN, nothing inline.
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	layout := template.Must(template.ParseFS(sub, "layout.html"))
	mux := http.NewServeMux()
	for _, p := range pages {
		body, err := fs.ReadFile(sub, "pages/"+p.File)
		if err != nil {
			panic(err)
		}
		var b bytes.Buffer
		err = layout.Execute(&b, struct {
			page
			Main template.HTML // our own file, not input
		}{p, template.HTML(body)})
		if err != nil {
			panic(err)
		}
		html := b.Bytes()
		serve := func(w http.ResponseWriter, r *http.Request) {
			http.ServeContent(w, r, p.File, time.Time{}, bytes.NewReader(html))
		}
		if p.Path == "/" {
			mux.HandleFunc("GET /{$}", serve)
			mux.HandleFunc("GET /index.html", serve)
		} else {
			mux.HandleFunc("GET "+p.Path, serve)
		}
	}
	mux.Handle("GET /", http.FileServerFS(sub))
	return headers(mux)
}

// Files serves the files of fsys with the web view's headers: lisplab
// serves its lab page the same way.
func Files(fsys fs.FS) http.Handler { return headers(http.FileServerFS(fsys)) }

func headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}
