package gitops

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"path"
	"regexp"
	"strings"
)

const (
	// markerPrefix starts the first line of every file fluxbridge manages.
	markerPrefix = "# Managed by fluxbridge; edits here are overwritten only if unchanged."
	// checksumPrefix precedes the hex SHA-256 of the rest of the file.
	checksumPrefix = " fluxbridge-checksum: sha256:"
)

// Mark returns content with the fluxbridge marker as its first line:
//
//	# Managed by fluxbridge; edits here are overwritten only if unchanged. fluxbridge-checksum: sha256:<hex>
//
// where <hex> is the SHA-256 of everything after that line, except the
// values Flux image automation owns (see checksum). A marker already on
// content is replaced, so Mark(Mark(x)) equals Mark(x). The header is a
// "#" comment, so it suits YAML and other files with that comment syntax;
// Apply marks .yaml and .yml files by itself.
func Mark(content []byte) []byte {
	body := content
	if b, ok := splitMarker(content); ok {
		body = b
	}
	sum := checksum(body)
	out := make([]byte, 0, len(markerPrefix)+len(checksumPrefix)+hex.EncodedLen(len(sum))+1+len(body))
	out = append(out, markerPrefix...)
	out = append(out, checksumPrefix...)
	out = hex.AppendEncode(out, sum[:])
	out = append(out, '\n')
	return append(out, body...)
}

// markState says how a file in the repository relates to fluxbridge.
type markState int

const (
	unmarked  markState = iota // no marker: not ours
	unchanged                  // ours, checksum matches
	edited                     // ours, but edited by hand since
)

// inspect reads the marker of existing file content.
func inspect(content []byte) markState {
	body, ok := splitMarker(content)
	if !ok {
		return unmarked
	}
	line := string(content[:len(content)-len(body)])
	i := strings.Index(line, checksumPrefix)
	if i < 0 {
		return edited
	}
	want := strings.TrimSpace(line[i+len(checksumPrefix):])
	sum := checksum(body)
	if want != hex.EncodeToString(sum[:]) {
		return edited
	}
	return unchanged
}

// setterLine matches a YAML line whose value Flux image automation sets: a
// key, its value and an image policy setter comment, as in
//
//	image: ghcr.io/acme/api:1.4.2 # {"$imagepolicy": "flux-system:api"}
var setterLine = regexp.MustCompile(`^(\s*(?:- )?[^\s:#][^:#]*:\s*)\S[^#]*?(\s+#\s*\{"\$imagepolicy":.*)$`)

// checksum is the SHA-256 of a marked file's body with the values of
// image-policy setter lines left out: an ImageUpdateAutomation moving a tag
// is not a hand edit, and fluxbridge may overwrite the file afterwards.
func checksum(body []byte) [sha256.Size]byte {
	if !bytes.Contains(body, []byte(`"$imagepolicy"`)) {
		return sha256.Sum256(body)
	}
	lines := bytes.Split(body, []byte("\n"))
	for i, l := range lines {
		lines[i] = setterLine.ReplaceAll(l, []byte("${1}<set by image automation>${2}"))
	}
	return sha256.Sum256(bytes.Join(lines, []byte("\n")))
}

// splitMarker returns the content after the marker line, and whether
// content starts with one.
func splitMarker(content []byte) ([]byte, bool) {
	if !bytes.HasPrefix(content, []byte(markerPrefix)) {
		return nil, false
	}
	nl := bytes.IndexByte(content, '\n')
	if nl < 0 {
		return nil, true
	}
	return content[nl+1:], true
}

// wantsMark reports whether Apply marks a file at p by itself.
func wantsMark(p string) bool {
	switch strings.ToLower(path.Ext(p)) {
	case ".yaml", ".yml":
		return true
	}
	return false
}

// conflictReason says why existing content at a path blocks a write or a
// delete, or "" if it does not.
func conflictReason(existing []byte) string {
	switch inspect(existing) {
	case unchanged:
		return ""
	case edited:
		return "edited by hand since fluxbridge wrote it (checksum mismatch)"
	default:
		return "not managed by fluxbridge (no marker)"
	}
}
