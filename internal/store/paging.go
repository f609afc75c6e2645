package store

// Every list query here is bounded: it takes a limit (DefaultLimit when the caller passes 0)
// and a keyset cursor in the list's own order — a smaller ID for newest-first lists (before),
// the last key seen for lists in name order (after). Callers that need every row (jobs, the
// isolation checks) page through with readAll, so no single query returns an unbounded set.
// list_limit_test.go fails when a query that can return many rows has no LIMIT.

// DefaultLimit is the page size of a list whose caller gives none.
const DefaultLimit = 50

// readAllPage is the page size of readAll (a variable so that tests can page through few rows).
var readAllPage = 500

// limitOr returns n, or DefaultLimit when n is not positive.
func limitOr(n int) int {
	if n <= 0 {
		return DefaultLimit
	}
	return n
}

// readAll reads a keyset-paged list to its end, readAllPage rows a query: next gets the last
// row of the previous page (nil for the first) and the page size.
func readAll[T any](next func(last *T, limit int) ([]T, error)) ([]T, error) {
	out := []T{}
	var last *T
	for {
		page, err := next(last, readAllPage)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if len(page) < readAllPage {
			return out, nil
		}
		last = &page[len(page)-1]
	}
}
