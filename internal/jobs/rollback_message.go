package jobs

import (
	"fmt"
	"strings"

	"github.com/fluxbridge/fluxbridge/internal/gitops"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// rollbackMessage is what a rollback's revert commit says and who it is by.
type rollbackMessage struct {
	App, Env  string
	Dir       string
	Target    string            // the commit restored
	TargetDep *store.Deployment // the deployment rolled back to; nil if it was deleted
	DeployID  int64             // the rollback's own deployment
	Requester *store.User       // nil when the user was deleted
	Approvers []string
	Committer gitops.Signature
	// FailedID is the failed deployment an automatic rollback undoes; "" for a person's.
	FailedID string
}

// commitInfo renders the subject, body, trailers and signatures, like a deploy's.
func (m rollbackMessage) commitInfo() gitops.CommitInfo {
	dm := deployMessage{Requester: m.Requester, Committer: m.Committer}
	ci := gitops.CommitInfo{
		Author:    dm.author(),
		Committer: m.Committer,
		Subject:   m.subject(),
		Body:      m.body(),
		Trailers:  [][2]string{{"Deployment-Id", fmt.Sprint(m.DeployID)}, {"Rollback-To", m.Target}},
	}
	if m.Requester != nil {
		ci.Trailers = append(ci.Trailers, [2]string{"Requested-By", signature(ci.Author)})
	}
	if m.FailedID != "" {
		ci.Trailers = append(ci.Trailers, [2]string{"Auto-Rollback-Of", m.FailedID})
	}
	ci.Trailers = append(ci.Trailers, [2]string{"Environment", m.Env})
	for _, a := range m.Approvers {
		ci.Trailers = append(ci.Trailers, [2]string{"Approved-By", a})
	}
	return ci
}

// subject reads like "roll back api in production to 1a2b3c4d5e6f (deployment 12)".
func (m rollbackMessage) subject() string {
	s := fmt.Sprintf("roll back %s in %s to %s", m.App, m.Env, shortSHA(m.Target))
	if m.TargetDep != nil {
		s += fmt.Sprintf(" (deployment %d)", m.TargetDep.ID)
	}
	return s
}

func (m rollbackMessage) body() string {
	var b strings.Builder
	who := "a deleted user"
	if u := m.Requester; u != nil {
		who = u.Username
		if u.DisplayName != "" {
			who = u.DisplayName + " (" + u.Username + ")"
		}
	}
	if m.FailedID != "" {
		fmt.Fprintf(&b, "Rolled back automatically by fluxbridge: deployment %s failed in Flux and the\nenvironment rolls back by itself (autoRollback).\n\n", m.FailedID)
	} else {
		fmt.Fprintf(&b, "Rolled back from the fluxbridge UI by %s.\n\n", who)
	}
	fmt.Fprintf(&b, "Restores %s/ to its content at commit %s", m.Dir, m.Target)
	if d := m.TargetDep; d != nil {
		fmt.Fprintf(&b, ",\nwhich deployment %d (%s", d.ID, d.DeploymentMethod)
		if d.FinishedAt != nil {
			fmt.Fprintf(&b, ", %s", d.FinishedAt.UTC().Format("2006-01-02 15:04 UTC"))
		}
		b.WriteString(") deployed")
		if subj, _, _ := strings.Cut(d.CommitMessage, "\n"); subj != "" {
			fmt.Fprintf(&b, ":\n  %s", subj)
		}
	}
	b.WriteString(".\n")
	return b.String()
}
