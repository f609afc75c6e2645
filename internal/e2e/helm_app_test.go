package e2e

import (
	"context"
	"net/http"
	"testing"

	helmv2 "github.com/fluxcd/helm-controller/api/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestHelmAppTemplateOnTheRig: a console deploy with the built-in helm-app template creates
// the HelmRepository and the HelmRelease it names, with the template's recovery defaults, and
// the real source-controller and helm-controller install the chart with the deploy's values.
func TestHelmAppTemplateOnTheRig(t *testing.T) {
	require.NoError(t, rig.Helm.publish("greeter", "1.0.0"))
	p := newProject(t, "helmapp", projectOpts{})
	out := mustCall(t, http.StatusCreated, http.MethodPost, p.path("/environments/dev/deployments"), obj{
		"method": "gitops-ui", "template": "helm-app", "app": "greeter",
		"flux": obj{"helmRelease": obj{
			"chart":  obj{"chart": "greeter", "version": ">=1.0.0 <2.0.0", "source": obj{"helmRepository": obj{"url": rig.Helm.url()}}},
			"values": obj{"greeting": "hi from a template"},
		}},
	})
	hrID := id(out["helm_release"].(obj), "id")
	require.Equal(t, "HelmRepository", out["chart_source"].(obj)["kind"])

	d := p.waitChartDeployment(t, "1.0.0")
	require.Equal(t, float64(hrID), d["gitops_resource_id"])
	var cm corev1.ConfigMap
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		require.NoError(c, rig.Env.Client.Get(context.Background(), client.ObjectKey{Namespace: p.namespace, Name: "greeter-config"}, &cm))
	}, settleTimeout, pollEvery)
	require.Equal(t, "hi from a template", cm.Data["greeting"])
	require.Equal(t, "1.0.0", cm.Data["chartVersion"])

	// The recovery defaults are on the live object helm-controller reads.
	var hr helmv2.HelmRelease
	require.NoError(t, rig.Env.Client.Get(context.Background(), client.ObjectKey{Namespace: fluxNamespace, Name: "helmapp-dev-greeter"}, &hr))
	require.NotNil(t, hr.Spec.Upgrade)
	require.NotNil(t, hr.Spec.Upgrade.Remediation)
	require.Equal(t, 3, hr.Spec.Upgrade.Remediation.Retries)
	require.Equal(t, helmv2.RemediationStrategy("rollback"), *hr.Spec.Upgrade.Remediation.Strategy)
	require.True(t, *hr.Spec.Upgrade.Remediation.RemediateLastFailure)
	require.Equal(t, 3, hr.Spec.Install.Remediation.Retries)
	p.waitResource(t, hrID, "ready", "")
}
