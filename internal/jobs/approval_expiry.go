package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/fluxbridge/fluxbridge/internal/approval"
	"github.com/fluxbridge/fluxbridge/internal/audit"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// expiryBatch bounds the requests one transaction expires.
const expiryBatch = 100

// ApprovalExpiryInterval is how often the worker expires overdue approval requests. Between
// runs an overdue request already reads as expired and cannot be approved.
const ApprovalExpiryInterval = time.Minute

// ApprovalExpiryArgs asks the worker to expire the approval requests whose time is up.
type ApprovalExpiryArgs struct{}

// Kind implements river.JobArgs.
func (ApprovalExpiryArgs) Kind() string { return "approval_expiry" }

// ApprovalExpiryWorker marks overdue requests expired, settles their targets (a deployment
// becomes cancelled) and writes one audit row per request.
type ApprovalExpiryWorker struct {
	river.WorkerDefaults[ApprovalExpiryArgs]
	Store *store.Store
}

// Work implements river.Worker.
func (w *ApprovalExpiryWorker) Work(ctx context.Context, _ *river.Job[ApprovalExpiryArgs]) error {
	svc := approval.New(w.Store, nil)
	for {
		var n int
		err := w.Store.WithTx(ctx, func(tx pgx.Tx) error {
			due, err := svc.ExpireDue(ctx, tx, expiryBatch)
			n = len(due)
			for _, r := range due {
				details, err := audit.Details(nil, nil, map[string]any{"target_type": r.TargetType, "target_id": r.TargetID, "action": r.Action})
				if err != nil {
					return err
				}
				if _, err := w.Store.InsertAudit(ctx, tx, store.AuditEntry{
					ActorType: store.ActorSystem, ActorName: "fluxbridge", Action: "approval.expire",
					TargetType: "approval_request", TargetID: fmt.Sprint(r.ID), ProjectID: &r.ProjectID,
					EnvironmentID: r.EnvironmentID, Message: r.Reason, Details: details,
				}); err != nil {
					return err
				}
			}
			return err
		})
		if err != nil || n < expiryBatch {
			return err
		}
	}
}

// PeriodicJobs returns the jobs a worker process schedules itself.
func PeriodicJobs() []*river.PeriodicJob {
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(ApprovalExpiryInterval),
			func() (river.JobArgs, *river.InsertOpts) { return ApprovalExpiryArgs{}, nil },
			&river.PeriodicJobOpts{RunOnStart: true}),
		river.NewPeriodicJob(river.PeriodicInterval(AlertRewireInterval),
			func() (river.JobArgs, *river.InsertOpts) { return WireAlertsArgs{}, nil },
			&river.PeriodicJobOpts{RunOnStart: true}),
		river.NewPeriodicJob(river.PeriodicInterval(FeedPruneInterval),
			func() (river.JobArgs, *river.InsertOpts) { return FeedPruneArgs{}, nil }, nil),
		river.NewPeriodicJob(river.PeriodicInterval(RetentionInterval),
			func() (river.JobArgs, *river.InsertOpts) { return RetentionArgs{}, nil }, nil),
	}
}
