// Package watch keeps gitops_resources in step with the Flux objects in every managed cluster,
// through the Kubernetes Watch API: informers (a controller-runtime cache of unstructured
// objects, one informer per served Flux kind) feed a rate-limited work queue whose workers
// write each object's state to Postgres. Nothing polls: a status the controller writes reaches
// the database as soon as the watch event arrives.
//
// Across worker replicas exactly one watches each cluster: the holder of that cluster's
// session-level Postgres advisory lock (see lease). The others wait in the lock call and take
// over when the leader's session ends.
package watch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxbridge/fluxbridge/internal/cluster"
	"github.com/fluxbridge/fluxbridge/internal/flux"
	"github.com/fluxbridge/fluxbridge/internal/jobs"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// Tunables.
const (
	syncWorkers   = 2               // queue workers per cluster
	retryLeaderIn = 5 * time.Second // after a failed attempt to connect or take the lock
	// rediscoverEvery is how often a leader asks the cluster which Flux kinds it serves: CRDs
	// installed later (Flux's image automation, say, or Flux itself upgraded) are watched from
	// the next look on.
	rediscoverEvery = 30 * time.Second
)

// errNoFluxKinds is discovery's answer for a cluster without Flux.
var errNoFluxKinds = errors.New("no Flux kinds served (are the Flux CRDs installed?)")

// errKindsChanged ends a cluster's watch whose served Flux kinds changed, to start it again
// on the new set without giving up the leadership.
var errKindsChanged = errors.New("the Flux kinds served changed")

// Deps are what the watch needs.
type Deps struct {
	Store *store.Store
	// LockConn is the connection config of the leader-lock sessions (one per cluster).
	LockConn *pgx.ConnConfig
	Clusters []*cluster.Cluster
	// IsAncestor is passed to deployment settlement; optional.
	IsAncestor jobs.AncestorFunc
	// CommitAuthor names the author of a gitops-git deployment's commit; optional.
	CommitAuthor jobs.CommitAuthorFunc
	Logger       zerolog.Logger
	// OnLeader, if set, is called when this process starts or stops leading a cluster's watch
	// (for tests and metrics).
	OnLeader func(cluster string, leading bool)
	// River inserts the jobs the watch's writes set off (an automatic rollback of a failed
	// deploy) in the same transaction; optional.
	River jobs.Inserter
	// Rediscover is how often the leader looks for Flux kinds the cluster started or stopped
	// serving; default rediscoverEvery.
	Rediscover time.Duration
}

// Run watches every cluster until ctx ends. It returns only then.
func Run(ctx context.Context, d Deps) {
	var wg sync.WaitGroup
	for _, c := range d.Clusters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runCluster(ctx, d, c)
		}()
	}
	wg.Wait()
}

// runCluster competes for the cluster's leadership and watches it while leading.
func runCluster(ctx context.Context, d Deps, c *cluster.Cluster) {
	log := d.Logger.With().Str("cluster", c.Name).Logger()
	for ctx.Err() == nil {
		l, err := acquireLeadership(ctx, d.LockConn, c.Name)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn().Err(err).Msg("watch leadership unavailable; retrying")
				sleep(ctx, retryLeaderIn)
			}
			continue
		}
		log.Info().Msg("leading the watch")
		if d.OnLeader != nil {
			d.OnLeader(c.Name, true)
		}
		lctx, cancel := l.hold(ctx)
		for {
			err = watchCluster(lctx, d, c, log)
			if !errors.Is(err, errKindsChanged) {
				break
			}
			log.Info().Msg("Flux kinds served changed; watching the new set")
		}
		cancel()
		l.release(ctx)
		if d.OnLeader != nil {
			d.OnLeader(c.Name, false)
		}
		if err != nil && ctx.Err() == nil {
			log.Warn().Err(err).Msg("watch stopped; restarting")
			sleep(ctx, retryLeaderIn)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// key names one object in the work queue.
type key struct {
	GVK             schema.GroupVersionKind
	Namespace, Name string
}

// watchCluster runs informers for every served Flux kind and syncs objects to the database
// until ctx ends.
func watchCluster(ctx context.Context, d Deps, c *cluster.Cluster, log zerolog.Logger) error {
	gvks, err := servedKinds(c)
	if err != nil {
		return err
	}
	ca, err := cache.New(c.Config, cache.Options{Scheme: c.Scheme})
	if err != nil {
		return fmt.Errorf("cache for cluster %s: %w", c.Name, err)
	}
	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[key]())
	defer q.ShutDown()
	for _, gvk := range gvks {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(gvk)
		inf, err := ca.GetInformer(ctx, u, cache.BlockUntilSynced(false))
		if err != nil {
			return fmt.Errorf("informer for %s: %w", gvk.Kind, err)
		}
		enqueue := func(obj any) {
			if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if o, ok := obj.(client.Object); ok {
				q.Add(key{GVK: gvk, Namespace: o.GetNamespace(), Name: o.GetName()})
			}
		}
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    enqueue,
			UpdateFunc: func(_, obj any) { enqueue(obj) },
			DeleteFunc: enqueue,
		}); err != nil {
			return fmt.Errorf("handler for %s: %w", gvk.Kind, err)
		}
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	errc := make(chan error, 2)
	go func() { errc <- ca.Start(ctx) }()
	if d.River != nil {
		ctx = jobs.WithInserter(ctx, d.River)
	}
	s := &syncer{store: d.Store, cluster: c.Name, isAncestor: d.IsAncestor, commitAuthor: d.CommitAuthor}
	var wg sync.WaitGroup
	for range syncWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for processNext(ctx, q, ca, s, log) {
			}
		}()
	}
	go func() { errc <- watchKinds(ctx, d, c, gvks) }()
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	q.ShutDown()
	wg.Wait()
	switch {
	case errors.Is(err, errKindsChanged):
		return err
	case err != nil && ctx.Err() == nil:
		return fmt.Errorf("cache of cluster %s stopped: %w", c.Name, err)
	}
	return nil
}

