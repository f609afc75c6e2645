package fluxspec

import (
	"slices"
	"strings"
)

// Graph is the dependsOn graph of one kind in one cluster: each object and the objects it
// waits for.
type Graph map[Ref][]Ref

// CheckDependencies checks the dependsOn of obj against the graph of its cluster: every
// dependency must be a known object (one fluxbridge manages), and obj must not end up waiting
// for itself. It returns a *FieldError on "config.dependsOn" naming the unknown object or the
// cycle, e.g. "cycle: Kustomization/apps/a -> Kustomization/apps/b -> Kustomization/apps/a".
// The graph is not changed.
func CheckDependencies(g Graph, obj Ref, deps []Ref) error {
	for _, d := range deps {
		if d == obj {
			return fieldErr("config.dependsOn", "%s cannot depend on itself", obj)
		}
		if _, ok := g[d]; !ok {
			return fieldErr("config.dependsOn", "unknown %s %s/%s: fluxbridge manages no such object in this cluster", d.Kind, d.Namespace, d.Name)
		}
	}
	next := func(r Ref) []Ref {
		if r == obj {
			return deps
		}
		return g[r]
	}
	// Depth-first search from obj; a path that comes back to obj is the cycle.
	visited := map[Ref]bool{}
	var path []Ref
	var walk func(r Ref) []Ref
	walk = func(r Ref) []Ref {
		path = append(path, r)
		defer func() { path = path[:len(path)-1] }()
		for _, d := range next(r) {
			if d == obj {
				return append(slices.Clone(path), obj)
			}
			if visited[d] {
				continue
			}
			visited[d] = true
			if c := walk(d); c != nil {
				return c
			}
		}
		return nil
	}
	if cycle := walk(obj); cycle != nil {
		names := make([]string, len(cycle))
		for i, r := range cycle {
			names[i] = r.String()
		}
		return fieldErr("config.dependsOn", "cycle: %s", strings.Join(names, " -> "))
	}
	return nil
}
