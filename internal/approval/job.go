package approval

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// heldArgs is a job whose args were stored as JSON while it waited for approval. River takes
// its kind from Kind and its args from MarshalJSON, so the job it inserts carries the same JSON
// value that was held (jsonb may reorder the keys).
type heldArgs struct {
	kind string
	args json.RawMessage
}

// Kind implements river.JobArgs with the held job's kind.
func (a heldArgs) Kind() string { return a.kind }

// MarshalJSON returns the held args unchanged.
func (a heldArgs) MarshalJSON() ([]byte, error) { return a.args, nil }

// jobOpts are the insert options of a held job, stored as JSON in approval_requests.job_opts.
// They are the options the job would have been inserted with at once: its kind's InsertOpts
// overridden by the caller's. A held job runs when it is released, so ScheduledAt and Pending
// are not kept.
type jobOpts struct {
	Queue       string          `json:"queue,omitempty"`
	Priority    int             `json:"priority,omitempty"`
	MaxAttempts int             `json:"max_attempts,omitempty"`
	Tags        []string        `json:"tags,omitempty"`
	Metadata    json.RawMessage `json:"metadata,omitempty"`
	Unique      *uniqueOpts     `json:"unique,omitempty"`
}

type uniqueOpts struct {
	ByArgs      bool                 `json:"by_args,omitempty"`
	ByPeriod    time.Duration        `json:"by_period,omitempty"`
	ByQueue     bool                 `json:"by_queue,omitempty"`
	ByState     []rivertype.JobState `json:"by_state,omitempty"`
	ExcludeKind bool                 `json:"exclude_kind,omitempty"`
}

// effectiveOpts merges the kind's InsertOpts with the caller's, the caller's winning field by
// field, as River does when it inserts.
func effectiveOpts(args river.JobArgs, opts *river.InsertOpts) jobOpts {
	var kind, call river.InsertOpts
	if a, ok := args.(river.JobArgsWithInsertOpts); ok {
		kind = a.InsertOpts()
	}
	if opts != nil {
		call = *opts
	}
	o := jobOpts{
		Queue:       first(call.Queue, kind.Queue),
		Priority:    first(call.Priority, kind.Priority),
		MaxAttempts: first(call.MaxAttempts, kind.MaxAttempts),
		Tags:        kind.Tags,
	}
	if call.Tags != nil {
		o.Tags = call.Tags
	}
	if md := first(string(call.Metadata), string(kind.Metadata)); md != "" {
		o.Metadata = json.RawMessage(md)
	}
	u := kind.UniqueOpts
	if !isZeroUnique(call.UniqueOpts) {
		u = call.UniqueOpts
	}
	if !isZeroUnique(u) {
		o.Unique = &uniqueOpts{ByArgs: u.ByArgs, ByPeriod: u.ByPeriod, ByQueue: u.ByQueue, ByState: u.ByState, ExcludeKind: u.ExcludeKind}
	}
	return o
}

func isZeroUnique(u river.UniqueOpts) bool {
	return !u.ByArgs && u.ByPeriod == 0 && !u.ByQueue && len(u.ByState) == 0 && !u.ExcludeKind
}

func first[T comparable](vs ...T) T {
	var zero T
	for _, v := range vs {
		if v != zero {
			return v
		}
	}
	return zero
}

// insertOpts turns stored options back into River's.
func (o jobOpts) insertOpts() *river.InsertOpts {
	io := &river.InsertOpts{Queue: o.Queue, Priority: o.Priority, MaxAttempts: o.MaxAttempts, Tags: o.Tags, Metadata: o.Metadata}
	if o.Unique != nil {
		io.UniqueOpts = river.UniqueOpts{ByArgs: o.Unique.ByArgs, ByPeriod: o.Unique.ByPeriod, ByQueue: o.Unique.ByQueue,
			ByState: o.Unique.ByState, ExcludeKind: o.Unique.ExcludeKind}
	}
	return io
}

// encodeJob returns the kind, args and options to store for a held job.
func encodeJob(args river.JobArgs, opts *river.InsertOpts) (string, json.RawMessage, json.RawMessage, error) {
	a, err := json.Marshal(args)
	if err != nil {
		return "", nil, nil, fmt.Errorf("encode %s job args: %w", args.Kind(), err)
	}
	o, err := json.Marshal(effectiveOpts(args, opts))
	if err != nil {
		return "", nil, nil, fmt.Errorf("encode %s insert options: %w", args.Kind(), err)
	}
	return args.Kind(), a, o, nil
}
