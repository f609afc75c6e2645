package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fluxbridge/fluxbridge/internal/fluxspec"
	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/manifest"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// Defaults of the image automation a deploy form asks for.
const (
	defaultScanInterval       = 5 * time.Minute
	defaultAutomationInterval = 10 * time.Minute
)

// imageAutomationView names the objects of an app's image automation in a deploy's answer.
type imageAutomationView struct {
	ImageRepository       int64 `json:"image_repository_id"`
	ImagePolicy           int64 `json:"image_policy_id"`
	ImageUpdateAutomation int64 `json:"image_update_automation_id"`
}

// syncImageAutomation makes the app's image automation match the form, in tx (R6b): with
// form.ImageAutomation, an ImageRepository scanning the image, an ImagePolicy choosing the tag
// by the semver range, and an ImageUpdateAutomation that commits the choice into the app's
// directory through the environment's GitRepository, all named <project>-<env>-<app> in the
// GitRepository's namespace (the ImagePolicy is the one the manifest's setter comment names);
// without it, those objects are deleted. It returns the objects it created or changed, whose
// apply goes through the deploy's approval gate with the deploy.
//
// Creating, changing or removing image automation is changing Flux objects: maintainers' work
// (R13.1); a developer's deploy that would do it is refused. With held (the deploy waits for
// approvals) every change is a proposal that the deploy's approval makes live, a removal too.
func (h *Handler) syncImageAutomation(ctx context.Context, tx pgx.Tx, sc *reqScope, t *deployTarget, k *store.Resource, form manifest.Form, held bool) (*imageAutomationView, []*store.Resource, error) {
	name := imageAutomationName(sc, form.App)
	refs := []store.ObjectRef{
		{Cluster: k.Cluster, Kind: fluxspec.KindImageRepository, Namespace: fluxNamespace, Name: name},
		{Cluster: k.Cluster, Kind: fluxspec.KindImagePolicy, Namespace: fluxNamespace, Name: name},
		{Cluster: k.Cluster, Kind: fluxspec.KindImageUpdateAutomation, Namespace: fluxNamespace, Name: name},
	}
	a := form.ImageAutomation
	if a == nil {
		return nil, nil, h.deleteImageAutomation(ctx, tx, sc, refs, held)
	}
	src, err := h.kustomizationSource(k)
	if err != nil {
		return nil, nil, err
	}
	scan := a.ScanInterval
	if scan == "" {
		scan = defaultScanInterval.String()
	}
	configs := []any{
		fluxspec.ImageRepositoryConfig{Image: form.Image, Interval: scan},
		fluxspec.ImagePolicyConfig{ImageRepository: name, SemVer: a.SemVer},
		fluxspec.ImageUpdateAutomationConfig{
			SourceRef: src, Interval: defaultAutomationInterval.String(), CheckoutBranch: t.branch,
			AuthorName: h.committer.Name, AuthorEmail: h.committer.Email, Path: "./" + path.Clean(t.appDir(form.App)),
			MessageTemplate: fmt.Sprintf("update %s in %s: {{range .Changed.Changes}}{{.OldValue}} → {{.NewValue}} {{end}}", form.App, sc.Env.Name),
		},
	}
	ids := make([]int64, len(refs))
	var apply []*store.Resource
	for i, ref := range refs {
		cfg, err := json.Marshal(configs[i])
		if err != nil {
			return nil, nil, err
		}
		if _, err := fluxspec.Decode(ref.Kind, cfg); err != nil {
			return nil, nil, specError(err)
		}
		res, err := h.store.LockResourceByRef(ctx, tx, ref)
		switch {
		case errors.Is(err, store.ErrNotFound):
			if err := h.checkObjectFree(ctx, tx, ref.Cluster, fluxspec.Ref{Kind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name}); err != nil {
				return nil, nil, err
			}
			if err := h.mayChangeFlux(sc, "create image automation for "+form.App); err != nil {
				return nil, nil, err
			}
			res, err = h.store.CreateResource(ctx, tx, store.NewResource{
				ProjectID: sc.Project.ID, EnvironmentID: &sc.Env.ID, RepositoryID: &t.repo.ID, Cluster: ref.Cluster,
				Kind: ref.Kind, Namespace: ref.Namespace, Name: ref.Name, Config: cfg, Proposed: held,
			})
			if err != nil {
				return nil, nil, err
			}
			apply = append(apply, res)
		case err != nil:
			return nil, nil, err
		case res.ProjectID != sc.Project.ID:
			return nil, nil, errConflictf("image_automation", "cluster %s already has a %s %s/%s of another project", ref.Cluster, ref.Kind, ref.Namespace, ref.Name)
		case res.ApplyStatus == store.ApplyDeleting:
			return nil, nil, errConflictf("image_automation", "%s %s/%s is still being deleted; deploy again in a moment", ref.Kind, ref.Namespace, ref.Name)
		case res.HasPending():
			return nil, nil, h.refuse("proposal_pending", errConflictf("image_automation",
				"%s %s/%s has a change awaiting approval (approval request %s); approve or reject it first", ref.Kind, ref.Namespace, ref.Name, requestRef(res)))
		case !sameJSON(res.Config, cfg):
			if err := h.mayChangeFlux(sc, "change the image automation of "+form.App); err != nil {
				return nil, nil, err
			}
			if held {
				res, err = h.store.ProposeResource(ctx, tx, res.ID, nil, store.Proposal{Config: cfg, RepositoryID: &t.repo.ID})
			} else {
				res, err = h.store.UpdateResourceConfig(ctx, tx, res.ID, cfg, &t.repo.ID)
			}
			if err != nil {
				return nil, nil, err
			}
			apply = append(apply, res)
		case h.unapplied(ctx, tx, res):
			apply = append(apply, res) // changed by a deploy that was never pushed
		}
		ids[i] = res.ID
	}
	return &imageAutomationView{ImageRepository: ids[0], ImagePolicy: ids[1], ImageUpdateAutomation: ids[2]}, apply, nil
}

