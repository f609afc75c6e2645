// Package browsertest drives Debian's chromium through chromedp for the console's browser
// tests (internal/console and the end-to-end suite): one headless browser per test, every
// JavaScript exception, console error and CSP violation recorded, screenshots under
// bin/screenshots. It is imported by tests only.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"
)

// Browser is a headless Debian chromium driven by chromedp, recording every JavaScript
// exception, console error and CSP violation of the pages it loads.
type Browser struct {
	// Ctx is the tab's chromedp context; Base the server's base URL.
	Ctx  context.Context
	Base string
	mu   sync.Mutex
	errs []string
	t    *testing.T
}

// chromiumPath finds Debian's chromium; `make test` installs it when missing and sets
// FLUXBRIDGE_BROWSER_REQUIRE=1, so that there a missing browser fails instead of skipping.
func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("FLUXBRIDGE_BROWSER_REQUIRE") == "1" {
		t.Fatal("chromium not found: apt-get install -y chromium (make test does it)")
	}
	t.Skip("chromium not found; make test installs it")
	return ""
}

// screenshotDir is where every page's screenshot lands: bin/screenshots of the repository.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("FLUXBRIDGE_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "bin", "screenshots")
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

// New starts the browser for base; it goes when the test ends, with a screenshot of the page
// if the test failed.
func New(t *testing.T, base string) *Browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)), chromedp.NoSandbox, chromedp.WindowSize(1280, 900), chromedp.Flag("disable-gpu", true))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	b := &Browser{Ctx: ctx, Base: base, t: t}
	require.NoError(t, chromedp.Do(ctx)) // start the browser and open the tab
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			// Network entries are the HTTP statuses a test provokes (401, 403) and asserts itself.
			if m.Type == chromedp.ConsoleException || m.Type == chromedp.ConsoleError && m.Source != "network" {
				b.mu.Lock()
				b.errs = append(b.errs, m.String()+" at "+m.URL)
				b.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		if t.Failed() {
			b.Shot("failed-" + sanitize(t.Name()))
		}
		cancelC()
		cancelA()
	})
	return b
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == ' ' {
			return '-'
		}
		return r
	}, s)
}

// Run runs steps, failing the test on error.
func (b *Browser) Run(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// Shot saves a full-page screenshot as bin/screenshots/<name>.png.
func (b *Browser) Shot(name string) {
	ctx, cancel := context.WithTimeout(b.Ctx, 10*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(screenshotDir(b.t), name+".png")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
	}
}

// NoJSErrors asserts that no page so far threw, logged an error or violated the CSP.
func (b *Browser) NoJSErrors() {
	b.t.Helper()
	time.Sleep(100 * time.Millisecond) // let the last messages arrive
	b.mu.Lock()
	defer b.mu.Unlock()
	require.Empty(b.t, b.errs, "JavaScript errors")
}

// Text is the text of the element sel selects.
func (b *Browser) Text(sel string) string {
	b.t.Helper()
	s, err := retry(b, chromedp.Text(chromedp.CSS(sel)))
	require.NoError(b.t, err, "text of %s", sel)
	return s
}

// Eval evaluates js in the page.
func Eval[T any](b *Browser, js string) T {
	b.t.Helper()
	v, err := retry(b, chromedp.Evaluate[T](js))
	require.NoError(b.t, err, "evaluate %s", js)
	return v
}

// retry runs a read of the page again when it raced a navigation: the page a test waited for
// has just replaced the previous one, whose nodes and script context the read still named.
func retry[T any](b *Browser, a chromedp.Action[T]) (T, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(b.Ctx, 10*time.Second)
		v, err := chromedp.Run(ctx, a)
		cancel()
		if err == nil || time.Now().After(deadline) || !strings.Contains(err.Error(), "No node with given id") &&
			!strings.Contains(err.Error(), "Cannot find context with specified id") &&
			!strings.Contains(err.Error(), "Execution context was destroyed") {
			return v, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// SignIn signs in through the form, typing as a person would.
func (b *Browser) SignIn(user, password string) {
	b.t.Helper()
	b.Run(
		chromedp.Navigate(b.Base+"/signin"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), user),
		chromedp.SendKeys(chromedp.ID("password"), password+kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(".who")),
	)
}

// WaitFor polls a JavaScript condition, so that a test waits for a live update without reload.
func (b *Browser) WaitFor(js string, timeout time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(b.Ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			b.Shot("timeout-" + sanitize(b.t.Name()))
			b.t.Fatalf("timed out waiting for %s", js)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// htmlCheckJS lists what the page lacks: a title, exactly one h1, and a label for every form
// control (a <label for>, a wrapping label, aria-label or aria-labelledby).
const htmlCheckJS = `(() => {
  const out = [];
  if (!document.title.trim()) out.push("no <title>");
  const h1 = document.querySelectorAll("h1").length;
  if (h1 !== 1) out.push(h1 + " <h1> elements");
  document.querySelectorAll("input, select, textarea").forEach((el) => {
    if (["hidden", "submit", "button", "reset"].includes(el.type)) return;
    const labelled = (el.id && document.querySelector('label[for="' + CSS.escape(el.id) + '"]')) || el.closest("label") ||
      el.getAttribute("aria-label") || el.getAttribute("aria-labelledby");
    if (!labelled) out.push("no label for " + el.tagName.toLowerCase() + (el.name ? "[name=" + el.name + "]" : "") + (el.id ? "#" + el.id : ""));
  });
  return out;
})()`

// CheckHTML asserts the page's basics: a title, one h1, every form control labelled.
func (b *Browser) CheckHTML() {
	b.t.Helper()
	problems := Eval[[]string](b, htmlCheckJS)
	url := Eval[string](b, `location.pathname`)
	require.Empty(b.t, problems, "HTML check of %s", url)
}

// Page checks the page's HTML (CheckHTML) and saves its screenshot as name: what a test does
// at every page it shows.
func (b *Browser) Page(name string) {
	b.t.Helper()
	b.Shot(name)
	b.CheckHTML()
}
