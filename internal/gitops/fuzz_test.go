package gitops

import (
	"path"
	"strings"
	"testing"
)

// FuzzCheckPath: a path CheckPath accepts is clean, relative, inside the repository and never
// under .git, whatever the input.
func FuzzCheckPath(f *testing.F) {
	for _, p := range []string{"apps/api/deploy.yaml", "../etc/passwd", "/abs", "a//b", ".git/config", "a/.GiT/x", "a\\b", "a/./b", "ok"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if CheckPath(p) != nil {
			return
		}
		if path.Clean(p) != p || path.IsAbs(p) || p == "." || strings.HasPrefix(p, "../") || p == ".." {
			t.Fatalf("accepted %q", p)
		}
		for _, seg := range strings.Split(p, "/") {
			if seg == "" || seg == "." || seg == ".." || strings.EqualFold(seg, ".git") || strings.ContainsAny(seg, "\\\x00") {
				t.Fatalf("accepted %q (segment %q)", p, seg)
			}
		}
	})
}
