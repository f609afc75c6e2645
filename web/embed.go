// Package web holds the console's templates and static files, embedded in the binary: no Node
// toolchain, one stylesheet, one small vanilla script. internal/console parses the templates
// once at startup and serves the static files under content-hashed URLs.
package web

import "embed"

// Templates are the console's html/template files: layout.html wraps every page; a page file
// defines "title" and "content" and the fragments that update live.
//
//go:embed templates/*.html
var Templates embed.FS

// Static are the stylesheet, the script and the icons.
//
//go:embed static
var Static embed.FS
