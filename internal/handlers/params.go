package handlers

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/fluxbridge/fluxbridge/internal/store"
)

// maxPageSize bounds the limit query parameter of list endpoints.
const maxPageSize = 500

// params reads query and path parameters, keeping the first problem as a 400 naming the field.
type params struct {
	r   *http.Request
	err error
}

func (p *params) fail(field, format string, args ...any) {
	if p.err == nil {
		p.err = errBadRequest(field, format, args...)
	}
}

// id reads a positive integer path parameter.
func (p *params) id(name string) int64 {
	v, err := strconv.ParseInt(chi.URLParam(p.r, name), 10, 64)
	if err != nil || v <= 0 {
		p.fail(name, "must be a positive integer")
	}
	return v
}

// int64 reads an optional positive integer query parameter (0 when absent).
func (p *params) int64(name string) int64 {
	s := p.r.URL.Query().Get(name)
	if s == "" {
		return 0
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 {
		p.fail(name, "must be a positive integer, got %q", s)
	}
	return v
}

// defaultPageSize is the limit of a list endpoint called without one.
const defaultPageSize = 50

// limit reads the page size (default defaultPageSize, at most maxPageSize).
func (p *params) limit() int {
	v := p.int64("limit")
	switch {
	case v == 0:
		return defaultPageSize
	case v > maxPageSize:
		p.fail("limit", "must be at most %d, got %d", maxPageSize, v)
	}
	return int(v)
}

// maxCursor bounds the after= cursor: a name, or a few names joined by "/".
const maxCursor = 1024

// after reads the after= cursor of a list in name order: the next_after of the page before
// ("" for the first page).
func (p *params) after() string {
	s := p.r.URL.Query().Get("after")
	if len(s) > maxCursor {
		p.fail("after", "must be the next_after of an earlier page (at most %d characters)", maxCursor)
	}
	return s
}

// afterRef reads the after= cursor of a list of Flux objects: cluster/kind/namespace/name,
// or kind/namespace/name in a list of one cluster (withCluster false). Nil for the first page.
func (p *params) afterRef(withCluster bool) *store.ObjectRef {
	s := p.after()
	if s == "" {
		return nil
	}
	n := 3
	if withCluster {
		n = 4
	}
	parts := strings.Split(s, "/")
	if len(parts) != n || slices.Contains(parts, "") {
		p.fail("after", "must be the next_after of an earlier page, got %q", s)
		return nil
	}
	ref := &store.ObjectRef{}
	if withCluster {
		ref.Cluster, parts = parts[0], parts[1:]
	}
	ref.Kind, ref.Namespace, ref.Name = parts[0], parts[1], parts[2]
	return ref
}

// refCursor is the after= cursor of ref, as afterRef reads it.
func refCursor(ref store.ObjectRef, withCluster bool) string {
	s := ref.Kind + "/" + ref.Namespace + "/" + ref.Name
	if withCluster {
		s = ref.Cluster + "/" + s
	}
	return s
}

// oneOf reads an optional query parameter that must be one of allowed.
func (p *params) oneOf(name string, allowed ...string) string {
	s := p.r.URL.Query().Get(name)
	if s != "" && !slices.Contains(allowed, s) {
		p.fail(name, "must be one of %s, got %q", strings.Join(allowed, ", "), s)
	}
	return s
}

// str reads an optional free-form query parameter.
func (p *params) str(name string) string { return p.r.URL.Query().Get(name) }

// time reads an optional RFC 3339 timestamp.
func (p *params) time(name string) time.Time {
	s := p.r.URL.Query().Get(name)
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		p.fail(name, "must be an RFC 3339 timestamp, got %q", s)
	}
	return t
}

// AfterParam reads a page's ?after= cursor as the API's lists do; a bad one is a 400 naming
// after. The console's pages in name order page with it.
func AfterParam(r *http.Request) (string, error) {
	p := params{r: r}
	s := p.after()
	return s, p.err
}

// AfterRefParam reads ?after= as a cursor of Flux objects (RefCursor).
func AfterRefParam(r *http.Request, withCluster bool) (*store.ObjectRef, error) {
	p := params{r: r}
	ref := p.afterRef(withCluster)
	return ref, p.err
}

// BeforeParam reads a newest-first page's ?before= cursor (0 when absent).
func BeforeParam(r *http.Request) (int64, error) {
	p := params{r: r}
	v := p.int64("before")
	return v, p.err
}

// RefCursor is the ?after= cursor that continues a list of Flux objects after ref.
func RefCursor(ref store.ObjectRef, withCluster bool) string { return refCursor(ref, withCluster) }
