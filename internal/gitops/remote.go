package gitops

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

// remoteName names the remote in the cached clones.
const remoteName = "origin"

// tracking is the clone's ref for the remote branch.
func (r *remote) tracking() plumbing.ReferenceName {
	return plumbing.NewRemoteReferenceName(remoteName, r.branch.Short())
}

// pushSession is an open receive-pack session and what it advertised.
type pushSession struct {
	sess transport.ReceivePackSession
	caps *capability.List
	head plumbing.Hash // zero when the repository is empty
}

// advertise opens a receive-pack session, which checks that the
// credentials may push, and reads the branch head from its advertisement.
// An empty repository gives a zero head; a non-empty one without the
// branch gives ErrBranchNotFound. The caller closes the session.
func (w *Writer) advertise(ctx context.Context, r *remote) (*pushSession, error) {
	ep, err := r.endpoint()
	if err != nil {
		return nil, err
	}
	cl, err := client.NewClient(ep)
	if err != nil {
		return nil, fmt.Errorf("git client for %s: %w", r.url, ErrInvalidArgument)
	}
	sess, err := cl.NewReceivePackSession(ep, r.auth)
	if err != nil {
		return nil, remoteError("connect to "+r.url, err, r.secrets)
	}
	ar, err := sess.AdvertisedReferencesContext(ctx)
	if errors.Is(err, transport.ErrEmptyRemoteRepository) {
		caps := capability.NewList()
		_ = caps.Set(capability.ReportStatus) // every git server reports
		return &pushSession{sess: sess, caps: caps}, nil
	}
	if err != nil {
		_ = sess.Close()
		return nil, remoteError("list refs of "+r.url, err, r.secrets)
	}
	ps := &pushSession{sess: sess, caps: ar.Capabilities}
	if h, ok := ar.References[r.branch.String()]; ok {
		ps.head = h
	} else if len(ar.References) > 0 || ar.Head != nil {
		_ = sess.Close()
		return nil, fmt.Errorf("branch %s of %s: %w", r.branch.Short(), r.url, ErrBranchNotFound)
	}
	return ps, nil
}

// fetch updates the tracking ref from the remote and returns the branch
// head, or a zero hash when the repository is empty.
func (w *Writer) fetch(ctx context.Context, g *git.Repository, r *remote) (plumbing.Hash, error) {
	rem := git.NewRemote(g.Storer, &config.RemoteConfig{Name: remoteName, URLs: []string{r.url}})
	err := rem.FetchContext(ctx, &git.FetchOptions{
		RemoteName:   remoteName,
		RefSpecs:     []config.RefSpec{config.RefSpec("+" + r.branch.String() + ":" + r.tracking().String())},
		Auth:         r.auth,
		CABundle:     r.ca,
		ClientCert:   r.cert,
		ClientKey:    r.key,
		Tags:         git.NoTags,
		ProxyOptions: r.proxy,
	})
	switch {
	case err == nil, errors.Is(err, git.NoErrAlreadyUpToDate):
	case errors.Is(err, transport.ErrEmptyRemoteRepository):
		_ = g.Storer.RemoveReference(r.tracking())
		return plumbing.ZeroHash, nil
	default:
		rerr := remoteError("fetch "+r.branch.Short()+" from "+r.url, err, r.secrets)
		if isKnownRemoteFailure(rerr) {
			return plumbing.ZeroHash, rerr
		}
		// Unknown failures may come from a damaged clone: rebuild it once.
		return plumbing.ZeroHash, corrupt(rerr)
	}
	ref, err := g.Storer.Reference(r.tracking())
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("read fetched ref: %w", corrupt(err))
	}
	return ref.Hash(), nil
}

