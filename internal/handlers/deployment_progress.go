package handlers

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxbridge/fluxbridge/internal/approval"
	"github.com/fluxbridge/fluxbridge/internal/fluxevent"
	"github.com/fluxbridge/fluxbridge/internal/gitops"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// DeploymentProgress is one deployment followed end to end, for the console's progress view:
// the row, where it went, the Flux object that applies it, and the app's workload as its own
// status reports it (so people see pods come up before Flux's health check says Ready).
type DeploymentProgress struct {
	Deployment  store.Deployment
	Environment *store.Environment
	Spec        *store.DeploymentSpec // nil for manual and gitops-git deployments
	Resource    *store.Resource       // the Kustomization (or HelmRelease) that applies it, if known
	// Applied is true once the resource's last applied revision is the deployment's commit.
	Applied bool
	// Rollout is the app's Deployment in the cluster, when it can be read.
	Rollout *Rollout
	// Hint is a first step to fix a failure, from the resource's reason.
	Hint string
	// Approval is the deployment's approval request with its votes, when it needed one.
	Approval *ApprovalView
	// CommitURL is the commit's page on the repository's host (GitHub, GitLab, Gitea), if known.
	CommitURL string
}

// Rollout is a workload's replicas as its status reports them.
type Rollout struct {
	Name      string
	Namespace string
	Desired   int32
	Updated   int32
	Ready     int32
	Available int32
	// Message is the workload's Progressing condition message, when not progressing normally.
	Message string
	Err     string // why the workload could not be read
}

// Progress reads one of the scoped project's deployments with what its progress view shows.
func (h *Handler) Progress(r *http.Request, id int64) (*DeploymentProgress, error) {
	ctx, db := r.Context(), h.store.Pool()
	d, err := h.projectDeployment(r, id)
	if err != nil {
		return nil, err
	}
	out := &DeploymentProgress{Deployment: *d}
	if out.Environment, err = h.store.EnvironmentByID(ctx, db, d.EnvironmentID); err != nil {
		return nil, err
	}
	if spec, err := h.store.DeploymentSpecByID(ctx, db, d.ID); err == nil {
		out.Spec = spec
		if repo, err := h.store.RepositoryByID(ctx, db, spec.RepositoryID); err == nil {
			out.CommitURL = gitops.CommitWebURL(repo.URL, d.CommitSHA)
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	reqs, err := h.store.ListApprovalRequests(ctx, db, store.ApprovalFilter{ProjectID: d.ProjectID,
		TargetType: approval.TargetDeployment, TargetID: d.ID, Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(reqs) == 1 {
		views, err := h.viewApprovals(ctx, db, reqs)
		if err != nil {
			return nil, err
		}
		out.Approval = &views[0]
	}
	if d.GitopsResourceID != nil {
		res, err := h.store.ResourceByID(ctx, db, *d.GitopsResourceID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		out.Resource = res
	}
	if res := out.Resource; res != nil {
		out.Applied = d.CommitSHA != "" && strings.Contains(res.LastAppliedRevision, d.CommitSHA)
		if res.Status == "failed" || d.Status == store.DeployFailed {
			out.Hint = fluxevent.Hint(res.StatusReason)
		}
	}
	if out.Spec != nil && out.Resource != nil && d.App != "" && (d.Status == store.DeployPushed || d.Status == store.DeploySucceeded || d.Status == store.DeployFailed) {
		out.Rollout = h.rollout(ctx, out.Resource.Cluster, out.Spec.Namespace, d.App)
	}
	return out, nil
}

// rollout reads the app's Deployment; a cron job or an app not yet applied has none.
func (h *Handler) rollout(ctx context.Context, clusterName, namespace, app string) *Rollout {
	if h.clusters == nil {
		return nil
	}
	cl, err := h.clusters.Get(clusterName)
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var dep appsv1.Deployment
	ro := &Rollout{Name: app, Namespace: namespace}
	switch err := cl.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: app}, &dep); {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		ro.Err = err.Error()
		return ro
	}
	ro.Desired = 1
	if dep.Spec.Replicas != nil {
		ro.Desired = *dep.Spec.Replicas
	}
	ro.Updated, ro.Ready, ro.Available = dep.Status.UpdatedReplicas, dep.Status.ReadyReplicas, dep.Status.AvailableReplicas
	for _, c := range dep.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Status != "True" {
			ro.Message = c.Message
		}
	}
	return ro
}
