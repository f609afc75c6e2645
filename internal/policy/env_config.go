package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"
)

// Environment kinds, as enforced by the environments CHECK constraint.
const (
	KindDev     = "dev"
	KindTest    = "test"
	KindStaging = "staging"
	KindProd    = "prod"
)

// Defaults of an environment's access settings, used when its gitops_config leaves them out.
const (
	DefaultProdApprovals = 2              // the two-person rule
	DefaultApprovalTTL   = 72 * time.Hour // a request nobody decided on within three days expires
	MaxApprovals         = 10
	minApprovalTTL       = time.Minute
	maxApprovalTTL       = 90 * 24 * time.Hour
)

// EnvConfig is the part of an environment's gitops_config that governs access: who may deploy
// to it (or change its Kustomization) and how many approvals such a change needs. Other keys of
// gitops_config (branch, path, sync policy, …) belong to other features and are left alone.
type EnvConfig struct {
	// DeployRoles are the project roles that may deploy; each is matched exactly. Empty means
	// the default of the environment's kind: maintainer or owner for prod, developer and up
	// otherwise.
	DeployRoles []string `json:"deployRoles,omitempty"`
	// DeployUsers are usernames that may deploy whatever their role, as long as they are
	// members of the project.
	DeployUsers []string `json:"deployUsers,omitempty"`
	// RequiredApprovals is how many distinct people other than the requester must approve a
	// deploy or a change; nil means the default of the kind (2 for prod, 0 otherwise).
	RequiredApprovals *int `json:"requiredApprovals,omitempty"`
	// ApprovalTTL is a Go duration after which an undecided request expires; "0" means never,
	// empty means DefaultApprovalTTL.
	ApprovalTTL string `json:"approvalTTL,omitempty"`
}

// ConfigError names the gitops_config key at fault and what is wrong with it.
type ConfigError struct {
	Field string // e.g. "gitops_config.requiredApprovals"
	Msg   string
}

// Error returns "field: message".
func (e *ConfigError) Error() string { return e.Field + ": " + e.Msg }

var usernameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// ParseEnvConfig reads the access settings out of a gitops_config object and validates them.
// An empty document is the all-defaults config. A key of the wrong type or an invalid value is
// a *ConfigError naming the key.
func ParseEnvConfig(raw json.RawMessage) (EnvConfig, error) {
	var c EnvConfig
	if len(bytes.TrimSpace(raw)) == 0 {
		return c, nil
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return c, &ConfigError{Field: "gitops_config." + te.Field, Msg: fmt.Sprintf("must be %s, got a JSON %s", te.Type, te.Value)}
		}
		return c, &ConfigError{Field: "gitops_config", Msg: "must be a JSON object: " + err.Error()}
	}
	return c, c.Validate()
}

// Validate checks every access setting and returns the first problem as a *ConfigError.
func (c EnvConfig) Validate() error {
	for _, r := range c.DeployRoles {
		if _, ok := ParseRole(r); !ok {
			return &ConfigError{Field: "gitops_config.deployRoles", Msg: fmt.Sprintf("%q is not a role; want one of %v", r, RoleNames())}
		}
	}
	for _, u := range c.DeployUsers {
		if !usernameRE.MatchString(u) {
			return &ConfigError{Field: "gitops_config.deployUsers", Msg: fmt.Sprintf("%q is not a username", u)}
		}
	}
	if n := c.RequiredApprovals; n != nil && (*n < 0 || *n > MaxApprovals) {
		return &ConfigError{Field: "gitops_config.requiredApprovals", Msg: fmt.Sprintf("must be between 0 and %d, got %d", MaxApprovals, *n)}
	}
	if c.ApprovalTTL != "" && c.ApprovalTTL != "0" {
		d, err := time.ParseDuration(c.ApprovalTTL)
		if err != nil || d != 0 && (d < minApprovalTTL || d > maxApprovalTTL) {
			return &ConfigError{Field: "gitops_config.approvalTTL", Msg: fmt.Sprintf("must be \"0\" or a duration between %s and %s, like \"72h\", got %q", minApprovalTTL, maxApprovalTTL, c.ApprovalTTL)}
		}
	}
	return nil
}

// DefaultApprovals is the number of approvals an environment of kind needs when its config
// does not say.
func DefaultApprovals(kind string) int {
	if kind == KindProd {
		return DefaultProdApprovals
	}
	return 0
}

// Approvals is the number of approvals a deploy or change in an environment of kind needs.
func (c EnvConfig) Approvals(kind string) int {
	if c.RequiredApprovals != nil {
		return *c.RequiredApprovals
	}
	return DefaultApprovals(kind)
}

// TTL is how long an approval request in the environment stays open; 0 means forever.
func (c EnvConfig) TTL() time.Duration {
	switch c.ApprovalTTL {
	case "":
		return DefaultApprovalTTL
	case "0":
		return 0
	}
	d, _ := time.ParseDuration(c.ApprovalTTL) // validated by ParseEnvConfig
	return d
}

// Deployers returns the roles that may deploy to an environment of kind.
func (c EnvConfig) Deployers(kind string) []Role {
	if len(c.DeployRoles) == 0 {
		if kind == KindProd {
			return []Role{Maintainer, Owner}
		}
		return []Role{Developer, Maintainer, Owner}
	}
	out := make([]Role, 0, len(c.DeployRoles))
	for _, name := range c.DeployRoles {
		if r, ok := ParseRole(name); ok && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out
}

// MayDeploy tells whether a member with role and username holds the environment's deploy
// permission. A non-member (None) never does, even when listed in DeployUsers.
func (c EnvConfig) MayDeploy(kind string, role Role, username string) bool {
	if role == None {
		return false
	}
	return slices.Contains(c.Deployers(kind), role) || slices.Contains(c.DeployUsers, username)
}

// MergeConfig applies a JSON merge patch (RFC 7396) to a gitops_config document: keys in patch
// replace those in doc, objects merge recursively, and a null removes the key. Both must be JSON
// objects; the result is a compact JSON object.
func MergeConfig(doc, patch json.RawMessage) (json.RawMessage, error) {
	var d, p map[string]any
	if len(bytes.TrimSpace(doc)) > 0 {
		if err := json.Unmarshal(doc, &d); err != nil {
			return nil, fmt.Errorf("gitops_config is not a JSON object: %w", err)
		}
	}
	if err := json.Unmarshal(patch, &p); err != nil || p == nil {
		return nil, &ConfigError{Field: "gitops_config", Msg: "must be a JSON object (a merge patch)"}
	}
	out, err := json.Marshal(mergeObject(d, p))
	if err != nil {
		return nil, fmt.Errorf("encode merged gitops_config: %w", err)
	}
	return out, nil
}

func mergeObject(doc, patch map[string]any) map[string]any {
	if doc == nil {
		doc = map[string]any{}
	}
	for k, pv := range patch {
		if pv == nil {
			delete(doc, k)
			continue
		}
		if po, ok := pv.(map[string]any); ok {
			do, _ := doc[k].(map[string]any)
			doc[k] = mergeObject(do, po)
			continue
		}
		doc[k] = pv
	}
	return doc
}
