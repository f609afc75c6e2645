package gitops

import (
	"strings"
	"unicode"
)

// CheckPath reports whether p is a safe file path relative to the
// repository root: slash-separated, not absolute, no empty, "." or ".."
// segments, no backslashes or control characters, and no ".git" segment
// in any letter case. It returns a *PathError, or nil.
func CheckPath(p string) error {
	if p == "" {
		return &PathError{Path: p, Reason: "is empty"}
	}
	if strings.HasPrefix(p, "/") {
		return &PathError{Path: p, Reason: "is absolute"}
	}
	if strings.ContainsRune(p, '\\') {
		return &PathError{Path: p, Reason: "contains a backslash"}
	}
	for _, r := range p {
		if unicode.IsControl(r) {
			return &PathError{Path: p, Reason: "contains a control character"}
		}
	}
	for _, seg := range strings.Split(p, "/") {
		switch {
		case seg == "":
			return &PathError{Path: p, Reason: "contains an empty segment"}
		case seg == "." || seg == "..":
			return &PathError{Path: p, Reason: "contains a " + seg + " segment"}
		case strings.EqualFold(seg, ".git"):
			return &PathError{Path: p, Reason: "contains a .git segment"}
		}
	}
	return nil
}

// cleanDir checks a directory argument and returns it without a trailing
// slash; "" and "." both mean the repository root and return "".
func cleanDir(dir string) (string, error) {
	d := strings.TrimSuffix(dir, "/")
	if d == "" || d == "." {
		if dir == "/" {
			return "", &PathError{Path: dir, Reason: "is absolute"}
		}
		return "", nil
	}
	if err := CheckPath(d); err != nil {
		return "", &PathError{Path: dir, Reason: err.(*PathError).Reason}
	}
	return d, nil
}

// inDir reports whether the file path p lies under dir ("" is the root).
func inDir(p, dir string) bool {
	return dir == "" || strings.HasPrefix(p, dir+"/")
}