// isKnownRemoteFailure reports errors that a fresh clone would not fix.
func isKnownRemoteFailure(err error) bool {
	for _, k := range []error{ErrAuth, ErrRepoNotFound, ErrBranchNotFound, context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, k) {
			return true
		}
	}
	var ue *plumbing.UnexpectedError
	if errors.As(err, &ue) {
		var he *githttp.Err
		if errors.As(ue.Err, &he) {
			return true // an HTTP status from the server, such as a 500
		}
	}
	return isNetError(err)
}

// sync makes the clone's tracking ref equal the head the push session
// advertised, fetching only when that commit is not in the clone yet. It
// returns the head to build on, which a fetch may have moved further.
func (w *Writer) sync(ctx context.Context, g *git.Repository, r *remote, ps *pushSession) (plumbing.Hash, error) {
	if ps.head.IsZero() {
		return plumbing.ZeroHash, nil
	}
	if _, err := g.CommitObject(ps.head); err == nil {
		ref := plumbing.NewHashReference(r.tracking(), ps.head)
		if err := g.Storer.SetReference(ref); err != nil {
			return plumbing.ZeroHash, fmt.Errorf("set %s: %w", r.tracking(), corrupt(err))
		}
		return ps.head, nil
	}
	return w.fetch(ctx, g, r)
}

// push sends objs and moves the branch from old to new in one
// compare-and-swap ref update, never forced. A server that saw the branch
// move since old answers with a lock or stale-value status, returned as
// errRace; any other refusal is ErrPushRejected.
func (w *Writer) push(ctx context.Context, g *git.Repository, r *remote, ps *pushSession, old, new plumbing.Hash, objs []plumbing.Hash) error {
	req := packp.NewReferenceUpdateRequestFromCapabilities(ps.caps)
	req.Commands = []*packp.Command{{Name: r.branch, Old: old, New: new}}
	// With a sideband, hook output and server messages arrive apart from
	// the status report instead of on stderr, which some servers mix in.
	var msgs bytes.Buffer
	switch {
	case ps.caps.Supports(capability.Sideband64k):
		_ = req.Capabilities.Set(capability.Sideband64k)
	case ps.caps.Supports(capability.Sideband):
		_ = req.Capabilities.Set(capability.Sideband)
	}
	req.Progress = &msgs
	var pack bytes.Buffer
	enc := packfile.NewEncoder(&pack, g.Storer, !ps.caps.Supports(capability.OFSDelta))
	if _, err := enc.Encode(objs, 0); err != nil {
		return fmt.Errorf("pack objects: %w", corrupt(err))
	}
	req.Packfile = io.NopCloser(&pack)

	rs, err := ps.sess.ReceivePack(ctx, req)
	if rs != nil {
		if rs.UnpackStatus != "ok" {
			return fmt.Errorf("push to %s: server could not unpack: %s", r.url, mask(rs.UnpackStatus, r.secrets))
		}
		for _, cs := range rs.CommandStatuses {
			switch {
			case cs.Status == "ok":
			case isRaceStatus(cs.Status):
				return fmt.Errorf("push %s: %s: %w", r.branch.Short(), mask(cs.Status, r.secrets), errRace)
			default:
				return fmt.Errorf("push %s to %s: %s%s: %w", r.branch.Short(), r.url, mask(cs.Status, r.secrets), remoteSays(msgs.String(), r.secrets), ErrPushRejected)
			}
		}
		return nil
	}
	if err != nil {
		return remoteError("push "+r.branch.Short()+" to "+r.url, err, r.secrets)
	}
	return nil
}

// maxRemoteMsg bounds how much server output goes into an error.
const maxRemoteMsg = 512 // bytes

// remoteSays formats what the server printed during a push, masked and
// cut short, for an error message; "" when it printed nothing.
func remoteSays(out string, secrets []string) string {
	out = strings.TrimSpace(mask(out, secrets))
	if out == "" {
		return ""
	}
	if len(out) > maxRemoteMsg {
		out = out[len(out)-maxRemoteMsg:]
	}
	return " (remote: " + strings.Join(strings.Fields(out), " ") + ")"
}
