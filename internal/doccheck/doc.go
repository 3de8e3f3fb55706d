// Package doccheck holds the tests that keep what a newcomer reads true:
// README.md's Layout names every package, its Quick start names the Go
// release go.mod asks for and targets that exist, its table of Debian's
// flags is the reference's usage line, `make help` lists every target, and
// the Debian packages the tests need are listed once, in .ci/deps. It has
// no code of its own; see doccheck_test.go.
package doccheck