// kustomizationSource returns the name of the GitRepository the environment's Kustomization
// reads, which the ImageUpdateAutomation writes to; it must live where the image objects go.
func (h *Handler) kustomizationSource(k *store.Resource) (string, error) {
	spec, err := fluxspec.Decode(k.Kind, k.Config)
	kc, ok := spec.(*fluxspec.KustomizationConfig)
	if err != nil || !ok || kc.SourceRef.Kind != fluxspec.KindGitRepository {
		return "", errConflictf("image_automation", "image automation needs the environment's Kustomization %s/%s to read a GitRepository managed by fluxbridge", k.Namespace, k.Name)
	}
	if ns := kc.SourceRef.Namespace; ns != "" && ns != fluxNamespace || k.Namespace != fluxNamespace && kc.SourceRef.Namespace == "" {
		return "", errConflictf("image_automation", "image automation needs the GitRepository %s in namespace %s", kc.SourceRef.Name, fluxNamespace)
	}
	return kc.SourceRef.Name, nil
}

// deleteImageAutomation removes the image automation objects of an app that no longer asks for
// it; with held, the removal is a proposal the deploy's approval carries out.
func (h *Handler) deleteImageAutomation(ctx context.Context, tx pgx.Tx, sc *reqScope, refs []store.ObjectRef, held bool) error {
	for _, ref := range refs {
		res, err := h.store.LockResourceByRef(ctx, tx, ref)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if res.ApplyStatus == store.ApplyDeleting || res.ProjectID != sc.Project.ID {
			continue
		}
		if res.HasPending() {
			return h.refuse("proposal_pending", errConflictf("image_automation",
				"%s %s/%s has a change awaiting approval (approval request %s); approve or reject it first", ref.Kind, ref.Namespace, ref.Name, requestRef(res)))
		}
		if err := h.mayChangeFlux(sc, "remove the image automation of this app (deploy with image_automation to keep it)"); err != nil {
			return err
		}
		if held {
			if _, err := h.store.ProposeResource(ctx, tx, res.ID, nil, store.Proposal{Delete: true}); err != nil {
				return err
			}
			continue
		}
		if _, err := h.store.MarkResourceDeleting(ctx, tx, res.ID); err != nil {
			return err
		}
		if _, err := h.river.InsertTx(ctx, tx, jobs.DeleteResourceArgs{ResourceID: res.ID}, nil); err != nil {
			return fmt.Errorf("enqueue delete of %s: %w", ref, err)
		}
	}
	return nil
}

// sameJSON tells whether two JSON documents hold the same value.
func sameJSON(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	ax, _ := json.Marshal(x)
	by, _ := json.Marshal(y)
	return string(ax) == string(by)
}
