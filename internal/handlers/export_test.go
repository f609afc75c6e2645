package handlers

import (
	"net/http"
)

// Route is an API route as the tests outside the package see it.
type Route struct {
	Method, Pattern, Action string
}

// APIRoutes returns every route of h's API table.
func APIRoutes(h *Handler) []Route {
	var out []Route
	for _, rt := range h.apiRoutes() {
		out = append(out, Route{rt.Method, rt.Pattern, rt.Action})
	}
	return out
}

// RouterWith returns h's router with one more API route, whose handler answers 200; it lets a
// test show what happens to a route that was added without a policy entry.
func RouterWith(h *Handler, extra Route) http.Handler {
	ok := func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]bool{"reached": true})
	}
	return h.router(append(h.apiRoutes(), apiRoute{extra.Method, extra.Pattern, extra.Action, ok}))
}
