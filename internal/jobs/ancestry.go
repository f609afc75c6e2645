package jobs

import (
	"context"
	"errors"

	"github.com/rs/zerolog"

	"github.com/fluxbridge/fluxbridge/internal/fluxevent"
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

// PrefetchAuthor asks Git, before any transaction, who authored commit sha when the applier
// ref names reports revision for the first time and no console deploy made it: the author of
// the gitops-git deployment about to be recorded (R5). "" when there is nothing to ask, or
// Git does not answer within ancestorTimeout (the deployment is recorded without one).
func PrefetchAuthor(ctx context.Context, st *store.Store, author CommitAuthorFunc, ref store.ObjectRef, sha, revision string) string {
	if author == nil || sha == "" || revision == "" || !fluxevent.IsApplier(ref.Kind) {
		return ""
	}
	db := st.Pool()
	res, err := st.ResourceByRef(ctx, db, ref)
	if err != nil || res.RepositoryID == nil {
		return ""
	}
	if done, err := st.HasGitDeploymentOfRevision(ctx, db, res.ID, revision); err != nil || done {
		return ""
	}
	if ui, err := st.HasUIDeploymentOfCommit(ctx, db, res.ID, sha); err != nil || ui {
		return ""
	}
	actx, cancel := context.WithTimeout(ctx, ancestorTimeout)
	defer cancel()
	a, err := author(actx, *res.RepositoryID, sha)
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Str("commit", sha).Msg("commit author not read from Git; the deployment is recorded without it")
		return ""
	}
	return a
}
