package jobs

import (
	"context"
	"errors"

	"github.com/fluxbridge/fluxbridge/internal/store"
)

// errNotPrefetched answers an ancestry question PrefetchAncestry did not ask: a deployment that
// opened between the prefetch and the transaction stays open (undecided) until Flux's next
// report, rather than making a Git call while rows are locked.
var errNotPrefetched = errors.New("ancestry not checked before the transaction; settled by the next report")

// PrefetchAncestry asks Git, before any transaction or row lock, whether each open UI
// deployment of the resource ref names is included in the applied commit sha, and returns an
// AncestorFunc that answers SettleDeployment from those answers only. So the event job and the
// watch never hold a row lock through a network call, nor borrow a second connection inside
// their transaction (GitAncestor reads the repository on the pool). A nil isAncestor, an empty
// sha or an unmanaged object gives nil: exact-commit matching only.
func PrefetchAncestry(ctx context.Context, st *store.Store, isAncestor AncestorFunc, ref store.ObjectRef, sha string) AncestorFunc {
	if isAncestor == nil || sha == "" {
		return nil
	}
	res, err := st.ResourceByRef(ctx, st.Pool(), ref)
	if err != nil || res.RepositoryID == nil {
		return nil
	}
	open, err := st.OpenUIDeployments(ctx, st.Pool(), res.ID)
	if err != nil {
		return func(context.Context, int64, string, string) (bool, error) { return false, err }
	}
	type answer struct {
		ok  bool
		err error
	}
	memo := map[string]answer{}
	for _, d := range open {
		if _, done := memo[d.CommitSHA]; done || d.CommitSHA == sha {
			continue
		}
		ok, err := covers(ctx, isAncestor, res, d.CommitSHA, sha)
		memo[d.CommitSHA] = answer{ok, err}
	}
	return func(_ context.Context, _ int64, ancestor, descendant string) (bool, error) {
		a, ok := memo[ancestor]
		if !ok || descendant != sha {
			return false, errNotPrefetched
		}
		return a.ok, a.err
	}
}
