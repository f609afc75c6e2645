package console

import (
	"regexp"
	"strings"
)

// yamlLine is one line of the live YAML; Hot marks the field a failure names.
type yamlLine struct {
	Text string
	Hot  bool
}

var (
	// fieldPathRE finds a field path in a message: "spec.template.spec.containers[0].image".
	fieldPathRE = regexp.MustCompile(`\b(spec(?:\.[A-Za-z][A-Za-z0-9]*(?:\[\d+\])?)+)`)
	yamlKeyRE   = regexp.MustCompile(`^(\s*)(?:- )?([A-Za-z0-9_./-]+):`)
)

// failingField guesses the spec field a failure is about: a path the message names, or the
// field behind a Flux reason (a path not found, a branch that does not exist, refused
// credentials, a dependency, a health check timeout).
func failingField(reason, msg string) string {
	if m := fieldPathRE.FindString(msg); m != "" {
		return m
	}
	low := strings.ToLower(msg)
	switch {
	case strings.Contains(low, "path") && strings.Contains(low, "not found") || strings.Contains(low, "no such file"):
		return "spec.path"
	case strings.Contains(low, "remote ref") || strings.Contains(low, "reference not found") || strings.Contains(low, "branch"):
		return "spec.ref"
	case reason == "AuthenticationFailed" || strings.Contains(low, "authentication required") || strings.Contains(low, "authentication failed"):
		return "spec.secretRef"
	case reason == "DependencyNotReady":
		return "spec.dependsOn"
	case reason == "HealthCheckFailed" || strings.Contains(low, "timeout waiting for"):
		return "spec.timeout"
	case strings.Contains(low, "chart") && strings.Contains(low, "version"):
		return "spec.chart.spec.version"
	case reason == "GitOperationFailed" || strings.Contains(low, "failed to checkout"):
		return "spec.url"
	}
	return ""
}

// highlightYAML splits y into lines and marks the line of the deepest key along field (the
// whole path when present, else its longest prefix in the object).
func highlightYAML(y, field string) []yamlLine {
	lines := strings.Split(strings.TrimRight(y, "\n"), "\n")
	out := make([]yamlLine, len(lines))
	want := strings.Split(stripIndexes(field), ".")
	type frame struct {
		indent int
		key    string
	}
	var stack []frame
	best, bestDepth := -1, 0
	for i, l := range lines {
		out[i].Text = l
		if field == "" {
			continue
		}
		m := yamlKeyRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		indent := len(m[1])
		if strings.HasPrefix(strings.TrimLeft(l, " "), "- ") {
			indent += 2
		}
		for len(stack) > 0 && stack[len(stack)-1].indent >= indent {
			stack = stack[:len(stack)-1]
		}
		stack = append(stack, frame{indent, m[2]})
		depth := 0
		for depth < len(stack) && depth < len(want) && stack[depth].key == want[depth] {
			depth++
		}
		if depth == len(stack) && depth > bestDepth {
			best, bestDepth = i, depth
		}
	}
	if best >= 0 && bestDepth >= 2 {
		out[best].Hot = true
	}
	return out
}

func stripIndexes(p string) string {
	return regexp.MustCompile(`\[\d+\]`).ReplaceAllString(p, "")
}
