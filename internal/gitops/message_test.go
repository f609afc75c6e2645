package gitops

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCommitMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ci   CommitInfo
		want string
		err  bool
	}{
		{"all parts", CommitInfo{Subject: "Deploy", Body: "Why.\n", Trailers: [][2]string{{"A", "1"}, {"B-C", "2"}}}, "Deploy\n\nWhy.\n\nA: 1\nB-C: 2\n", false},
		{"subject only", CommitInfo{Subject: "  Deploy  "}, "Deploy\n", false},
		{"no body", CommitInfo{Subject: "Deploy", Trailers: [][2]string{{"A", "1"}}}, "Deploy\n\nA: 1\n", false},
		{"multi-line subject folded", CommitInfo{Subject: "Deploy\nnow"}, "Deploy now\n", false},
		{"multi-line trailer value folded", CommitInfo{Subject: "D", Trailers: [][2]string{{"A", "x\ny"}}}, "D\n\nA: x y\n", false},
		{"empty subject", CommitInfo{Subject: " \n"}, "", true},
		{"trailer key with space", CommitInfo{Subject: "D", Trailers: [][2]string{{"Bad Key", "x"}}}, "", true},
		{"trailer key with colon", CommitInfo{Subject: "D", Trailers: [][2]string{{"A:", "x"}}}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.ci.message()
			if tt.err {
				require.ErrorIs(t, err, ErrInvalidArgument)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}
