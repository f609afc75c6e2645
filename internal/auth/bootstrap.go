package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/fluxbridge/fluxbridge/internal/store"
)

// BootstrapUsername is the user the bootstrap creates on a fresh install.
const BootstrapUsername = "admin"

// bootstrapLock serialises bootstraps of receiver replicas starting at once.
const bootstrapLock int64 = 0x666c7578_61646d6e // "fluxadmn"

// BootstrapResult tells what Bootstrap did.
type BootstrapResult struct {
	// Created is false when an enabled admin already existed and nothing changed.
	Created bool
	// Generated is true when the token was generated and written to the file, false when it
	// was read from it.
	Generated bool
	Username  string
}

// Bootstrap makes a fresh install usable: when no enabled admin exists, it makes user "admin"
// an admin and gives it the API token in tokenFile, generating one (and writing the file, mode
// 0600) when the file is missing or empty. With an enabled admin present it changes nothing,
// so it is safe on every start. The file is written before the transaction commits; if the
// commit fails, the next start reuses the token in it.
func Bootstrap(ctx context.Context, st *store.Store, tokenFile string) (BootstrapResult, error) {
	var res BootstrapResult
	err := st.WithTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, bootstrapLock); err != nil {
			return fmt.Errorf("take bootstrap lock: %w", err)
		}
		n, err := st.CountActiveAdmins(ctx, tx)
		if err != nil || n > 0 {
			return err
		}
		token, generated, err := readOrCreateToken(tokenFile)
		if err != nil {
			return err
		}
		u, err := st.EnsureAdmin(ctx, tx, BootstrapUsername)
		if err != nil {
			return err
		}
		t, err := st.ReviveToken(ctx, tx, store.NewAPIToken{
			UserID: u.ID, Name: "bootstrap", Hash: HashToken(token), Prefix: DisplayPrefix(token),
		})
		if err != nil {
			return err
		}
		details, _ := json.Marshal(map[string]any{"token_id": t.ID, "token_file": tokenFile, "generated": generated})
		if _, err := st.InsertAudit(ctx, tx, store.AuditEntry{
			ActorType: store.ActorSystem, ActorName: "bootstrap", Action: "user.bootstrap_admin",
			TargetType: "user", TargetID: fmt.Sprint(u.ID),
			Message: "no enabled admin existed: made " + u.Username + " an admin with the bootstrap token", Details: details,
		}); err != nil {
			return err
		}
		res = BootstrapResult{Created: true, Generated: generated, Username: u.Username}
		return nil
	})
	if err != nil {
		return BootstrapResult{}, fmt.Errorf("bootstrap admin: %w", err)
	}
	return res, nil
}

// readOrCreateToken returns the token in path, or generates one and writes it there.
func readOrCreateToken(path string) (string, bool, error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil && strings.TrimSpace(string(b)) != "":
		token := strings.TrimSpace(string(b))
		if !IsToken(token) {
			return "", false, fmt.Errorf("%s does not hold a fluxbridge token (%s followed by 43 characters); delete it to have one generated", path, TokenPrefix)
		}
		return token, false, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return "", false, fmt.Errorf("read token file: %w", err)
	}
	token, _, err := NewToken()
	if err != nil {
		return "", false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", false, fmt.Errorf("create token file directory: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(token+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("write token file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", false, fmt.Errorf("write token file: %w", err)
	}
	return token, true, nil
}

// BootstrapPassword gives the bootstrap admin a console password when they have none: the one in
// passwordFile, or a generated one written there (mode 0600) for the operator to read. An admin
// who already has a password is left alone, so that changing it in the console sticks.
func BootstrapPassword(ctx context.Context, st *store.Store, passwordFile string) (set bool, err error) {
	err = st.WithTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, bootstrapLock); err != nil {
			return fmt.Errorf("take bootstrap lock: %w", err)
		}
		u, err := st.UserByUsername(ctx, tx, BootstrapUsername)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := st.PasswordHash(ctx, tx, u.ID); err == nil || !errors.Is(err, store.ErrNotFound) {
			return err
		}
		pw, err := readOrCreateSecret(passwordFile, NewPassword, func(s string) error { return CheckPasswordPolicy(s) })
		if err != nil {
			return err
		}
		hash, err := HashPassword(pw)
		if err != nil {
			return err
		}
		if err := st.SetPasswordHash(ctx, tx, u.ID, hash); err != nil {
			return err
		}
		details, _ := json.Marshal(map[string]any{"password_file": passwordFile})
		if _, err := st.InsertAudit(ctx, tx, store.AuditEntry{
			ActorType: store.ActorSystem, ActorName: "bootstrap", Action: "user.bootstrap_password",
			TargetType: "user", TargetID: fmt.Sprint(u.ID),
			Message: "gave " + u.Username + " the console password in the bootstrap password file", Details: details,
		}); err != nil {
			return err
		}
		set = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("bootstrap admin password: %w", err)
	}
	return set, nil
}

// readOrCreateSecret returns the secret in path (checked by valid), or one from gen written there.
func readOrCreateSecret(path string, gen func() (string, error), valid func(string) error) (string, error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil && strings.TrimSpace(string(b)) != "":
		s := strings.TrimSpace(string(b))
		if err := valid(s); err != nil {
			return "", fmt.Errorf("%s: %w", path, err)
		}
		return s, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	s, err := gen()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("create directory of %s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(s+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return s, nil
}
