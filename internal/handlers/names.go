package handlers

import "regexp"

// nameRE is a DNS label: the names of repositories, templates and apps.
var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
