package store

import "github.com/jackc/pgx/v5"

// collectOne scans exactly one row into T by column name.
func collectOne[T any](rows pgx.Rows) (*T, error) {
	return pgx.CollectExactlyOneRow(rows, pgx.RowToAddrOfStructByNameLax[T])
}

// collectAll scans every row into T by column name.
func collectAll[T any](rows pgx.Rows) ([]T, error) {
	out, err := pgx.CollectRows(rows, pgx.RowToStructByNameLax[T])
	if out == nil && err == nil {
		out = []T{}
	}
	return out, err
}

func collectInt64(rows pgx.Rows) ([]int64, error) {
	return pgx.CollectRows(rows, pgx.RowTo[int64])
}
