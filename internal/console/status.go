package console

import "github.com/fluxbridge/fluxbridge/internal/fluxspec"

// Badge is a status as the console shows it everywhere: a word, an icon shape and a colour
// class, never colour alone (the design brief's status vocabulary).
type Badge struct {
	Label string
	Class string // st-<Class> colours it
	Icon  string // a symbol of icons.svg
	Title string // the Flux reason, on hover
}

// StatusBadge maps a resource's status, Ready reason and suspension onto the vocabulary;
// the first matching row wins.
func StatusBadge(status, reason string, suspended bool) Badge {
	b := func(label, class, icon string) Badge {
		return Badge{Label: label, Class: class, Icon: icon, Title: reason}
	}
	switch {
	case suspended || status == "suspended":
		return b("Suspended", "suspended", "suspended")
	case reason == "Stalled" || reason == "InvalidPath" || reason == "InvalidSemVer":
		return b("Stalled: needs a fix", "stalled", "stalled")
	case reason == "DependencyNotReady" && status != "ready":
		return b("Waiting for dependency", "waiting", "waiting")
	case (reason == "ArtifactFailed" || reason == "SourceNotReady") && status != "ready":
		return b("Source not ready", "source", "source")
	case status == "failed":
		return b("Failed", "failed", "failed")
	case status == "reconciling":
		return b("Reconciling", "reconciling", "reconciling")
	case status == "ready":
		return b("Ready", "ready", "ready")
	case status == "unknown" && reason == "":
		return b("Not reconciled yet", "new", "new")
	}
	return b("Unknown", "unknown", "unknown")
}

// SyncBadge maps a resource's apply status (is fluxbridge's desired object in the cluster).
func SyncBadge(apply string) Badge {
	switch apply {
	case "applied":
		return Badge{Label: "Applied", Class: "ready", Icon: "ready", Title: "the object in the cluster is what fluxbridge holds"}
	case "failed":
		return Badge{Label: "Apply failed", Class: "failed", Icon: "failed"}
	case "deleting":
		return Badge{Label: "Deleting", Class: "reconciling", Icon: "reconciling"}
	}
	return Badge{Label: "Apply pending", Class: "behind", Icon: "behind", Title: "fluxbridge has not applied its latest settings yet"}
}

// healthOrder is the order of the projects page's counts: failing first.
var healthOrder = []struct{ status, label, class, icon string }{
	{"failed", "Failed", "failed", "failed"},
	{"suspended", "Suspended", "suspended", "suspended"},
	{"reconciling", "Reconciling", "reconciling", "reconciling"},
	{"ready", "Ready", "ready", "ready"},
	{"unknown", "Not reconciled yet", "new", "new"},
}

// sourceable tells whether a kind reads a source that "reconcile with source" refreshes first.
func sourceable(kind string) bool {
	return kind == fluxspec.KindKustomization || kind == fluxspec.KindHelmRelease
}

// ApprovalBadge maps an approval request's state onto the vocabulary.
func ApprovalBadge(state string) Badge {
	switch state {
	case "pending":
		return Badge{Label: "Awaiting approval", Class: "waiting", Icon: "waiting"}
	case "approved":
		return Badge{Label: "Approved", Class: "ready", Icon: "ready"}
	case "rejected":
		return Badge{Label: "Rejected", Class: "failed", Icon: "failed"}
	}
	return Badge{Label: "Expired", Class: "grey", Icon: "unknown"}
}

// DeploymentBadge maps a deployment's status onto the vocabulary.
func DeploymentBadge(status string) Badge {
	switch status {
	case "succeeded":
		return Badge{Label: "Live", Class: "ready", Icon: "ready"}
	case "failed":
		return Badge{Label: "Failed", Class: "failed", Icon: "failed"}
	case "awaiting_approval":
		return Badge{Label: "Awaiting approval", Class: "waiting", Icon: "waiting"}
	case "rejected":
		return Badge{Label: "Rejected", Class: "failed", Icon: "failed"}
	case "cancelled":
		return Badge{Label: "Cancelled", Class: "grey", Icon: "unknown"}
	case "pushed":
		return Badge{Label: "Pushed, applying", Class: "reconciling", Icon: "reconciling"}
	}
	return Badge{Label: "Writing to Git", Class: "reconciling", Icon: "reconciling"}
}

// methodLabels say where a deployment came from.
var methodLabels = map[string]string{"manual": "manual", "gitops-ui": "console", "gitops-git": "Git push"}

// triggerLabels say what set a deployment off when it was not a person.
var triggerLabels = map[string]string{"image-automation": "image automation", "auto-rollback": "automatic rollback"}

// SeverityBadge maps a notification's severity onto the vocabulary.
func SeverityBadge(severity string) Badge {
	switch severity {
	case "error":
		return Badge{Label: "Error", Class: "failed", Icon: "failed"}
	case "warning":
		return Badge{Label: "Warning", Class: "waiting", Icon: "waiting"}
	}
	return Badge{Label: "Info", Class: "info", Icon: "new"}
}
