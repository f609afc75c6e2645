package jobs

import (
	"fmt"
	"path"
	"strings"

	"github.com/fluxbridge/fluxbridge/internal/gitops"
	"github.com/fluxbridge/fluxbridge/internal/manifest"
	"github.com/fluxbridge/fluxbridge/internal/store"
)

// maxSubject is the length a subject is kept under by leaving changes out ("and 3 more"), so
// `git log --oneline` stays readable.
const maxSubject = 100 // characters

// deployMessage is what a commit_push commit says and who it is by.
type deployMessage struct {
	App, Env    string
	Kind        string
	Template    string // a saved template's name, or ""
	Image       string
	Namespace   string
	Dir         string
	Files       []string
	Changes     []manifest.Change
	DeployID    int64
	Requester   *store.User // nil when the user was deleted
	Approvers   []string    // "Name <email>", in the order they approved
	Committer   gitops.Signature
	FirstDeploy bool
}

// commitInfo renders the subject, body, trailers and signatures.
func (m deployMessage) commitInfo() gitops.CommitInfo {
	ci := gitops.CommitInfo{
		Author:    m.author(),
		Committer: m.Committer,
		Subject:   m.subject(),
		Body:      m.body(),
		Trailers:  [][2]string{{"Deployment-Id", fmt.Sprint(m.DeployID)}},
	}
	if m.Requester != nil {
		ci.Trailers = append(ci.Trailers, [2]string{"Requested-By", signature(ci.Author)})
	}
	ci.Trailers = append(ci.Trailers, [2]string{"Environment", m.Env})
	for _, a := range m.Approvers {
		ci.Trailers = append(ci.Trailers, [2]string{"Approved-By", a})
	}
	return ci
}

// subject reads like "deploy api to production: image 1.4.2 → 1.4.3, replicas 2 → 3".
func (m deployMessage) subject() string {
	head := fmt.Sprintf("deploy %s to %s", m.App, m.Env)
	if len(m.Changes) == 0 {
		return "redeploy " + m.App + " to " + m.Env + ": no changes"
	}
	s := head + ": " + m.Changes[0].Text
	for i, c := range m.Changes[1:] {
		more := ""
		if rest := len(m.Changes) - i - 2; rest > 0 {
			more = fmt.Sprintf(" and %d more", rest)
		}
		next := s + ", " + c.Text
		if len([]rune(next+more)) > maxSubject {
			return s + fmt.Sprintf(" and %d more", len(m.Changes)-i-1)
		}
		s = next
	}
	return s
}

func (m deployMessage) body() string {
	var b strings.Builder
	who := "a deleted user"
	if m.Requester != nil {
		who = m.Requester.Username
		if m.Requester.DisplayName != "" {
			who = m.Requester.DisplayName + " (" + m.Requester.Username + ")"
		}
	}
	fmt.Fprintf(&b, "Deployed from the fluxbridge UI by %s.\n\n", who)
	if m.FirstDeploy {
		b.WriteString("First deploy of this app here:\n")
	} else if len(m.Changes) > 0 {
		b.WriteString("Changes since the previous deploy:\n")
	} else {
		b.WriteString("Nothing changed since the previous deploy.\n")
	}
	for _, c := range m.Changes {
		b.WriteString("- " + c.Text + "\n")
	}
	tmpl := m.Kind
	if m.Template != "" {
		tmpl += " (saved template " + m.Template + ")"
	}
	fmt.Fprintf(&b, "\nTemplate:  %s\n", tmpl)
	if m.Image != "" { // a helm-app names a chart, not an image
		fmt.Fprintf(&b, "Image:     %s\n", m.Image)
	}
	fmt.Fprintf(&b, "Namespace: %s\nDirectory: %s/\n", m.Namespace, m.Dir)
	names := make([]string, len(m.Files))
	for i, f := range m.Files {
		names[i] = path.Base(f)
	}
	fmt.Fprintf(&b, "Files:     %s\n", strings.Join(names, ", "))
	return b.String()
}

// author is the requesting user; a user without an email gets a no-reply address, and a
// deleted user leaves the commit to the bot.
func (m deployMessage) author() gitops.Signature {
	u := m.Requester
	if u == nil {
		return m.Committer
	}
	name := u.DisplayName
	if name == "" {
		name = u.Username
	}
	email := u.Email
	if email == "" {
		email = u.Username + "@users.noreply.fluxbridge"
	}
	return gitops.Signature{Name: name, Email: email}
}

func signature(s gitops.Signature) string { return s.Name + " <" + s.Email + ">" }
