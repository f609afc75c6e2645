package console

import "net/url"

// Every list page of the console is bounded: it reads one page more than it shows, to tell
// whether a next page follows, and links to it with the same cursor the API takes (?after= in
// name order, ?before= newest first).
const (
	membersShown      = 100
	usersShown        = 100
	tokensShown       = 100
	projectsShown     = 60
	repositoriesShown = 50
	environmentsShown = 50
	templatesShown    = 50
	overviewShown     = 200 // Flux objects
)

// moreURL links to the next page of the list at path: its cursor as ?key=, "" when none follows.
func moreURL(path, key, cursor string) string {
	if cursor == "" {
		return ""
	}
	return path + "?" + url.Values{key: {cursor}}.Encode()
}

// trim cuts items (read with one more than shown) to shown and returns the cursor of the next
// page, key of the last one shown, or "" when none follows.
func trim[T any](items []T, shown int, key func(T) string) ([]T, string) {
	if len(items) <= shown {
		return items, ""
	}
	items = items[:shown]
	return items, key(items[shown-1])
}
