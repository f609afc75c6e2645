// Package logging builds the root zerolog logger of a fluxbridge process.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/rs/zerolog"
)

// New returns a logger writing JSON (or, with format "console", human-readable lines) to
// stdout, with a timestamp and the service name on every line.
func New(format, level, svc string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		return zerolog.Nop(), fmt.Errorf("log level %q: %w", level, err)
	}
	var w io.Writer = os.Stdout
	if format == "console" {
		fi, _ := os.Stdout.Stat()
		tty := fi != nil && fi.Mode()&os.ModeCharDevice != 0
		w = zerolog.ConsoleWriter{Out: os.Stdout, TimeFormat: time.TimeOnly, NoColor: !tty}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Str("svc", svc).Logger(), nil
}

// Slog adapts a zerolog logger for libraries that take *slog.Logger (River).
func Slog(l zerolog.Logger) *slog.Logger {
	return slog.New(zerolog.NewSlogHandler(l))
}
