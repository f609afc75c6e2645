package secrets

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const testSecret = "hunter2-token-value"

func TestFileStoreRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "secrets")
	s, err := NewFileStore(dir)
	require.NoError(t, err)
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())

	ref := NewRef("repo-webapp")
	require.True(t, ValidRef(ref), ref)
	_, err = s.Get(ctx, ref)
	require.ErrorIs(t, err, ErrNotFound)

	require.NoError(t, s.Put(ctx, ref, Data{"username": []byte("bot"), "password": []byte(testSecret)}))
	fi, err = os.Stat(filepath.Join(dir, ref+".json"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	got, err := s.Get(ctx, ref)
	require.NoError(t, err)
	require.Equal(t, testSecret, string(got["password"]))

	// Rotation replaces the whole secret.
	require.NoError(t, s.Put(ctx, ref, Data{"bearerToken": []byte("new-token-value")}))
	got, err = s.Get(ctx, ref)
	require.NoError(t, err)
	require.Equal(t, Data{"bearerToken": []byte("new-token-value")}, got)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary files left behind")

	require.NoError(t, s.Delete(ctx, ref))
	require.NoError(t, s.Delete(ctx, ref), "deleting twice is fine")
	_, err = s.Get(ctx, ref)
	require.ErrorIs(t, err, ErrNotFound)
}

func TestFileStoreRefusesBadRefs(t *testing.T) {
	t.Parallel()
	s, err := NewFileStore(t.TempDir() + "/s")
	require.NoError(t, err)
	for _, ref := range []string{"", "../x", "a/b", "/etc/passwd", ".hidden", "A", "a..b", strings.Repeat("a", 254)} {
		require.ErrorIs(t, s.Put(context.Background(), ref, Data{}), ErrInvalidRef, ref)
		_, err := s.Get(context.Background(), ref)
		require.ErrorIs(t, err, ErrInvalidRef, ref)
	}
}

func TestFileStoreRefusesOpenDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755))
	_, err := NewFileStore(dir)
	require.ErrorContains(t, err, "chmod 700")
}

func TestDataNeverPrinted(t *testing.T) {
	t.Parallel()
	d := Data{"password": []byte(testSecret)}
	js, err := json.Marshal(struct{ D Data }{d})
	require.NoError(t, err)
	for _, s := range []string{fmt.Sprint(d), fmt.Sprintf("%v %+v %#v %s %x %q", d, d, d, d, d, d), string(js)} {
		require.NotContains(t, s, testSecret)
	}
}
