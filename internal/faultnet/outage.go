package faultnet

import (
	"os"
	"time"
)

// DefaultOutage is how long the fault suite keeps a server away in make test.
const DefaultOutage = 3 * time.Second

// Outage is how long an outage test keeps a server away: FLUXBRIDGE_CHAOS_OUTAGE (make chaos
// sets 60s), else DefaultOutage. A value that does not parse is an error.
func Outage() (time.Duration, error) {
	v := os.Getenv("FLUXBRIDGE_CHAOS_OUTAGE")
	if v == "" {
		return DefaultOutage, nil
	}
	return time.ParseDuration(v)
}
