// Package policy decides who may do what in fluxbridge. One table maps every API action
// ("<resource>.<verb>") to what it requires: a minimum project role, platform admin, or just a
// signed-in user; actions that deploy to or change an environment also need that environment's
// deploy permission (EnvConfig). Platform admins may do everything. The package is pure: the
// caller resolves who is asking and what about, and Authorize answers.
package policy

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Rule is what an action requires. Exactly one of AnyUser, AdminOnly and MinRole > None is set.
type Rule struct {
	// AnyUser allows every authenticated user; the handler shows them only what is theirs
	// (their tokens, their projects).
	AnyUser bool
	// AdminOnly restricts the action to platform admins.
	AdminOnly bool
	// MinRole is the lowest project role that may perform the action.
	MinRole Role
	// EnvDeploy also requires the deploy permission of the environment in scope (R13.2).
	EnvDeploy bool
}

// ApproveAction is the action whose rule says who may approve or reject a held change.
const ApproveAction = "approval.approve"

// rules is the policy table. Every API route names one of these actions; the RBAC matrix test
// fails for a route whose action is missing here.
var rules = map[string]Rule{
	// Identity: every user manages their own tokens; admins manage users and anyone's tokens.
	"user.me":     {AnyUser: true},
	"user.list":   {AdminOnly: true},
	"user.create": {AdminOnly: true},
	"user.update": {AdminOnly: true},
	// A one-time link with which a user sets their console password.
	"user.password_link": {AdminOnly: true},
	"user.token_list":    {AdminOnly: true},
	"user.token_create":  {AdminOnly: true},
	"user.token_revoke":  {AdminOnly: true},
	"token.list":         {AnyUser: true},
	"token.create":       {AnyUser: true},
	"token.revoke":       {AnyUser: true},

	// Projects and their members.
	"project.list":   {AnyUser: true}, // only the caller's projects
	"project.create": {AdminOnly: true},
	"project.get":    {MinRole: Viewer},
	"project.update": {MinRole: Owner},
	"member.list":    {MinRole: Viewer},
	"member.set":     {MinRole: Owner},
	"member.remove":  {MinRole: Owner},

	// Environments. Changing one's gitops_config changes its Kustomization (R8.4, R13.2).
	"environment.list":   {MinRole: Viewer},
	"environment.get":    {MinRole: Viewer},
	"environment.create": {MinRole: Maintainer},
	"environment.update": {MinRole: Maintainer, EnvDeploy: true},
	// Bootstrapping an environment creates its Flux objects (R13.1).
	"environment.bootstrap": {MinRole: Maintainer, EnvDeploy: true},

	// Repositories and GitOps resources: maintainers create, change and delete Flux objects
	// (R13.1); one that belongs to an environment also needs its deploy permission (R13.2).
	"repository.list": {MinRole: Viewer},
	"repository.get":  {MinRole: Viewer},
	// Connecting a repository, changing its GitOps settings or its credentials, and checking
	// that fluxbridge can push to it (which uses the credentials) are maintainers' work.
	"repository.create":             {MinRole: Maintainer},
	"repository.update":             {MinRole: Maintainer},
	"repository.rotate_credentials": {MinRole: Maintainer},
	"repository.validate":           {MinRole: Maintainer},
	"resource.list":                 {MinRole: Viewer},
	"resource.get":                  {MinRole: Viewer},
	"resource.create":               {MinRole: Maintainer, EnvDeploy: true},
	"resource.update":               {MinRole: Maintainer, EnvDeploy: true},
	"resource.delete":               {MinRole: Maintainer, EnvDeploy: true},
	// Adopting an object fluxbridge did not make (flux bootstrap's, another tool's) takes it
	// over: platform admins only.
	"resource.import": {AdminOnly: true},
	// flux suspend / resume change what Flux does in the environment; flux reconcile only asks
	// for now what Flux would do anyway, so developers who may deploy may ask (R10).
	"resource.suspend":   {MinRole: Maintainer, EnvDeploy: true},
	"resource.resume":    {MinRole: Maintainer, EnvDeploy: true},
	"resource.reconcile": {MinRole: Developer, EnvDeploy: true},
	// flux export shows the live objects; it holds no secrets (Secrets are not exported).
	"resource.export": {MinRole: Viewer},
	// The configured clusters and whether they answer: any signed-in user.
	"cluster.list": {AnyUser: true},
	// The objects of a cluster no project manages, across projects: platform admins.
	"cluster.discovered": {AdminOnly: true},

	// Deployments: deploying needs the environment's deploy permission and nothing more.
	"deployment.list":   {MinRole: Viewer},
	"deployment.get":    {MinRole: Viewer},
	"deployment.create": {MinRole: Viewer, EnvDeploy: true},
	// A preview shows what a deploy would write: whoever may deploy may preview.
	"deployment.preview": {MinRole: Viewer, EnvDeploy: true},
	// A rollback is a deploy of an earlier version, and unlocking an app lets its image
	// automation deploy again: both need the environment's deploy permission.
	"deployment.rollback": {MinRole: Viewer, EnvDeploy: true},
	"deployment.unlock":   {MinRole: Viewer, EnvDeploy: true},

	// Deploy templates: everyone reads them; maintainers save and delete the project's own.
	"template.list":   {MinRole: Viewer},
	"template.get":    {MinRole: Viewer},
	"template.create": {MinRole: Maintainer},
	"template.delete": {MinRole: Maintainer},

	// Approvals of held changes. Who may approve is also who may reject.
	"approval.list":     {MinRole: Viewer},
	"approval.get":      {MinRole: Viewer},
	ApproveAction:       {MinRole: Maintainer},
	"approval.reject":   {MinRole: Maintainer},
	"audit.list":        {MinRole: Viewer},
	"notification.list": {MinRole: Viewer},
	// One's own notifications across projects, and their read state (the reader's alone).
	"notification.mine": {AnyUser: true},
	"notification.read": {AnyUser: true},
	// The project's live change feed (deployments, resources, reconciles, Flux events,
	// notifications, approvals): whoever may read the project.
	"event.stream": {MinRole: Viewer},
	// The caller's own stream across projects: their notifications and approval requests.
	"event.stream_mine": {AnyUser: true},

	// Across projects: platform admins only.
	"resource.list_all": {AdminOnly: true},
	"audit.list_all":    {AdminOnly: true},
}

