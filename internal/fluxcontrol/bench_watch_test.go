package fluxcontrol_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	"github.com/fluxcd/pkg/apis/meta"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/fluxbridge/fluxbridge/internal/cluster"
	"github.com/fluxbridge/fluxbridge/internal/kubetest"
	"github.com/fluxbridge/fluxbridge/internal/store"
	"github.com/fluxbridge/fluxbridge/internal/storetest"
	"github.com/fluxbridge/fluxbridge/internal/watch"
)

// BenchmarkWatch10000Objects is #20's watch target: 10,000 managed Kustomizations over the two
// clusters (5,000 each, on the real apiservers), watched from nothing. It reports the initial
// sync (every row written from the watch), the status → database latency of 200 status writes
// made afterwards, as kustomize-controller would make them, and the process's RSS (which holds
// the watch's caches; the apiservers are processes of their own). WATCH_BENCH_OBJECTS changes
// the count.
func BenchmarkWatch10000Objects(b *testing.B) {
	perCluster := 5000
	if v := os.Getenv("WATCH_BENCH_OBJECTS"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(b, err)
		perCluster = n / 2
	}
	ctx := context.Background()
	pool := storetest.NewDB(b)
	st := store.New(pool)
	proj, err := st.CreateProject(ctx, pool, store.Project{Slug: "bench", Name: "Bench"})
	require.NoError(b, err)
	ns := fmt.Sprintf("bw%d", time.Now().UnixNano()%1e6)
	envs := map[string]*kubetest.Env{"east": east, "west": west}
	for name, env := range envs {
		e, err := st.CreateEnvironment(ctx, pool, store.Environment{ProjectID: proj.ID, Name: name, Kind: "dev", Cluster: name,
			GitopsConfig: json.RawMessage(`{"namespaces":["` + ns + `"]}`)})
		require.NoError(b, err)
		_, err = pool.Exec(ctx, `INSERT INTO gitops_resources (project_id, environment_id, cluster, kind, namespace, name, config)
			SELECT $1, $2, $3, 'Kustomization', $4, 'k-' || i, '{}' FROM generate_series(1, $5) i`, proj.ID, e.ID, name, ns, perCluster)
		require.NoError(b, err)
		require.NoError(b, env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	}
	createStart := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for name, env := range envs {
		for w := range 8 {
			wg.Go(func() {
				for i := w + 1; i <= perCluster; i += 8 {
					k := &kustomizev1.Kustomization{
						ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "k-" + strconv.Itoa(i)},
						Spec: kustomizev1.KustomizationSpec{Interval: metav1.Duration{Duration: 10 * time.Minute}, Path: "./" + name,
							SourceRef: kustomizev1.CrossNamespaceSourceReference{Kind: "GitRepository", Name: "fleet"}},
					}
					if err := env.Client.Create(ctx, k); err != nil {
						errs <- err
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(b, err)
	}
	created := time.Since(createStart)

	reg, err := cluster.NewRegistry([]cluster.Spec{
		{Name: "east", Kubeconfig: east.KubeconfigPath(), FluxNamespace: "flux-system"},
		{Name: "west", Kubeconfig: west.KubeconfigPath(), FluxNamespace: "flux-system"},
	}, east.Scheme)
	require.NoError(b, err)
	b.ResetTimer()
	start := time.Now()
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		watch.Run(wctx, watch.Deps{Store: st, LockConn: pool.Config().ConnConfig.Copy(), Clusters: reg.Managed(), Logger: zerolog.Nop()})
	}()
	defer func() { cancel(); <-done }()
	total := 2 * perCluster
	count := func(q string, args ...any) int {
		var n int
		require.NoError(b, pool.QueryRow(ctx, q, args...).Scan(&n))
		return n
	}
	require.Eventually(b, func() bool {
		return count(`SELECT count(*) FROM gitops_resources WHERE project_id = $1 AND status_observed_at IS NOT NULL`, proj.ID) == total
	}, 5*time.Minute, 100*time.Millisecond)
	initial := time.Since(start)

	// 200 status writes, as kustomize-controller makes them; the database is polled until
	// each shows.
	const writes = 200
	wrote := make(map[string]time.Time, writes)
	var mu sync.Mutex
	for i := range writes {
		name, env := "east", east
		if i%2 == 1 {
			name, env = "west", west
		}
		key := client.ObjectKey{Namespace: ns, Name: "k-" + strconv.Itoa(i*perCluster/writes+1)}
		msg := fmt.Sprintf("bench-%s-%s", name, key.Name)
		wg.Go(func() {
			var k kustomizev1.Kustomization
			require.NoError(b, env.Client.Get(ctx, key, &k))
			k.Status.ObservedGeneration = k.Generation
			k.Status.Conditions = []metav1.Condition{{Type: meta.ReadyCondition, Status: metav1.ConditionTrue, Reason: meta.ReconciliationSucceededReason,
				Message: msg, ObservedGeneration: k.Generation, LastTransitionTime: metav1.Now()}}
			mu.Lock()
			wrote[msg] = time.Now()
			mu.Unlock()
			require.NoError(b, env.Client.Status().Update(ctx, &k))
		})
	}
	lat := make([]time.Duration, 0, writes)
	seen := map[string]bool{}
	deadline := time.Now().Add(time.Minute)
	for len(seen) < writes && time.Now().Before(deadline) {
		rows, err := pool.Query(ctx, `SELECT status_message FROM gitops_resources WHERE project_id = $1 AND status_message LIKE 'bench-%'`, proj.ID)
		require.NoError(b, err)
		now := time.Now()
		for rows.Next() {
			var m string
			require.NoError(b, rows.Scan(&m))
			mu.Lock()
			at, ok := wrote[m]
			mu.Unlock()
			if ok && !seen[m] {
				seen[m] = true
				lat = append(lat, now.Sub(at))
			}
		}
		require.NoError(b, rows.Err())
		time.Sleep(5 * time.Millisecond)
	}
	wg.Wait()
	require.Len(b, lat, writes, "every status write reached the database")
	slices.Sort(lat)
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	rss := rssMB()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(initial.Seconds(), "sync-s")
	b.ReportMetric(float64(p99.Milliseconds()), "p99-ms")
	b.ReportMetric(rss, "rss-MB")
	fmt.Printf("watch of %d Kustomizations over 2 clusters (created in %s): initial sync %s | status -> database p50 %s p99 %s (%d writes) | RSS %.0f MB (Go heap in use %.0f MB)\n",
		total, created.Round(time.Second), initial.Round(10*time.Millisecond), p50.Round(time.Millisecond), p99.Round(time.Millisecond), writes,
		rss, float64(ms.HeapInuse)/(1<<20))
}

// rssMB is this process's resident set in MiB, from /proc/self/status.
func rssMB() float64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}
