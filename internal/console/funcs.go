package console

import (
	"fmt"
	"html/template"
	"slices"
	"strings"
	"time"

	"github.com/fluxbridge/fluxbridge/internal/store"
)

// funcs are the template functions.
func (c *Console) funcs() template.FuncMap {
	return template.FuncMap{
		"static": func(name string) (string, error) {
			f, ok := c.static[name]
			if !ok {
				return "", fmt.Errorf("no static file %q", name)
			}
			return f.hashed, nil
		},
		"rfc3339": func(t any) string {
			if tt := asTime(t); !tt.IsZero() {
				return tt.UTC().Format(time.RFC3339)
			}
			return ""
		},
		"local": func(t any) string { return asTime(t).UTC().Format("2006-01-02 15:04:05 UTC") },
		"ago":   func(t any) string { return relative(c.now(), asTime(t)) },
		"short": shortRevision,
		"status": func(status, reason string, suspended bool) Badge {
			return StatusBadge(status, reason, suspended)
		},
		"sync":        SyncBadge,
		"approval":    ApprovalBadge,
		"deploybadge": DeploymentBadge,
		"severity":    SeverityBadge,
		"has":         slices.Contains[[]string, string],
		"reposync":    repoSyncBadge,
		"lockbadge": func(rb *store.Rollback) Badge {
			if rb.Final() {
				return Badge{Label: "Locked", Class: "suspended", Icon: "suspended"}
			}
			return Badge{Label: "Rolling back", Class: "reconciling", Icon: "reconciling"}
		},
		"dict": func(kv ...any) (map[string]any, error) {
			if len(kv)%2 != 0 {
				return nil, fmt.Errorf("dict: odd number of arguments")
			}
			m := make(map[string]any, len(kv)/2)
			for i := 0; i < len(kv); i += 2 {
				k, ok := kv[i].(string)
				if !ok {
					return nil, fmt.Errorf("dict: key %v is not a string", kv[i])
				}
				m[k] = kv[i+1]
			}
			return m, nil
		},
		"method": func(m string) string {
			if l, ok := methodLabels[m]; ok {
				return l
			}
			return m
		},
		"trigger": func(t string) string {
			if l, ok := triggerLabels[t]; ok {
				return l
			}
			return t
		},
		"sourceable": sourceable,
		"row":        func(slug string, r any) rowData { return rowData{Slug: slug, R: r} },
		"action":     actionFor,
		"field":      newField,
		"rowctx":     newRowCtx,
		"rowfield":   rowField,
		"rowselect":  rowSelect,
		"envsources": func() []option { return []option{{"value", "Plain value"}, {"secret", "Secret reference"}} },
	}
}

// asTime accepts a time.Time or *time.Time (nil: zero).
func asTime(t any) time.Time {
	switch v := t.(type) {
	case time.Time:
		return v
	case *time.Time:
		if v != nil {
			return *v
		}
	}
	return time.Time{}
}

// relative renders t against now as the browser will ("5 min ago", "in 3 min"); after a day,
// the date. The script ticks it on.
func relative(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < 45*time.Second:
		if future {
			return "in a few seconds"
		}
		return "just now"
	case d < time.Hour:
		s = fmt.Sprintf("%d min", int((d+30*time.Second)/time.Minute))
	case d < 24*time.Hour:
		s = fmt.Sprintf("%d h", int((d+30*time.Minute)/time.Hour))
	default:
		return t.UTC().Format("2006-01-02 15:04 UTC")
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

// shortRevision shows a Flux revision ("main@sha1:<40 hex>", a bare SHA, "sha256:<digest>")
// as seven characters of its commit (twelve of a digest); anything else as it is.
func shortRevision(rev string) string {
	s := rev
	if i := strings.LastIndex(rev, ":"); i >= 0 {
		s = rev[i+1:]
	}
	if len(s) >= 40 && isHex(s) {
		if strings.Contains(rev, "sha256:") && !strings.Contains(rev, "@sha1:") {
			return s[:12]
		}
		return s[:7]
	}
	return rev
}

func isHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// rowData is one overview row: the project's slug and the resource.
type rowData struct {
	Slug string
	R    any
}
