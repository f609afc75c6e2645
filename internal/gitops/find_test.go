package gitops

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFindTrailer: the newest commit with a trailer is found within the depth, from a fresh
// cache too; a body line that only looks like a trailer does not count.
func TestFindTrailer(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	seed(t, srv.url("app"), nil)
	w := newTestWriter(t)
	repo := repoAt(srv.url("app"))
	ctx := context.Background()
	ci := testCI
	ci.Trailers = [][2]string{{"Deployment-Id", "7"}}
	ci.Body = "Reverts what\nDeployment-Id: 8\ndid."
	mine, err := w.Apply(ctx, repo, []Change{{Path: "a.yaml", Content: []byte("a\n")}}, ci)
	require.NoError(t, err)
	ci.Trailers = [][2]string{{"Deployment-Id", "9"}}
	_, err = w.Apply(ctx, repo, []Change{{Path: "b.yaml", Content: []byte("b\n")}}, ci)
	require.NoError(t, err)

	c, found, err := newTestWriter(t).FindTrailer(ctx, repo, "Deployment-Id", "7", 10)
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, mine.SHA, c.SHA)
	require.Equal(t, testCI.Author, c.Author)
	require.Contains(t, c.Message, "Deployment-Id: 7")

	_, found, err = w.FindTrailer(ctx, repo, "Deployment-Id", "8", 10)
	require.NoError(t, err)
	require.False(t, found, "a body line is not a trailer")
	_, found, err = w.FindTrailer(ctx, repo, "Deployment-Id", "7", 1)
	require.NoError(t, err)
	require.False(t, found, "beyond the depth")
	_, _, err = w.FindTrailer(ctx, repo, "Bad: key", "7", 1)
	require.ErrorIs(t, err, ErrInvalidArgument)
}
