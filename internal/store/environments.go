package store

import (
	"context"
	"encoding/json"
	"fmt"
)

// LockEnvironment returns an environment with its row locked until the transaction ends, so
// that changes to its gitops_config apply one after the other.
func (s *Store) LockEnvironment(ctx context.Context, db DBTX, id int64) (*Environment, error) {
	rows, _ := db.Query(ctx, `SELECT * FROM environments WHERE id = $1 FOR UPDATE`, id)
	e, err := collectOne[Environment](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("environment %d", id))
	}
	return e, nil
}

// SetEnvironmentConfig replaces an environment's gitops_config.
func (s *Store) SetEnvironmentConfig(ctx context.Context, db DBTX, id int64, cfg json.RawMessage) (*Environment, error) {
	rows, _ := db.Query(ctx, `UPDATE environments SET gitops_config = $2 WHERE id = $1 RETURNING *`, id, cfg)
	e, err := collectOne[Environment](rows)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("environment %d", id))
	}
	return e, nil
}
