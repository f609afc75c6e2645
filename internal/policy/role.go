package policy

import "strings"

// Role is a project role. The zero value, None, means "not a member of the project"; the roles
// are ordered, so a higher role can do everything a lower one can.
type Role int

// Project roles, lowest first, as stored in project_members.role.
const (
	None Role = iota
	Viewer
	Developer
	Maintainer
	Owner
)

var roleNames = [...]string{None: "none", Viewer: "viewer", Developer: "developer", Maintainer: "maintainer", Owner: "owner"}

// String returns the role's name as stored in project_members.role, or "none".
func (r Role) String() string {
	if r < None || r > Owner {
		return "invalid"
	}
	return roleNames[r]
}

// ParseRole reads a stored role name. "none" and unknown names report false.
func ParseRole(s string) (Role, bool) {
	for r := Viewer; r <= Owner; r++ {
		if roleNames[r] == s {
			return r, true
		}
	}
	return None, false
}

// RoleNames returns the names of the member roles, lowest first, for validation messages.
func RoleNames() []string { return roleNames[Viewer:] }

// AtLeast returns the names of min and every role above it, lowest first; it is what the store
// needs to count the votes of people who still hold a role.
func AtLeast(min Role) []string {
	if min <= None {
		min = Viewer
	}
	if min > Owner {
		return nil
	}
	return roleNames[min:]
}

func joinRoles(rs []Role) string {
	names := make([]string, len(rs))
	for i, r := range rs {
		names[i] = r.String()
	}
	return strings.Join(names, " or ")
}
