package handlers

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // notification-controller's generic-hmac Provider may sign with sha1
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"hash"
	"net/http"
	"strings"
)

// Authentication failures of a webhook delivery. All of them answer 401.
var (
	errNoAuth          = errors.New("missing X-Signature or Authorization: Bearer header")
	errBadSignature    = errors.New("signature does not match the body")
	errSignatureFormat = errors.New("X-Signature must be <sha1|sha256|sha384|sha512>=<hex digest>")
	errBadToken        = errors.New("bearer token does not match")
)

// verifyDelivery authenticates a notification-controller delivery for a cluster whose Provider
// token is key. A generic-hmac Provider signs the raw body: `X-Signature: sha256=<hex HMAC>`
// (sha1, sha384 and sha512 are accepted too). A generic Provider can send the token as
// `Authorization: Bearer <token>` through its Secret's headers. Both compare in constant time.
// When a signature is present it must be valid: a bearer header does not rescue a bad one.
func verifyDelivery(h http.Header, body, key []byte) error {
	if sig := h.Get("X-Signature"); sig != "" {
		algo, digest, ok := strings.Cut(sig, "=")
		if !ok {
			return errSignatureFormat
		}
		var newHash func() hash.Hash
		switch strings.ToLower(algo) {
		case "sha1":
			newHash = sha1.New
		case "sha256":
			newHash = sha256.New
		case "sha384":
			newHash = sha512.New384
		case "sha512":
			newHash = sha512.New
		default:
			return errSignatureFormat
		}
		got, err := hex.DecodeString(digest)
		if err != nil {
			return errSignatureFormat
		}
		mac := hmac.New(newHash, key)
		mac.Write(body)
		if !hmac.Equal(got, mac.Sum(nil)) {
			return errBadSignature
		}
		return nil
	}
	if auth := h.Get("Authorization"); auth != "" {
		scheme, token, ok := strings.Cut(auth, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return errNoAuth
		}
		if subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), key) != 1 {
			return errBadToken
		}
		return nil
	}
	return errNoAuth
}
