// Package web tests lispd's web view and lisplab's lab page in a real
// headless Chromium (Debian's chromium package) driven over the DevTools
// protocol with chromedp. Without chromium the tests skip and say so.
package web

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// artifacts is where the screenshots go: $LISPD_WEB_ARTIFACTS, else
// test/web/artifacts (ignored by git).
func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("LISPD_WEB_ARTIFACTS")
	if dir == "" {
		dir = "artifacts"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(dir)
	return abs
}

// chromiumPath finds the browser, or skips the test.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium on PATH: install Debian's chromium package to run the browser tests")
	return ""
}

// tab is one browser tab with everything its pages wrote to the console.
type tab struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	messages []chromedp.ConsoleMessage
}

// newTab starts a headless Chromium (stopped when the test ends) and opens
// a tab whose console the test watches.
func newTab(t *testing.T) *tab {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		// Tests run as root in containers, where Chromium's sandbox
		// cannot start; the pages are our own.
		chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true),
		chromedp.WindowSize(1280, 900),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	tb := &tab{t: t, ctx: ctx}
	// The first Run starts the browser; it must not run under a timeout.
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		acancel()
		t.Fatalf("starting chromium: %v", err)
	}
	messages := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			tb.mu.Lock()
			tb.messages = append(tb.messages, m)
			tb.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		acancel()
		<-done
	})
	return tb
}

// do runs actions within a minute.
func (tb *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.t.Fatal(err)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](tb *tab, js string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		tb.t.Fatalf("%s: %v", js, err)
	}
	return v
}

// visit loads url and waits until the page has drawn its first data
// (body[data-loaded]) with no error shown.
func (tb *tab) visit(url string) {
	tb.t.Helper()
	tb.do(chromedp.Navigate(url))
	tb.waitJS("document.body.dataset.loaded === '1'", 10*time.Second, url+" never finished loading")
	if msg := eval[string](tb, `(() => { const e = document.getElementById("error"); return e && !e.hidden ? e.textContent : ""; })()`); msg != "" {
		tb.t.Errorf("%s shows an error: %s", url, msg)
	}
}

// waitJS polls a JavaScript condition until it holds, or fails.
func (tb *tab) waitJS(cond string, limit time.Duration, msg string) {
	tb.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		if eval[bool](tb, "!!("+cond+")") {
			return
		}
		if time.Now().After(deadline) {
			tb.t.Fatalf("%s (after %v): %s", msg, limit, eval[string](tb, "document.body.innerText.slice(0, 3000)"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// text is the visible text of the element with the given id.
func (tb *tab) text(id string) string {
	tb.t.Helper()
	return eval[string](tb, fmt.Sprintf(`(document.getElementById(%q) || {innerText: ""}).innerText`, id))
}

// consoleProblems are the errors, warnings and exceptions the pages
// wrote to the console so far (network failures and CSP violations among
// them: Chromium logs those as errors).
func (tb *tab) consoleProblems() []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var out []string
	for _, m := range tb.messages {
		switch m.Type {
		case chromedp.ConsoleError, chromedp.ConsoleException, chromedp.ConsoleWarning:
			out = append(out, m.String()+" ("+m.URL+")")
		}
	}
	return out
}

// Viewports of the screenshots.
type viewport struct {
	name          string
	width, height int64
	mobile        bool
}

var viewports = []viewport{
	{"desktop", 1280, 900, false},
	{"phone", 390, 844, true},
}

// setViewport emulates v.
func (tb *tab) setViewport(v viewport) {
	tb.t.Helper()
	opts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(1)}
	if v.mobile {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait)
	}
	tb.do(chromedp.EmulateViewport(v.width, v.height, opts...))
}

// screenshot saves the page as it is (the whole page, PNG) into the
// artefacts directory and returns its path.
func (tb *tab) screenshot(name string) string {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		tb.t.Fatal(err)
	}
	path := filepath.Join(artifacts(tb.t), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tb.t.Fatal(err)
	}
	return path
}

// fitsWidth reports whether the page needs no sideways scrolling: what a
// phone user needs (wide tables scroll inside their own box).
func (tb *tab) fitsWidth() bool {
	return eval[bool](tb, "document.documentElement.scrollWidth <= window.innerWidth + 1")
}

// slug makes a file name of a page path.
func slug(page string) string {
	s := strings.Trim(strings.TrimSuffix(page, ".html"), "/")
	if s == "" {
		return "index"
	}
	return s
}
