package handlers_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/handlers"
	"github.com/fluxbridge/fluxbridge/internal/store"
	"github.com/fluxbridge/fluxbridge/internal/storetest"
)

// TestExportWithAHungCluster: an apiserver that accepts connections and never answers costs
// an export one shared timeout, not one per object: the first reads to time out mark the
// cluster down, the other objects are listed with the reason without being asked for, and
// every object is in the answer, in order.
func TestExportWithAHungCluster(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var conns atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			t.Cleanup(func() { _ = c.Close() }) // accepted, never answered
		}
	}()
	t.Cleanup(func() { _ = ln.Close() })
	reg := clustersAt(t, ln.Addr().String(), storetest.Cluster)

	pool := storetest.NewDB(t)
	st := store.New(pool)
	seed := storetest.Seed(t, st, pool)
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	require.NoError(t, err)
	h := handlers.New(handlers.Deps{Store: st, River: rc, Logger: zerolog.Nop(), Clusters: reg})
	srv := httptest.NewServer(h.Routes())
	t.Cleanup(srv.Close)
	b := &testBundle{pool: pool, st: st, seed: seed, h: h, srv: srv}
	_, admin := b.user(t, "exporter", "admin")

	ctx := context.Background()
	for i := range 40 {
		_, err := st.CreateResource(ctx, pool, store.NewResource{ProjectID: seed.Project.ID, EnvironmentID: &seed.Env.ID,
			Cluster: storetest.Cluster, Kind: "GitRepository", Namespace: "flux-system", Name: fmt.Sprintf("extra-%02d", i),
			Config: []byte(`{"url": "https://git.example.com/x.git", "ref": {"branch": "main"}}`)})
		require.NoError(t, err)
	}
	want := b.count(t, "SELECT count(*) FROM gitops_resources WHERE project_id = $1", seed.Project.ID)

	req, err := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/projects/webapp/export", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+admin)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	t.Logf("export of %d objects with the cluster hung: %s", want, time.Since(start).Round(time.Millisecond))
	var body strings.Builder
	_, _ = fmt.Fprint(&body, readAll(t, resp))
	out := body.String()
	require.Equal(t, want, strings.Count(out, "\n---\n")+1, "every object is in the export")
	require.Equal(t, want, strings.Count(out, "in cluster "+storetest.Cluster+":"), "each says why it could not be read")
	require.Less(t, strings.Index(out, "extra-00"), strings.Index(out, "extra-39"), "in order")
	require.LessOrEqual(t, conns.Load(), int64(8+2), "at most one batch of reads reached the hung apiserver")
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	var sb strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			return sb.String()
		}
	}
}
