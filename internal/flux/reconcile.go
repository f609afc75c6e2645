package flux

import (
	"context"
	"errors"
	"fmt"
	"time"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/fluxcd/pkg/apis/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ErrSuspended is returned by RequestReconcile for a suspended object: Flux would ignore the
// request, so it is refused instead of silently dropped (as `flux reconcile` does).
var ErrSuspended = errors.New("object is suspended; resume it first")

// RequestOptions shape a reconcile request.
type RequestOptions struct {
	// Force and Reset (HelmRelease only) also set reconcile.fluxcd.io/forceAt and resetAt to the
	// token: a one-off forced upgrade, and a reset of the failure counters.
	Force, Reset bool
	// Resume sets spec.suspend=false in the same patch, for objects that sync only on request.
	Resume bool
}

// NewToken returns a reconcile request token, as `flux reconcile` makes it.
func NewToken(now time.Time) string { return now.UTC().Format(time.RFC3339Nano) }

// RequestReconcile asks Flux to reconcile the object now, with `flux reconcile` semantics: the
// reconcile.fluxcd.io/requestedAt annotation is set to token by a merge patch guarded by the
// object's resourceVersion, retried on conflict. Progress is then read with Progress until
// status.lastHandledReconcileAt equals the token.
func RequestReconcile(ctx context.Context, c client.Client, ref Ref, token string, opts RequestOptions) error {
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		u, err := Get(ctx, c, ref)
		if err != nil {
			return err
		}
		suspended, _, _ := unstructured.NestedBool(u.Object, "spec", "suspend")
		if suspended && !opts.Resume {
			return fmt.Errorf("reconcile %s: %w", ref, ErrSuspended)
		}
		patch := client.MergeFromWithOptions(u.DeepCopy(), client.MergeFromWithOptimisticLock{})
		ann := u.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[meta.ReconcileRequestAnnotation] = token
		if ref.Kind == helmv2.HelmReleaseKind {
			if opts.Force {
				ann[meta.ForceRequestAnnotation] = token
			}
			if opts.Reset {
				ann[helmv2.ResetRequestAnnotation] = token
			}
		}
		u.SetAnnotations(ann)
		if opts.Resume && suspended {
			if err := unstructured.SetNestedField(u.Object, false, "spec", "suspend"); err != nil {
				return err
			}
		}
		if err := c.Patch(ctx, u, patch, client.FieldOwner(FieldManager)); err != nil {
			return fmt.Errorf("annotate %s: %w", ref, err)
		}
		return nil
	})
}

// SetSuspend sets spec.suspend by a merge patch, as `flux suspend` and `flux resume` do.
// fluxbridge's own applies keep spec.suspend in line with the API's state; this is for
// temporary changes (a manual-sync object resumed for one reconcile).
func SetSuspend(ctx context.Context, c client.Client, ref Ref, suspend bool) error {
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		u, err := Get(ctx, c, ref)
		if err != nil {
			return err
		}
		patch := client.MergeFromWithOptions(u.DeepCopy(), client.MergeFromWithOptimisticLock{})
		if err := unstructured.SetNestedField(u.Object, suspend, "spec", "suspend"); err != nil {
			return err
		}
		if err := c.Patch(ctx, u, patch, client.FieldOwner(FieldManager)); err != nil {
			return fmt.Errorf("set suspend=%t on %s: %w", suspend, ref, err)
		}
		return nil
	})
}

// Progress is how far Flux got with a reconcile request.
type Progress struct {
	Observation
	// Handled tells whether the controller has seen the request: lastHandledReconcileAt equals
	// the token.
	Handled bool
}

// Done tells whether the request was handled and Ready is decided.
func (p *Progress) Done() bool { return p.Handled && p.Decided() }

// ReadProgress reads the object and compares its lastHandledReconcileAt with token.
func ReadProgress(ctx context.Context, c client.Client, ref Ref, token string) (Progress, error) {
	u, err := Get(ctx, c, ref)
	if err != nil {
		return Progress{}, err
	}
	o := Observe(u)
	return Progress{Observation: o, Handled: token != "" && o.LastHandledReconcileAt == token}, nil
}
