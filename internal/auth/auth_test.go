package auth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fluxbridge/fluxbridge/internal/auth"
	"github.com/fluxbridge/fluxbridge/internal/store"
	"github.com/fluxbridge/fluxbridge/internal/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

func TestNewToken(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		tok, hash, err := auth.NewToken()
		require.NoError(t, err)
		require.True(t, auth.IsToken(tok), tok)
		require.Len(t, hash, 32)
		require.Equal(t, hash, auth.HashToken(tok))
		require.False(t, seen[tok])
		seen[tok] = true
		require.Equal(t, tok[:12], auth.DisplayPrefix(tok))
	}
	for _, s := range []string{"", "fxb_", "fxb_short", "ghp_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "fxb_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA!"} {
		require.False(t, auth.IsToken(s), s)
	}
}

type fixed struct {
	p   *auth.Principal
	err error
}

func (f fixed) Authenticate(*http.Request) (*auth.Principal, error) { return f.p, f.err }

func TestChain(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	alice := &auth.Principal{Username: "alice"}
	bad := &auth.CredentialError{Reason: "expired"}

	p, err := auth.Chain{fixed{err: auth.ErrNoCredentials}, fixed{p: alice}}.Authenticate(r)
	require.NoError(t, err)
	require.Equal(t, alice, p, "the next authenticator gets its turn")

	_, err = auth.Chain{fixed{err: bad}, fixed{p: alice}}.Authenticate(r)
	require.ErrorIs(t, err, bad, "invalid credentials are not rescued by a later authenticator")

	_, err = auth.Chain{}.Authenticate(r)
	require.ErrorIs(t, err, auth.ErrNoCredentials)
}

func TestTokenAuthenticator(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := storetest.NewDB(t)
	st := store.New(pool)
	u, err := st.CreateUser(ctx, pool, store.User{Username: "bob"})
	require.NoError(t, err)
	issue := func(expires *time.Time) (string, *store.APIToken) {
		tok, hash, err := auth.NewToken()
		require.NoError(t, err)
		row, err := st.CreateToken(ctx, pool, store.NewAPIToken{UserID: u.ID, Name: "t", Hash: hash, Prefix: auth.DisplayPrefix(tok), ExpiresAt: expires})
		require.NoError(t, err)
		return tok, row
	}
	a := auth.NewTokenAuthenticator(st)
	call := func(header string) (*auth.Principal, error) {
		r := httptest.NewRequest(http.MethodGet, "/api/v1/me", nil)
		if header != "" {
			r.Header.Set("Authorization", header)
		}
		return a.Authenticate(r)
	}

	good, row := issue(nil)
	p, err := call("Bearer " + good)
	require.NoError(t, err)
	require.Equal(t, auth.Principal{UserID: u.ID, Username: "bob", TokenID: row.ID, Method: auth.MethodToken}, *p)
	_, err = call("bearer  " + good)
	require.NoError(t, err, "the scheme is case-insensitive")
	var used *time.Time
	require.NoError(t, pool.QueryRow(ctx, `SELECT last_used_at FROM api_tokens WHERE id = $1`, row.ID).Scan(&used))
	require.NotNil(t, used, "last use is recorded")

	for _, h := range []string{"", "Basic Ym9iOnB3", "Bearer", "Bearer not-ours"} {
		_, err := call(h)
		require.ErrorIs(t, err, auth.ErrNoCredentials, h)
	}

	unknown, _, _ := auth.NewToken()
	soon := time.Now().Add(time.Minute)
	expiring, expRow := issue(&soon)
	revoked, revRow := issue(nil)
	_, err = st.RevokeToken(ctx, pool, revRow.ID)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `UPDATE api_tokens SET created_at = now() - interval '2 hours', expires_at = now() - interval '1 hour' WHERE id = $1`, expRow.ID)
	require.NoError(t, err)

	cases := map[string]string{unknown: "invalid API token", expiring: "expired at", revoked: "was revoked at"}
	for tok, want := range cases {
		_, err := call("Bearer " + tok)
		var ce *auth.CredentialError
		require.ErrorAs(t, err, &ce)
		require.Contains(t, ce.Reason, want)
		require.NotContains(t, ce.Reason, tok, "a refusal never echoes the token")
	}

	now := time.Now()
	u.DisabledAt = &now
	_, err = st.UpdateUser(ctx, pool, *u)
	require.NoError(t, err)
	_, err = call("Bearer " + good)
	var ce *auth.CredentialError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, "user bob is disabled", ce.Reason)
}

func TestBootstrap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := storetest.NewDB(t)
	st := store.New(pool)
	file := filepath.Join(t.TempDir(), "sub", "admin-token")

	res, err := auth.Bootstrap(ctx, st, file)
	require.NoError(t, err)
	require.Equal(t, auth.BootstrapResult{Created: true, Generated: true, Username: "admin"}, res)
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	fi, err := os.Stat(file)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	token := string(b[:len(b)-1])

	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	p, err := auth.NewTokenAuthenticator(st).Authenticate(r)
	require.NoError(t, err)
	require.True(t, p.Admin)
	require.Equal(t, "admin", p.Username)

	res, err = auth.Bootstrap(ctx, st, file)
	require.NoError(t, err)
	require.False(t, res.Created, "an admin exists: nothing to do")

	// The admin got disabled and its token revoked: the next start makes the file work again.
	_, err = pool.Exec(ctx, `UPDATE users SET disabled_at = now(); UPDATE api_tokens SET revoked_at = now()`)
	require.NoError(t, err)
	res, err = auth.Bootstrap(ctx, st, file)
	require.NoError(t, err)
	require.Equal(t, auth.BootstrapResult{Created: true, Generated: false, Username: "admin"}, res)
	_, err = auth.NewTokenAuthenticator(st).Authenticate(r)
	require.NoError(t, err)

	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM audit_logs WHERE action = 'user.bootstrap_admin' AND details::text NOT LIKE '%fxb_%'`).Scan(&n))
	require.Equal(t, 2, n, "each bootstrap is audited, without the token")

	require.NoError(t, os.WriteFile(file, []byte("hunter2\n"), 0o600))
	_, err = pool.Exec(ctx, `UPDATE users SET disabled_at = now()`)
	require.NoError(t, err)
	_, err = auth.Bootstrap(ctx, st, file)
	require.ErrorContains(t, err, "does not hold a fluxbridge token")
	require.False(t, errors.Is(err, auth.ErrNoCredentials))
}
