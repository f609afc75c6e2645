package store

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// unboundedOK lists the store functions whose multi-row SELECT has no LIMIT, each with why its
// rows are few by construction. Anything else that reads many rows must take a limit (and a
// cursor) or page through with readAll.
var unboundedOK = map[string]string{
	"ListVotes":             "the votes on the given requests: one per person per request, and callers pass one request or a page of them",
	"PromoteProposals":      "locks the changes one approval request holds, which must all be promoted in its transaction",
	"InsertFluxEvents":      "SELECT … FROM unnest of the rows given: as many rows as the batch",
	"MarkNotificationsRead": "SELECT … FROM unnest of the IDs given: as many rows as the request names",
	"healthCounts":          "counts grouped by (project or environment, status): a handful of rows per ID given",
}

var (
	selectFrom = regexp.MustCompile(`(?is)\bSELECT\b.*\bFROM\b`)
	limitWord  = regexp.MustCompile(`(?i)\bLIMIT\b`)
)

// TestListQueriesHaveLimit fails when a store query that can return many rows has no LIMIT: it
// reads every function of the package, and each db.Query whose rows are collected as many
// (collectAll, collectInt64, pgx.CollectRows, rows.Next) and whose SQL selects FROM a table
// must say LIMIT, unless the function is in unboundedOK with its reason.
func TestListQueriesHaveLimit(t *testing.T) {
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]string{} // package-level string constants, for SQL built from them
	var parsed []*ast.File
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		parsed = append(parsed, f)
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, s := range g.Specs {
				vs := s.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i < len(vs.Values) {
						if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							consts[n.Name], _ = strconv.Unquote(lit.Value)
						}
					}
				}
			}
		}
	}
	seen := map[string]bool{}
	var bad []string
	for _, f := range parsed {
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			name := fn.Name.Name
			for _, q := range queriesOf(fn.Body, consts) {
				if !q.many {
					continue
				}
				if q.dynamic || selectFrom.MatchString(q.sql) && !limitWord.MatchString(q.sql) {
					if _, ok := unboundedOK[name]; ok {
						seen[name] = true
						continue
					}
					what := "SELECT … FROM without LIMIT"
					if q.dynamic {
						what = "a query built at run time"
					}
					bad = append(bad, fset.Position(q.pos).String()+": "+name+": "+what)
				}
			}
		}
	}
	sort.Strings(bad)
	for _, b := range bad {
		t.Errorf("%s: give it a limit and a cursor, page through with readAll, or add it to unboundedOK with why it is small", b)
	}
	for name := range unboundedOK {
		if !seen[name] {
			t.Errorf("unboundedOK names %s, which has no unbounded query any more: remove it", name)
		}
	}
}

type query struct {
	pos     token.Pos
	sql     string
	dynamic bool // the SQL is not a constant expression
	many    bool // its rows are read as many
}

// queriesOf finds the Query calls in body, in source order, and marks each by the first row
// collector after it (before the next Query): collectOne reads one row, the others many. A
// Query no collector follows (its rows returned or scanned elsewhere) counts as many.
func queriesOf(body *ast.BlockStmt, consts map[string]string) []query {
	var qs []query
	type collector struct {
		pos  token.Pos
		many bool
	}
	var cs []collector
	ast.Inspect(body, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		switch fun := call.Fun.(type) {
		case *ast.SelectorExpr:
			switch fun.Sel.Name {
			case "Query":
				if len(call.Args) >= 2 {
					sql, ok := constString(call.Args[1], consts)
					qs = append(qs, query{pos: call.Pos(), sql: sql, dynamic: !ok})
				}
			case "Next", "CollectRows":
				cs = append(cs, collector{call.Pos(), true})
			case "CollectExactlyOneRow", "CollectOneRow":
				cs = append(cs, collector{call.Pos(), false})
			}
		case *ast.IndexExpr: // collectAll[T](rows), collectOne[T](rows)
			if id, ok := fun.X.(*ast.Ident); ok {
				switch id.Name {
				case "collectAll":
					cs = append(cs, collector{call.Pos(), true})
				case "collectOne":
					cs = append(cs, collector{call.Pos(), false})
				}
			}
		case *ast.Ident:
			if fun.Name == "collectInt64" {
				cs = append(cs, collector{call.Pos(), true})
			}
		}
		return true
	})
	for i := range qs {
		end := token.Pos(1 << 62)
		if i+1 < len(qs) {
			end = qs[i+1].pos
		}
		qs[i].many = true
		for _, c := range cs {
			if c.pos > qs[i].pos && c.pos < end {
				qs[i].many = c.many
				break
			}
		}
	}
	return qs
}

// constString evaluates a string expression of literals, package constants and +.
func constString(e ast.Expr, consts map[string]string) (string, bool) {
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(e.Value)
		return s, err == nil
	case *ast.Ident:
		s, ok := consts[e.Name]
		return s, ok
	case *ast.BinaryExpr:
		if e.Op != token.ADD {
			return "", false
		}
		a, ok1 := constString(e.X, consts)
		b, ok2 := constString(e.Y, consts)
		return a + b, ok1 && ok2
	case *ast.ParenExpr:
		return constString(e.X, consts)
	}
	return "", false
}
