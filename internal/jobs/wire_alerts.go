package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	notificationv1beta3 "github.com/fluxcd/notification-controller/api/v1beta3"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/rs/zerolog"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxbridge/fluxbridge/internal/cluster"
	"github.com/fluxbridge/fluxbridge/internal/flux"
	"github.com/fluxbridge/fluxbridge/internal/fluxalert"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// AlertRewireInterval is how often every cluster's alerting is applied again, which also
// repairs a Provider or Alert someone deleted or edited by hand.
const AlertRewireInterval = 10 * time.Minute

// AlertTarget is how a cluster reaches fluxbridge: the receiver's base URL as the cluster sees
// it, and the cluster's webhook token.
type AlertTarget struct {
	ReceiverURL string
	Token       string
}

// AlertWirer makes a cluster's notification-controller report to fluxbridge (R14.1): it
// server-side-applies, as field manager fluxbridge, the token Secret, the generic-hmac
// Provider and one Alert per project environment covering the Flux objects fluxbridge manages
// in the cluster (fluxalert.Objects), and deletes the Alerts it made that cover nothing any
// more. Clusters without a target (no receiver URL configured) are left alone.
type AlertWirer struct {
	Store    *store.Store
	Clusters *cluster.Registry
	// Targets are by cluster name.
	Targets map[string]AlertTarget
}

// ErrNotWired means a cluster has no receiver URL (or no kubeconfig), so fluxbridge cannot
// wire its alerting; its Provider and Alert must be set up by hand.
var ErrNotWired = errors.New("alerting not wired: the cluster has no receiverURL (or externalURL) and kubeconfig")

// Wired tells whether Wire manages the cluster's alerting.
func (a *AlertWirer) Wired(clusterName string) bool {
	if a == nil || a.Clusters == nil {
		return false
	}
	_, ok := a.Targets[clusterName]
	_, err := a.Clusters.Get(clusterName)
	return ok && err == nil
}

// Wire brings a cluster's alerting up to date with the database and returns the names of the
// Alerts it applied and deleted.
func (a *AlertWirer) Wire(ctx context.Context, clusterName string) (applied, deleted []string, err error) {
	if !a.Wired(clusterName) {
		return nil, nil, fmt.Errorf("cluster %s: %w", clusterName, ErrNotWired)
	}
	cl, err := a.Clusters.Get(clusterName)
	if err != nil {
		return nil, nil, err
	}
	srcs, err := a.Store.AlertSources(ctx, a.Store.Pool(), clusterName)
	if err != nil {
		return nil, nil, err
	}
	t := a.Targets[clusterName]
	w := fluxalert.Wiring{Cluster: clusterName, Namespace: cl.FluxNamespace, ReceiverURL: t.ReceiverURL, Token: t.Token}
	for _, s := range srcs {
		if n := len(w.Groups); n == 0 || w.Groups[n-1].Project != s.Project || w.Groups[n-1].Environment != s.Environment {
			w.Groups = append(w.Groups, fluxalert.Group{Project: s.Project, Environment: s.Environment})
		}
		g := &w.Groups[len(w.Groups)-1]
		g.Sources = append(g.Sources, fluxalert.Source{Kind: s.Kind, Namespace: s.Namespace, Name: s.Name})
	}
	objs, err := fluxalert.Objects(w)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster %s: %w", clusterName, err)
	}
	if err := flux.EnsureNamespace(ctx, cl.Client, cl.FluxNamespace); err != nil {
		return nil, nil, err
	}
	for _, o := range objs {
		if _, err := flux.Apply(ctx, cl.Client, o); err != nil {
			return applied, nil, fmt.Errorf("cluster %s: %w", clusterName, err)
		}
		if _, ok := o.(*notificationv1beta3.Alert); ok {
			applied = append(applied, o.GetName())
		}
	}
	deleted, err = a.prune(ctx, cl, applied)
	return applied, deleted, err
}

