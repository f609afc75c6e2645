package audit

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestIsSecretKey(t *testing.T) {
	for _, k := range []string{"password", "db_password", "webhookToken", "token", "client-secret", "secretRef",
		"identity", "identity.pub", "privateKey", "private_key", "apiKey", "token_hash", "Authorization", "credentials"} {
		require.True(t, IsSecretKey(k), k)
	}
	for _, k := range []string{"token_id", "tokenIDs", "name", "prefix", "credential_ref", "requiredApprovals", "role"} {
		require.False(t, IsSecretKey(k), k)
	}
}

func TestDetails(t *testing.T) {
	type token struct {
		ID     int64      `json:"id"`
		Name   string     `json:"name"`
		Hash   []byte     `json:"hash"`
		Revoke *time.Time `json:"revoked_at"`
	}
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

	t.Run("creation shows everything, secrets redacted", func(t *testing.T) {
		raw, err := Details(nil, token{ID: 7, Name: "ci", Hash: []byte("0123456789abcdef")}, map[string]any{"token_id": 7})
		require.NoError(t, err)
		require.JSONEq(t, `{"before": null, "after": {"id": 7, "name": "ci", "hash": "[redacted]", "revoked_at": null}, "token_id": 7}`, string(raw))
	})
	t.Run("update shows only what changed", func(t *testing.T) {
		raw, err := Details(token{ID: 7, Name: "ci"}, token{ID: 7, Name: "ci", Revoke: &now}, nil)
		require.NoError(t, err)
		require.JSONEq(t, `{"before": {"revoked_at": null}, "after": {"revoked_at": "2025-01-02T03:04:05Z"}}`, string(raw))
	})
	t.Run("nested objects diff by key, a changed secret shows as changed", func(t *testing.T) {
		before := json.RawMessage(`{"branch": "main", "auth": {"password": "old-pw", "user": "git"}, "gone": 1}`)
		after := json.RawMessage(`{"branch": "main", "auth": {"password": "new-pw", "user": "git"}, "added": {"webhookSecret": "s3"}}`)
		raw, err := Details(before, after, nil)
		require.NoError(t, err)
		require.JSONEq(t, `{"before": {"auth": {"password": "[redacted]"}, "gone": 1},
			"after": {"auth": {"password": "[redacted]"}, "added": {"webhookSecret": "[redacted]"}}}`, string(raw))
		require.NotContains(t, string(raw), "pw")
	})
	t.Run("a token under an innocent key is redacted", func(t *testing.T) {
		raw, err := Details(nil, nil, map[string]any{"value": "fxb_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "list": []any{"fxb_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"}})
		require.NoError(t, err)
		require.JSONEq(t, `{"value": "[redacted]", "list": ["[redacted]"]}`, string(raw))
	})
	t.Run("large numbers survive", func(t *testing.T) {
		raw, err := Details(nil, map[string]int64{"id": 9007199254740993}, nil)
		require.NoError(t, err)
		require.Contains(t, string(raw), "9007199254740993")
	})
}
