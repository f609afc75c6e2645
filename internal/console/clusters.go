package console

import "net/http"

// clusters lists the configured clusters: whether fluxbridge reaches each, its Kubernetes
// version, and webhook-only ones (no kubeconfig) as such.
func (c *Console) clusters(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "clusters", c.core.Clusters(r.Context()))
}
