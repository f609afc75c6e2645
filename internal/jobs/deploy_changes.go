package jobs

import (
	"path"

	"github.com/fluxbridge/fluxbridge/internal/gitops"
	"github.com/fluxbridge/fluxbridge/internal/manifest"
)

// AppChanges turns an app's rendered files into the changes that make dir hold exactly them:
// a write per file, and a delete of every other file the renderer may write (a web-app's
// ingress when it becomes a microservice); deleting a missing file is a no-op.
func AppChanges(dir string, files []manifest.File) []gitops.Change {
	written := map[string]bool{}
	var out []gitops.Change
	for _, f := range files {
		out = append(out, gitops.Change{Path: path.Join(dir, f.Name), Content: f.Content})
		written[f.Name] = true
	}
	for _, name := range manifest.FileNames() {
		if !written[name] {
			out = append(out, gitops.Change{Path: path.Join(dir, name), Delete: true})
		}
	}
	return out
}

// DeployChanges are the changes of a deploy of an app whose directory is appDir, in
// namespace: AppChanges, and the Namespace file of the namespace in the environment's
// directory (appDir's parent), created when it is missing. Every app of the namespace writes
// the same file, an existing one (edited by a person, say) is kept, and nothing ever deletes
// it: removing an app leaves its namespace to the others.
func DeployChanges(appDir, namespace string, files []manifest.File) ([]gitops.Change, error) {
	ns, err := manifest.RenderNamespace(namespace)
	if err != nil {
		return nil, err
	}
	envDir := path.Dir(appDir)
	if envDir == "." {
		envDir = ""
	}
	changes := AppChanges(appDir, files)
	return append(changes, gitops.Change{Path: manifest.NamespacePath(envDir, namespace), Content: ns, Create: true}), nil
}
