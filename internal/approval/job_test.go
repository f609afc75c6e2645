package approval

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"
)

type optsArgs struct {
	ID int64 `json:"id"`
}

func (optsArgs) Kind() string { return "opts_test" }
func (optsArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: "git", MaxAttempts: 7, Tags: []string{"deploy"},
		UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{rivertype.JobStateAvailable}}}
}

func TestHeldJobKeepsItsOptions(t *testing.T) {
	tests := []struct {
		name string
		opts *river.InsertOpts
		want river.InsertOpts
	}{
		{"the kind's options", nil, river.InsertOpts{Queue: "git", MaxAttempts: 7, Tags: []string{"deploy"},
			UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{rivertype.JobStateAvailable}}}},
		{"the caller's override field by field", &river.InsertOpts{Priority: 2, Queue: "events", Metadata: []byte(`{"k":"v"}`),
			UniqueOpts: river.UniqueOpts{ByPeriod: time.Hour}},
			river.InsertOpts{Queue: "events", Priority: 2, MaxAttempts: 7, Tags: []string{"deploy"}, Metadata: []byte(`{"k":"v"}`),
				UniqueOpts: river.UniqueOpts{ByPeriod: time.Hour}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind, args, opts, err := encodeJob(optsArgs{ID: 42}, tt.opts)
			require.NoError(t, err)
			require.Equal(t, "opts_test", kind)
			require.JSONEq(t, `{"id": 42}`, string(args))
			var stored jobOpts
			require.NoError(t, json.Unmarshal(opts, &stored))
			got := stored.insertOpts()
			if tt.want.Metadata != nil {
				require.JSONEq(t, string(tt.want.Metadata), string(got.Metadata))
				got.Metadata, tt.want.Metadata = nil, nil
			}
			require.Equal(t, tt.want, *got)

			held := heldArgs{kind: kind, args: args}
			raw, err := json.Marshal(held)
			require.NoError(t, err)
			require.JSONEq(t, `{"id": 42}`, string(raw))
			require.Equal(t, "opts_test", held.Kind())
		})
	}
}
