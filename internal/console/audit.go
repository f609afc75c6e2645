package console

import (
	"encoding/csv"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/fluxbridge/fluxbridge/internal/handlers"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// auditShown is a page of the audit log; auditExported bounds one CSV export.
const (
	auditShown    = 100
	auditExported = 10000
)

type auditRow struct {
	store.AuditEntry
	Env     string
	Changes []handlers.Change
}

type auditFilter struct{ Actor, Action, Target, Cluster, Env, Since, Until string }

type auditPage struct {
	Slug  string
	Rows  []auditRow
	F     auditFilter
	Envs  []store.Environment
	Query template.URL // the filters, encoded
	Next  int64
}

// audit is the project's audit log: who did what to which object, with the change as fields
// before and after (secrets already redacted when the row was written), filterable, paged and
// exported as CSV.
func (c *Console) audit(w http.ResponseWriter, r *http.Request) {
	p, items, names, err := c.auditRows(r, auditShown)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if len(items) > auditShown {
		items = items[:auditShown]
		p.Next = items[len(items)-1].ID
	}
	for _, e := range items {
		row := auditRow{AuditEntry: e}
		if e.EnvironmentID != nil {
			row.Env = names[*e.EnvironmentID]
		}
		var d struct{ Before, After json.RawMessage }
		if json.Unmarshal(e.Details, &d) == nil && (len(d.Before) > 0 || len(d.After) > 0) {
			row.Changes, _ = handlers.Changes(d.Before, d.After)
		}
		p.Rows = append(p.Rows, row)
	}
	c.render(w, r, http.StatusOK, "audit", p)
}

// auditRows reads the filtered log (at most limit+1 rows, to tell whether more follow) and
// the project's environment names by ID.
func (c *Console) auditRows(r *http.Request, limit int) (*auditPage, []store.AuditEntry, map[int64]string, error) {
	p, f, err := c.auditData(r, limit)
	if err != nil {
		return nil, nil, nil, err
	}
	items, err := c.store.ListAudit(r.Context(), c.store.Pool(), f)
	if err != nil {
		return nil, nil, nil, err
	}
	names := map[int64]string{}
	for _, e := range p.Envs {
		names[e.ID] = e.Name
	}
	return p, items, names, nil
}

// auditCSV exports the filtered log, newest first.
func (c *Console) auditCSV(w http.ResponseWriter, r *http.Request) {
	p, items, names, err := c.auditRows(r, auditExported)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	items = items[:min(len(items), auditExported)]
	securityHeaders(w)
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="audit-`+p.Slug+`.csv"`)
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"id", "at", "actor_type", "actor", "action", "target_type", "target_id", "environment", "cluster", "message", "request_id", "source_ip", "details"})
	for _, e := range items {
		env := ""
		if e.EnvironmentID != nil {
			env = names[*e.EnvironmentID]
		}
		_ = cw.Write([]string{strconv.FormatInt(e.ID, 10), e.At.UTC().Format(time.RFC3339), e.ActorType, e.ActorName, e.Action,
			e.TargetType, e.TargetID, env, e.Cluster, csvSafe(e.Message), e.RequestID, e.SourceIP, csvSafe(string(e.Details))})
	}
	cw.Flush()
}

// csvSafe keeps a spreadsheet from reading a cell as a formula.
func csvSafe(s string) string {
	if s != "" && (s[0] == '=' || s[0] == '+' || s[0] == '-' || s[0] == '@') {
		return "'" + s
	}
	return s
}

func (c *Console) auditData(r *http.Request, limit int) (*auditPage, store.AuditFilter, error) {
	sc := handlers.ScopeOf(r)
	q := r.URL.Query()
	p := &auditPage{Slug: sc.Project.Slug, F: auditFilter{Actor: q.Get("actor"), Action: q.Get("action"),
		Target: q.Get("target_type"), Cluster: q.Get("cluster"), Env: q.Get("environment"), Since: q.Get("since"), Until: q.Get("until")}}
	f := store.AuditFilter{ProjectID: sc.Project.ID, ActorName: p.F.Actor, Action: p.F.Action, TargetType: p.F.Target,
		Cluster: p.F.Cluster, Limit: limit + 1}
	envs, err := c.store.ProjectEnvironments(r.Context(), c.store.Pool(), sc.Project.ID)
	if err != nil {
		return nil, f, err
	}
	p.Envs = envs
	for _, e := range envs {
		if e.Name == p.F.Env {
			f.EnvironmentID = e.ID
		}
	}
	if p.F.Env != "" && f.EnvironmentID == 0 {
		return nil, f, handlers.BadRequest("environment", "no environment "+strconv.Quote(p.F.Env)+" in this project")
	}
	for _, t := range []struct {
		field, v string
		dst      *time.Time
	}{{"since", p.F.Since, &f.Since}, {"until", p.F.Until, &f.Until}} {
		if t.v == "" {
			continue
		}
		// A date input sends 2006-01-02; RFC 3339 is taken too.
		d, err := time.Parse("2006-01-02", t.v)
		if err != nil {
			if d, err = time.Parse(time.RFC3339, t.v); err != nil {
				return nil, f, handlers.BadRequest(t.field, "want a date (2006-01-02) or an RFC 3339 time")
			}
		} else if t.field == "until" {
			d = d.AddDate(0, 0, 1) // through the end of that day
		}
		*t.dst = d
	}
	if b := q.Get("before"); b != "" {
		if f.BeforeID, err = strconv.ParseInt(b, 10, 64); err != nil || f.BeforeID <= 0 {
			return nil, f, handlers.BadRequest("before", "want an audit row ID")
		}
	}
	v := url.Values{}
	for k, val := range map[string]string{"actor": p.F.Actor, "action": p.F.Action, "target_type": p.F.Target,
		"cluster": p.F.Cluster, "environment": p.F.Env, "since": p.F.Since, "until": p.F.Until} {
		if val != "" {
			v.Set(k, val)
		}
	}
	p.Query = template.URL(v.Encode()) // url.Values encodes it: safe in a URL
	return p, f, nil
}
