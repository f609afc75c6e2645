// Package e2e holds fluxbridge's end-to-end suite (`make e2e`): the bidirectional GitOps loop
// on real Flux controllers. Its tests run a real etcd and kube-apiserver (internal/kubetest),
// source-, kustomize- and helm-controller as host processes built from their Go modules
// (bin/flux), a loopback Git server over HTTPS with basic auth, a loopback Helm repository, a
// throwaway Postgres, and fluxbridge's receiver and worker in-process. notification-controller
// cannot be built here; the ncrelay package stands in for it.
//
// The package has only tests. Outside make, missing assets skip the suite with a message;
// with FLUXBRIDGE_E2E_REQUIRE=1 (set by `make e2e` and `make test`) they fail it.
package e2e
