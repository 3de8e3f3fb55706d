// Package hardening holds the issue-6 tests of the whole daemon: hostile
// input (rpcbomb, CVE-2017-8779), idle and slow-loris clients
// (CVE-2021-46828), CHECK_PORT and pruning, and the server under a racing
// load with the table's invariants checked throughout. The remote-host
// scenarios are in internal/remotetest. It has no non-test code.
package hardening