// prune deletes the Alerts fluxbridge made in the cluster that are not in keep.
func (a *AlertWirer) prune(ctx context.Context, cl *cluster.Cluster, keep []string) ([]string, error) {
	var list notificationv1beta3.AlertList
	if err := cl.Client.List(ctx, &list, client.InNamespace(cl.FluxNamespace), client.MatchingLabels{
		fluxalert.LabelManagedBy: fluxalert.ManagedByValue, fluxalert.LabelComponent: fluxalert.ComponentValue,
	}); err != nil {
		return nil, fmt.Errorf("cluster %s: list alerts: %w", cl.Name, err)
	}
	var deleted []string
	for i := range list.Items {
		al := &list.Items[i]
		if slices.Contains(keep, al.Name) {
			continue
		}
		if err := cl.Client.Delete(ctx, al); err != nil && !apierrors.IsNotFound(err) {
			return deleted, fmt.Errorf("cluster %s: delete alert %s: %w", cl.Name, al.Name, err)
		}
		deleted = append(deleted, al.Name)
	}
	return deleted, nil
}

// WireAlertsArgs asks the worker to wire a cluster's alerting; an empty Cluster means every
// cluster fluxbridge can wire.
type WireAlertsArgs struct {
	Cluster string `json:"cluster,omitempty"`
}

// Kind implements river.JobArgs.
func (WireAlertsArgs) Kind() string { return "wire_alerts" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (WireAlertsArgs) InsertOpts() river.InsertOpts { return kubeInsertOpts() }

// WireAlertsWorker runs AlertWirer.Wire. It runs at start and every AlertRewireInterval for
// every cluster, and after a resource is deleted for its cluster (a new resource is covered by
// its apply job before it is created).
type WireAlertsWorker struct {
	river.WorkerDefaults[WireAlertsArgs]
	Wirer *AlertWirer
}

// Timeout bounds one run.
func (w *WireAlertsWorker) Timeout(*river.Job[WireAlertsArgs]) time.Duration {
	return 2 * kubeCallTimeout
}

// NextRetry implements river.Worker.
func (w *WireAlertsWorker) NextRetry(job *river.Job[WireAlertsArgs]) time.Time {
	return time.Now().Add(kubeBackoff(job.Attempt))
}

// Work implements river.Worker.
func (w *WireAlertsWorker) Work(ctx context.Context, job *river.Job[WireAlertsArgs]) error {
	if w.Wirer == nil || w.Wirer.Clusters == nil {
		return nil
	}
	log := zerolog.Ctx(ctx)
	names := []string{job.Args.Cluster}
	if job.Args.Cluster == "" {
		names = nil
		for _, c := range w.Wirer.Clusters.Managed() {
			names = append(names, c.Name)
		}
	}
	var errs []error
	for _, name := range names {
		if !w.Wirer.Wired(name) {
			log.Info().Str("cluster", name).Msg("alerting not wired: no receiverURL configured for the cluster")
			continue
		}
		ctx, cancel := context.WithTimeout(ctx, kubeCallTimeout)
		applied, deleted, err := w.Wirer.Wire(ctx, name)
		cancel()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		log.Info().Str("cluster", name).Strs("alerts", applied).Strs("deleted", deleted).Msg("alerting wired")
	}
	return errors.Join(errs...)
}

// coverBeforeApply wires the alerting of a resource's cluster before its object is first
// created, so that its first events already reach fluxbridge. A failure does not stop the
// apply: a wire_alerts job retries it.
func (d *kubeDeps) coverBeforeApply(ctx context.Context, res *store.Resource) {
	if res.AppliedSpecVersion > 0 || !d.Alerts.Wired(res.Cluster) {
		return
	}
	if _, _, err := d.Alerts.Wire(ctx, res.Cluster); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Str("cluster", res.Cluster).Msg("wire alerting before the first apply; retrying in a job")
		d.rewire(ctx, res.Cluster)
	}
}

// rewire enqueues a wire_alerts job for a cluster from inside a running job.
func (d *kubeDeps) rewire(ctx context.Context, clusterName string) {
	if !d.Alerts.Wired(clusterName) {
		return
	}
	rc, err := river.ClientFromContextSafely[pgx.Tx](ctx)
	if err == nil {
		_, err = rc.Insert(ctx, WireAlertsArgs{Cluster: clusterName}, nil)
	}
	if err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Str("cluster", clusterName).Msg("enqueue wire_alerts")
	}
}
