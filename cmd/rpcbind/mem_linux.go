package main

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// execRange is one read-only, file-backed mapping of the executable.
type execRange struct{ start, end uintptr }

// maxExecRanges bounds what execRanges keeps: a static Go binary maps its
// code and read-only data in two or three ranges.
const maxExecRanges = 8

var execRangesOnce = sync.OnceValue(func() []execRange { return execRanges("/proc/self/maps", "/proc/self/exe") })

// execRanges lists the mappings of the executable (identified by the
// device and inode of exe) that are neither writable nor private-written:
// "r-xp" and "r--p" lines. The writable data and bss are never touched: the
// kernel would zero or re-read them, losing their contents.
func execRanges(maps, exe string) []execRange {
	var st syscall.Stat_t
	if err := syscall.Stat(exe, &st); err != nil {
		return nil
	}
	f, err := os.Open(maps)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []execRange
	sc := bufio.NewScanner(f)
	for sc.Scan() && len(out) < maxExecRanges {
		// 00400000-00606000 r-xp 00000000 fe:00 9978307 /path
		fs := strings.Fields(sc.Text())
		if len(fs) < 6 || (fs[1] != "r-xp" && fs[1] != "r--p") {
			continue
		}
		ino, err := strconv.ParseUint(fs[4], 10, 64)
		if err != nil || ino != st.Ino {
			continue
		}
		maj, min, ok := strings.Cut(fs[3], ":")
		ma, err1 := strconv.ParseUint(maj, 16, 32)
		mi, err2 := strconv.ParseUint(min, 16, 32)
		if !ok || err1 != nil || err2 != nil || unix.Mkdev(uint32(ma), uint32(mi)) != st.Dev {
			continue
		}
		lo, hi, ok := strings.Cut(fs[0], "-")
		s, err1 := strconv.ParseUint(lo, 16, 64)
		e, err2 := strconv.ParseUint(hi, 16, 64)
		if !ok || err1 != nil || err2 != nil || e <= s {
			continue
		}
		out = append(out, execRange{uintptr(s), uintptr(e)})
	}
	return out
}

// dropExecPages unmaps the resident pages of the executable's read-only
// mappings (madvise MADV_DONTNEED). On a private, unwritten file mapping
// that only drops the page table entries: the next touch maps the page
// again from the page cache. Failures are ignored: nothing depends on it.
func dropExecPages() {
	for _, r := range execRangesOnce() {
		_, _, _ = unix.Syscall(unix.SYS_MADVISE, r.start, r.end-r.start, unix.MADV_DONTNEED)
	}
}

// processCPU is the CPU time the process has used, user and system, all
// threads (getrusage RUSAGE_SELF); 0 when it cannot be read.
func processCPU() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
