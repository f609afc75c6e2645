package policy

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRuleTableIsWellFormed(t *testing.T) {
	for _, a := range Actions() {
		r, _ := RuleFor(a)
		set := 0
		for _, b := range []bool{r.AnyUser, r.AdminOnly, r.MinRole > None} {
			if b {
				set++
			}
		}
		require.Equal(t, 1, set, "%s: exactly one of AnyUser, AdminOnly, MinRole", a)
		require.False(t, r.EnvDeploy && r.MinRole == None, "%s: an environment rule needs a project role", a)
	}
	require.Equal(t, []string{"maintainer", "owner"}, ApproverRoles())
}

func TestAuthorize(t *testing.T) {
	prod := &Env{Name: "production", Kind: KindProd}
	staging := &Env{Name: "staging", Kind: KindStaging}
	custom := &Env{Name: "production", Kind: KindProd, Config: EnvConfig{DeployRoles: []string{"owner"}, DeployUsers: []string{"carol"}}}
	p := func(env *Env) Target { return Target{Project: "webapp", Env: env} }
	tests := []struct {
		name   string
		action string
		s      Subject
		t      Target
		want   string // "" allowed, else the Required of the *Denied
	}{
		{"admin does everything", "project.update", Subject{Admin: true}, p(nil), ""},
		{"admin-only refuses an owner", "audit.list_all", Subject{Role: Owner}, Target{}, "platform admin"},
		{"any user lists their projects", "project.list", Subject{}, Target{}, ""},
		{"viewer reads", "deployment.list", Subject{Role: Viewer}, p(nil), ""},
		{"non-member cannot read", "deployment.list", Subject{}, p(nil), "project role viewer or higher"},
		{"developer cannot create resources", "resource.create", Subject{Role: Developer}, p(nil), "project role maintainer or higher"},
		{"maintainer creates resources", "resource.create", Subject{Role: Maintainer}, p(nil), ""},
		{"maintainer cannot update the project", "project.update", Subject{Role: Maintainer}, p(nil), "project role owner"},
		{"developer deploys to staging", "deployment.create", Subject{Role: Developer}, p(staging), ""},
		{"developer cannot deploy to prod", "deployment.create", Subject{Role: Developer}, p(prod),
			`the deploy permission of environment "production": project role maintainer or owner`},
		{"maintainer deploys to prod", "deployment.create", Subject{Role: Maintainer}, p(prod), ""},
		{"viewer cannot deploy anywhere", "deployment.create", Subject{Role: Viewer}, p(staging),
			`the deploy permission of environment "staging": project role developer or maintainer or owner`},
		{"deployRoles replaces the default", "deployment.create", Subject{Role: Maintainer}, p(custom),
			`the deploy permission of environment "production": project role owner, or being one of the users carol`},
		{"deployUsers adds a member", "deployment.create", Subject{Username: "carol", Role: Viewer}, p(custom), ""},
		{"deployUsers needs membership", "deployment.create", Subject{Username: "carol"}, p(custom), "project role viewer or higher"},
		{"env update needs maintainer and the deploy permission", "environment.update", Subject{Role: Maintainer}, p(custom),
			`the deploy permission of environment "production": project role owner, or being one of the users carol`},
		{"developer cannot approve", "approval.approve", Subject{Role: Developer}, p(nil), "project role maintainer or higher"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Authorize(tt.action, tt.s, tt.t)
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			var d *Denied
			require.ErrorAs(t, err, &d)
			require.Equal(t, tt.want, d.Required)
			require.Equal(t, tt.action, d.Action)
			require.NotEmpty(t, d.Resource)
			require.NotEmpty(t, d.Have)
		})
	}

	t.Run("an unknown action fails closed, and is not a denial", func(t *testing.T) {
		err := Authorize("bogus.action", Subject{Admin: true}, Target{})
		require.ErrorContains(t, err, `no policy for action "bogus.action"`)
		var d *Denied
		require.False(t, errors.As(err, &d))
	})
	t.Run("a project action outside a project fails closed", func(t *testing.T) {
		require.ErrorContains(t, Authorize("deployment.list", Subject{Admin: true}, Target{}), "needs a project")
	})
}

func TestParseEnvConfig(t *testing.T) {
	tests := []struct {
		raw, field string
	}{
		{`{}`, ""},
		{``, ""},
		{`{"branch": "main", "requiredApprovals": 3, "approvalTTL": "24h", "deployRoles": ["owner"], "deployUsers": ["bob"]}`, ""},
		{`{"approvalTTL": "0"}`, ""},
		{`{"requiredApprovals": "two"}`, "gitops_config.requiredApprovals"},
		{`{"requiredApprovals": -1}`, "gitops_config.requiredApprovals"},
		{`{"requiredApprovals": 11}`, "gitops_config.requiredApprovals"},
		{`{"deployRoles": ["admin"]}`, "gitops_config.deployRoles"},
		{`{"deployRoles": "owner"}`, "gitops_config.deployRoles"},
		{`{"deployUsers": ["Bob Smith"]}`, "gitops_config.deployUsers"},
		{`{"approvalTTL": "soon"}`, "gitops_config.approvalTTL"},
		{`{"approvalTTL": "1s"}`, "gitops_config.approvalTTL"},
		{`[1]`, "gitops_config"},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			_, err := ParseEnvConfig(json.RawMessage(tt.raw))
			if tt.field == "" {
				require.NoError(t, err)
				return
			}
			var ce *ConfigError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, tt.field, ce.Field, ce.Msg)
		})
	}

	c, err := ParseEnvConfig(nil)
	require.NoError(t, err)
	require.Equal(t, 2, c.Approvals(KindProd))
	require.Equal(t, 0, c.Approvals(KindStaging))
	require.Equal(t, DefaultApprovalTTL, c.TTL())
	zero := 0
	require.Equal(t, 0, EnvConfig{RequiredApprovals: &zero}.Approvals(KindProd))
	require.Zero(t, EnvConfig{ApprovalTTL: "0"}.TTL())
}

func TestMergeConfig(t *testing.T) {
	tests := []struct{ doc, patch, want string }{
		{`{"a": 1, "b": {"c": 2, "d": 3}}`, `{"b": {"c": null, "e": 4}, "f": "x"}`, `{"a":1,"b":{"d":3,"e":4},"f":"x"}`},
		{`{}`, `{"requiredApprovals": 0}`, `{"requiredApprovals":0}`},
		{``, `{"x": {"y": null}}`, `{"x":{}}`},
		{`{"a": [1, 2]}`, `{"a": [3]}`, `{"a":[3]}`},
	}
	for _, tt := range tests {
		got, err := MergeConfig(json.RawMessage(tt.doc), json.RawMessage(tt.patch))
		require.NoError(t, err)
		require.JSONEq(t, tt.want, string(got))
	}
	_, err := MergeConfig(json.RawMessage(`{}`), json.RawMessage(`[1]`))
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
}
