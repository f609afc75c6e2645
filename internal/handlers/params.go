package handlers

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
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

// limit reads the page size (default 50, at most maxPageSize).
func (p *params) limit() int {
	v := p.int64("limit")
	switch {
	case v == 0:
		return 50
	case v > maxPageSize:
		p.fail("limit", "must be at most %d", maxPageSize)
	}
	return int(v)
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
