package fluxevent

// hints are first steps for the failure reasons the Flux controllers report most, shown with
// the controller's own message in notifications.
var hints = map[string]string{
	"GitOperationFailed":     "Flux could not fetch the repository: check spec.url, that the branch or tag in spec.ref exists, and the credentials in the Secret named by spec.secretRef (username/password, or identity and known_hosts for SSH).",
	"AuthenticationFailed":   "The credentials were refused: rotate the repository's credentials in fluxbridge so the Secret named by spec.secretRef is rewritten.",
	"ArtifactFailed":         "The source produced no usable artifact: check that spec.path exists at the fetched revision and that ignore rules do not exclude it.",
	"BuildFailed":            "kustomize build failed on the path: run `kustomize build <path>` on the same revision locally and fix the reported file.",
	"ValidationFailed":       "The API server rejected a manifest: check the field named in the message against the resource's schema (kubectl apply --dry-run=server shows the same error).",
	"ReconciliationFailed":   "Apply failed: read the message for the first failing object; `flux get kustomizations` shows the same condition.",
	"HealthCheckFailed":      "Resources were applied but did not become ready in time: check the Deployment's events and pod logs, or raise spec.timeout.",
	"DependencyNotReady":     "A dependency in spec.dependsOn is not ready yet: fix that resource first; this one retries at spec.retryInterval.",
	"ArtifactInStorage":      "",
	"InstallFailed":          "helm install failed: check the values against the chart (helm template with the same values shows rendering errors) and the release's pod events.",
	"UpgradeFailed":          "helm upgrade failed: the previous release is kept or rolled back per spec.upgrade.remediation; check the values diff and pod events.",
	"ChartPullFailed":        "The chart could not be fetched: check the HelmRepository URL, the chart name and that the version in spec.chart.spec.version exists.",
	"ArtifactUpToDate":       "",
	"StorageOperationFailed": "source-controller could not store the artifact: check its storage volume and free space.",
}

// Hint returns a first step for fixing a failure with the given reason, or "".
func Hint(reason string) string { return hints[reason] }
