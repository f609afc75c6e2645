package feed_test

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/feed"
)

// BenchmarkSSEStreams500 opens 500 SSE streams on one hub over loopback, fans one event out to
// all of them and reports the extra resident memory of the process (both ends of every stream:
// the server's connections and handlers, and the test's clients) and the time to fan out.
//
//	go test -run '^$' -bench SSEStreams500 -benchtime 1x ./internal/feed/
func BenchmarkSSEStreams500(b *testing.B) {
	const streams = 500
	f := newFixture(b)
	hub := startHub(b, f.pool)
	st := &feed.Streamer{Hub: hub, DB: f.pool}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = st.Serve(w, r, nil, nil)
	}))
	defer srv.Close()
	require.True(b, strings.HasPrefix(srv.URL, "http://127.0.0.1:"))
	tr := &http.Transport{MaxIdleConnsPerHost: streams, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}

	var maxRSS, maxHeap, maxFanout float64
	for b.Loop() {
		rss0, heap0 := memory(b)
		ctx, cancel := context.WithCancel(context.Background())
		var started, got, ended sync.WaitGroup
		sem := make(chan struct{}, 32)
		for range streams {
			started.Add(1)
			got.Add(1)
			ended.Add(1)
			sem <- struct{}{}
			go func() {
				defer ended.Done()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
				resp, err := client.Do(req)
				<-sem
				if err != nil {
					b.Error(err)
					started.Done()
					got.Done()
					return
				}
				defer resp.Body.Close()
				br := bufio.NewReaderSize(resp.Body, 512)
				first, seen := true, false
				for {
					line, err := br.ReadSlice('\n')
					if err != nil {
						if first {
							started.Done()
						}
						if !seen {
							got.Done()
						}
						return
					}
					if first && bytes.HasPrefix(line, []byte("retry: ")) {
						first = false
						started.Done() // subscribed
					}
					if !seen && bytes.HasPrefix(line, []byte("data: ")) {
						seen = true
						got.Done()
					}
				}
			}()
		}
		started.Wait()
		require.Equal(b, streams, hub.Subscribers())
		t0 := time.Now()
		notify(b, f.pool, 0, "to all")
		got.Wait()
		fanout := time.Since(t0)
		rss1, heap1 := memory(b)
		maxRSS = max(maxRSS, (rss1-rss0)/1024)
		maxHeap = max(maxHeap, (heap1-heap0)/(1<<20))
		maxFanout = max(maxFanout, float64(fanout.Microseconds())/1000)
		cancel()
		ended.Wait()
		require.Eventually(b, func() bool { return hub.Subscribers() == 0 }, 10*time.Second, 10*time.Millisecond)
	}
	b.ReportMetric(maxRSS, "MB_rss")
	b.ReportMetric(maxRSS*1024/streams, "KB_rss/stream")
	b.ReportMetric(maxHeap, "MB_heap")
	b.ReportMetric(maxFanout, "ms_fanout")
}

// memory returns the process's resident set in KB (VmRSS) and the heap in use in bytes, after
// returning what it can to the OS.
func memory(b *testing.B) (rssKB, heap float64) {
	b.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	status, err := os.ReadFile("/proc/self/status")
	require.NoError(b, err)
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			require.NoError(b, err)
			return kb, float64(ms.HeapInuse)
		}
	}
	b.Fatal("no VmRSS in /proc/self/status")
	return 0, 0
}
