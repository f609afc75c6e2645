package gitops

import (
	"io"
	"log"
	"os"
	"testing"
)

// TestMain silences gitkit, which logs every request of the test
// servers through the standard logger.
func TestMain(m *testing.M) {
	log.SetOutput(io.Discard)
	os.Exit(m.Run())
}