// RuleFor returns the rule of action, and false when the table has none.
func RuleFor(action string) (Rule, bool) {
	r, ok := rules[action]
	return r, ok
}

// Actions returns every action in the table, sorted.
func Actions() []string { return slices.Sorted(maps.Keys(rules)) }

// ApproverRoles returns the roles whose holders may approve held changes (besides admins).
func ApproverRoles() []string { return AtLeast(rules[ApproveAction].MinRole) }

// Subject is who is asking.
type Subject struct {
	Username string
	Admin    bool
	// Role is the subject's role in the project in scope; None outside a project or for a
	// non-member.
	Role Role
}

// Target is what the action is on: a project (by slug) and maybe one of its environments.
type Target struct {
	Project string // "" for actions outside a project
	Env     *Env
}

// Env is the environment an action is scoped to.
type Env struct {
	Name   string
	Kind   string
	Config EnvConfig
}

// Denied is a refusal that tells the caller exactly why: the action, the resource, the role
// it needs and the role the caller has (R13.5).
type Denied struct {
	Action   string
	Resource string
	Required string
	Have     string
}

// Error says in one sentence what was denied and why.
func (d *Denied) Error() string {
	return fmt.Sprintf("permission denied: %s on %s requires %s; you are %s", d.Action, d.Resource, d.Required, d.Have)
}

// Authorize returns nil when s may perform action on t, and a *Denied when not. An action
// missing from the table, or a project action asked outside a project, is an error that is not
// a *Denied: the route table is wrong, and the request must fail closed.
func Authorize(action string, s Subject, t Target) error {
	rule, ok := rules[action]
	if !ok {
		return fmt.Errorf("no policy for action %q", action)
	}
	if !rule.AnyUser && !rule.AdminOnly && t.Project == "" {
		return fmt.Errorf("action %q needs a project in the route", action)
	}
	if s.Admin || rule.AnyUser {
		return nil
	}
	deny := &Denied{Action: action, Resource: t.describe(), Have: s.describe(t)}
	switch {
	case rule.AdminOnly:
		deny.Required = "platform admin"
		return deny
	case s.Role < rule.MinRole:
		deny.Required = "project role " + rule.MinRole.String() + " or higher"
		if rule.MinRole == Owner {
			deny.Required = "project role owner"
		}
		return deny
	case rule.EnvDeploy && t.Env != nil && !t.Env.Config.MayDeploy(t.Env.Kind, s.Role, s.Username):
		deny.Required = t.Env.describeDeployers()
		return deny
	}
	return nil
}

// Describe names the target for a refusal, e.g. `environment "production" (prod) of project "webapp"`.
func (t Target) Describe() string { return t.describe() }

func (t Target) describe() string {
	switch {
	case t.Env != nil:
		return fmt.Sprintf("environment %q (%s) of project %q", t.Env.Name, t.Env.Kind, t.Project)
	case t.Project != "":
		return fmt.Sprintf("project %q", t.Project)
	}
	return "the platform"
}

// Describe names the subject's standing on t for a refusal, e.g. "project role developer".
func (s Subject) Describe(t Target) string { return s.describe(t) }

func (s Subject) describe(t Target) string {
	if s.Role == None {
		if t.Project == "" {
			return "user " + s.Username + " (not an admin)"
		}
		return "not a member of project " + t.Project
	}
	return "project role " + s.Role.String()
}

func (e *Env) describeDeployers() string {
	var b strings.Builder
	fmt.Fprintf(&b, "the deploy permission of environment %q: project role %s", e.Name, joinRoles(e.Config.Deployers(e.Kind)))
	if len(e.Config.DeployUsers) > 0 {
		fmt.Fprintf(&b, ", or being one of the users %s", strings.Join(e.Config.DeployUsers, ", "))
	}
	return b.String()
}
