package jobs_test

import (
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/jobs"
)

// TestJobTimeoutsBelowRescue: River retries a job still marked running after
// RescueStuckJobsAfter, so every worker's timeout must end before it, or a slow live job (a
// push) would run twice. River's default timeout covers the workers that set none.
func TestJobTimeoutsBelowRescue(t *testing.T) {
	timeouts := map[string]time.Duration{
		"commit_push":           (&jobs.CommitPushWorker{}).Timeout(nil),
		"rollback":              (&jobs.RollbackWorker{}).Timeout(nil),
		"flux_event":            (&jobs.FluxEventWorker{}).Timeout(nil),
		"apply_resource":        (&jobs.ApplyResourceWorker{}).Timeout(nil),
		"delete_resource":       (&jobs.DeleteResourceWorker{}).Timeout(nil),
		"mark_resource":         (&jobs.MarkResourceWorker{}).Timeout(nil),
		"reconcile_resource":    (&jobs.ReconcileResourceWorker{}).Timeout(nil),
		"bootstrap_environment": (&jobs.BootstrapEnvironmentWorker{}).Timeout(nil),
		"environment_config":    (&jobs.EnvironmentConfigWorker{}).Timeout(nil),
		"manual_deploy":         (&jobs.ManualDeployWorker{}).Timeout(nil),
		"wire_alerts":           (&jobs.WireAlertsWorker{}).Timeout(nil),
		"river default":         river.JobTimeoutDefault,
	}
	for name, d := range timeouts {
		require.LessOrEqual(t, d, jobs.MaxJobTimeout, name)
	}
	require.Greater(t, jobs.RescueStuckJobsAfter, jobs.MaxJobTimeout)
	require.Less(t, jobs.RescueStuckJobsAfter, time.Hour, "sooner than River's default")

	workers := 0
	for _, q := range jobs.Queues() {
		workers += q.MaxWorkers
	}
	require.Greater(t, jobs.PoolSize(), workers, "a connection for every River worker and River's own")
}
