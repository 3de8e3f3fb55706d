//go:build !linux

package main

// dropExecPages is Linux-only (madvise on the executable's mappings).
func dropExecPages() {}