// watchKinds looks at the cluster's served Flux kinds every d.Rediscover until ctx ends, and
// returns errKindsChanged when they differ from watched. A failed look is retried at the next
// tick: an apiserver that does not answer discovery is the informers' problem to report. A
// cluster that serves none any more (Flux uninstalled) changed too; its watch then waits for
// Flux to come back as one that never had it does.
func watchKinds(ctx context.Context, d Deps, c *cluster.Cluster, watched []schema.GroupVersionKind) error {
	every := d.Rediscover
	if every <= 0 {
		every = rediscoverEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		gvks, err := servedKinds(c)
		if errors.Is(err, errNoFluxKinds) || err == nil && !slices.Equal(gvks, watched) {
			return errKindsChanged
		}
	}
}

// processNext syncs one queued object; false when the queue is shut down.
func processNext(ctx context.Context, q workqueue.TypedRateLimitingInterface[key], ca cache.Cache, s *syncer, log zerolog.Logger) bool {
	k, shutdown := q.Get()
	if shutdown {
		return false
	}
	defer q.Done(k)
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(k.GVK)
	err := ca.Get(ctx, client.ObjectKey{Namespace: k.Namespace, Name: k.Name}, u)
	if apierrors.IsNotFound(err) {
		u, err = nil, nil
	}
	if err == nil {
		err = s.sync(ctx, flux.Ref{Kind: k.GVK.Kind, Namespace: k.Namespace, Name: k.Name}, u, time.Now())
	}
	if err != nil {
		if ctx.Err() == nil {
			log.Warn().Err(err).Str("kind", k.GVK.Kind).Str("namespace", k.Namespace).Str("name", k.Name).Msg("sync failed; retrying")
		}
		q.AddRateLimited(k)
		return true
	}
	q.Forget(k)
	return true
}

// servedKinds returns the managed Flux kinds the cluster serves; a cluster without the image
// automation CRDs, say, is watched for the rest.
func servedKinds(c *cluster.Cluster) ([]schema.GroupVersionKind, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(c.Config)
	if err != nil {
		return nil, fmt.Errorf("discovery for cluster %s: %w", c.Name, err)
	}
	var out []schema.GroupVersionKind
	served := map[string]map[string]bool{}
	for _, gvk := range flux.GVKs() {
		gv := gvk.GroupVersion().String()
		kinds, ok := served[gv]
		if !ok {
			kinds = map[string]bool{}
			list, err := dc.ServerResourcesForGroupVersion(gv)
			switch {
			case apierrors.IsNotFound(err):
			case err != nil:
				return nil, fmt.Errorf("discover %s in cluster %s: %w", gv, c.Name, err)
			default:
				for _, r := range list.APIResources {
					kinds[r.Kind] = true
				}
			}
			served[gv] = kinds
		}
		if kinds[gvk.Kind] {
			out = append(out, gvk)
		}
	}
	if len(out) == 0 {
		return nil, errNoFluxKinds
	}
	return out, nil
}
