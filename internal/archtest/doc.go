// Package archtest guards the architecture the style guide asks for: the
// import arrows point one way (xdr ← internal/rpc ← pmap ← the rest), the
// hot-path codec uses neither reflect nor fmt, the go-xdr oracle stays a
// test-only dependency, and every package names its RFC or job in a doc.go.
// It has no code of its own; see arch_test.go.
package archtest
