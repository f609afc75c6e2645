package handlers

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fluxbridge/fluxbridge/internal/fluxspec"
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
		return nil, nil, h.deleteAppObjects(ctx, tx, sc, refs, held, "image_automation", "the image automation of this app (deploy with image_automation to keep it)")
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
		res, carry, err := h.syncAppObject(ctx, tx, sc, &appObject{ref: ref, cfg: cfg, repoID: &t.repo.ID}, held, "image_automation", "image automation for "+form.App)
		if err != nil {
			return nil, nil, err
		}
		if carry {
			apply = append(apply, res)
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
