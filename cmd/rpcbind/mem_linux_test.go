package main

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// execRanges keeps only the executable's read-only mappings: not its
// writable data, not another file, not anonymous memory, nothing malformed.
func TestExecRangesParse(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "exe")
	if err := os.WriteFile(exe, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(exe, &st); err != nil {
		t.Fatal(err)
	}
	dev := fmt.Sprintf("%02x:%02x", unix.Major(st.Dev), unix.Minor(st.Dev))
	ino := strconv.FormatUint(st.Ino, 10)
	lines := []string{
		"00400000-00606000 r-xp 00000000 " + dev + " " + ino + "    /x/rpcbind",    // text: kept
		"00606000-0084c000 r--p 00206000 " + dev + " " + ino + "    /x/rpcbind",    // rodata: kept
		"0084c000-0087a000 rw-p 0044c000 " + dev + " " + ino + "    /x/rpcbind",    // data: never
		"0087a000-028bb000 rw-p 00000000 00:00 0 ",                                 // bss
		"7f00000000-7f00001000 r-xp 00000000 " + dev + " " + ino + "1 /x/other",    // another inode
		"7f00001000-7f00002000 r-xp 00000000 ff:ff " + ino + " /x/otherdev",        // another device
		"7f00002000-7f00001000 r-xp 00000000 " + dev + " " + ino + " /x/backwards", // end before start
		"garbage",
	}
	maps := filepath.Join(dir, "maps")
	if err := os.WriteFile(maps, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got := execRanges(maps, exe)
	want := []execRange{{0x400000, 0x606000}, {0x606000, 0x84c000}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("execRanges = %x, want %x", got, want)
	}
	if got := execRanges(maps, filepath.Join(dir, "missing")); got != nil {
		t.Errorf("without the executable: %x", got)
	}
}

// In this very process: the code is found, and dropping its pages lowers
// the file-backed resident set while everything keeps running.
func TestDropExecPages(t *testing.T) {
	rs := execRanges("/proc/self/maps", "/proc/self/exe")
	pc := reflect.ValueOf(execRanges).Pointer()
	found := false
	for _, r := range rs {
		found = found || (r.start <= pc && pc < r.end)
	}
	if !found || len(rs) > maxExecRanges {
		t.Fatalf("execRanges = %x: want the code at %#x, at most %d ranges", rs, pc, maxExecRanges)
	}
	before := rssFile(t)
	dropExecPages()
	after := rssFile(t)
	t.Logf("RssFile %d -> %d KiB", before, after)
	if after >= before {
		t.Errorf("RssFile %d -> %d KiB: nothing dropped", before, after)
	}
}

func rssFile(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "RssFile:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}

// processCPU counts this process's CPU time: it grows while the test spins.
func TestProcessCPU(t *testing.T) {
	a := processCPU()
	for x, i := 0, 0; processCPU() < a+20*time.Millisecond; i++ {
		x += i
		if i > 1e10 {
			t.Fatalf("processCPU stuck at %v", a)
		}
	}
}
