//go:build !linux

package kubetest

// reaper does nothing outside Linux: an Env of a test process that dies
// without calling Stop leaves its processes running.
type reaper struct{}

func startReaper(string, bool) (*reaper, error) { return &reaper{}, nil }

func (*reaper) alsoRemove(string) error { return nil }

func (*reaper) stop() error { return nil }
