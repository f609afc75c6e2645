// Package fluxcontrol holds the end-to-end tests of fluxbridge's control of Flux on real
// clusters: the resources API, the apply, delete and reconcile jobs, the watch and the views,
// run together against two real kube-apiservers (internal/kubetest) and a real Postgres
// (internal/storetest), with the test writing the status a Flux controller would.
//
// It has no code of its own: the behaviour lives in handlers, jobs, watch, flux and fluxspec.
package fluxcontrol
