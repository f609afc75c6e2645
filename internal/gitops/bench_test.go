package gitops

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkApply measures one deploy on a warm cache: check the remote
// head (fetching if it moved), commit a one-file change, push.
func BenchmarkApply(b *testing.B) {
	srv := newServer(b)
	seed(b, srv.url("bench"), map[string]string{"README.md": "bench\n"})
	w := newTestWriter(b)
	repo := repoAt(srv.url("bench"))
	ctx := context.Background()
	apply := func(i int) {
		_, err := w.Apply(ctx, repo, []Change{{Path: "apps/api/deploy.yaml", Content: fmt.Appendf(nil, "replicas: %d\n", i)}}, testCI)
		if err != nil {
			b.Fatal(err)
		}
	}
	apply(-1) // fill the cache
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		apply(i)
	}
}

// BenchmarkGitCLI does the same deploy with the git CLI on a warm clone:
// pull --ff-only, write the file, commit, push.
func BenchmarkGitCLI(b *testing.B) {
	srv := newServer(b)
	work := seed(b, srv.url("bench"), map[string]string{"README.md": "bench\n"})
	url := srv.url("bench")
	file := filepath.Join(work, "apps/api/deploy.yaml")
	deploy := func(i int) {
		gitCLI(b, work, "pull", "-q", "--ff-only", url, "main")
		writeFile(b, file, string(Mark(fmt.Appendf(nil, "replicas: %d\n", i))))
		gitCLI(b, work, "add", "apps/api/deploy.yaml")
		gitCLI(b, work, "commit", "-q", "-m", testCI.Subject)
		gitCLI(b, work, "push", "-q", url, "main")
	}
	deploy(-1)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		deploy(i)
	}
}
