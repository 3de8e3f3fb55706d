package registry

import (
	"fmt"
	"strconv"
	"testing"
)

// filled returns a table with rpcbind's self entries and n registrations
// spread over n/4 programs, each with versions 1 and 2 on tcp and udp.
func filled(n int) *Table {
	tab := New(referenceSelf())
	for i := 0; i < n; i++ {
		prog := uint32(400000 + i/4)
		vers := uint32(1 + i%2)
		netid := [2]string{"tcp", "udp"}[i/2%2]
		port := 1024 + i%60000
		tab.Set(Entry{prog, vers, netid, "0.0.0.0." + strconv.Itoa(port>>8) + "." + strconv.Itoa(port&0xff), "superuser"})
	}
	return tab
}

var sinkPort uint32
var sinkAddr string

func BenchmarkGetPort(b *testing.B) {
	for _, n := range []int{10, 10000} {
		tab := filled(n)
		last := uint32(400000 + (n-1)/4)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				sinkPort = tab.GetPort(last, 2, 17)
			}
		})
	}
}

func BenchmarkGetAddr(b *testing.B) {
	udp := []byte("udp")
	for _, n := range []int{10, 10000} {
		tab := filled(n)
		last := uint32(400000 + (n-1)/4)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				sinkAddr, _ = tab.GetAddr(last, 2, udp, false)
			}
		})
		b.Run(fmt.Sprint(n, "/fallback"), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				sinkAddr, _ = tab.GetAddr(last, 9, udp, false)
			}
		})
		b.Run(fmt.Sprint(n, "/parallel"), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					tab.GetAddr(last, 2, udp, false)
				}
			})
		})
	}
}

// 10,000 SETs then 10,000 UNSETs: the cost per operation must not grow
// with the table (compare ns/op per entry across sizes).
func BenchmarkSetUnset(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		entries := make([]Entry, n)
		for i := range entries {
			entries[i] = Entry{uint32(400000 + i), 1, "udp", "0.0.0.0.4.1", "unknown"}
		}
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				tab := New(referenceSelf())
				for _, e := range entries {
					tab.Set(e)
				}
				for _, e := range entries {
					tab.Unset(e.Prog, e.Vers, "", e.Owner)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(2*n), "ns/change")
		})
	}
}

func BenchmarkDump(b *testing.B) {
	for _, n := range []int{10, 100} {
		tab := filled(n)
		buf := make([]byte, 0, 64<<10)
		b.Run(fmt.Sprint("v2/", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				buf = tab.AppendDumpV2(buf[:0])
			}
		})
		b.Run(fmt.Sprint("v3/", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				buf = tab.AppendDumpV3(buf[:0])
			}
		})
		b.Run(fmt.Sprint("v3-after-set/", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				tab.Set(Entry{399999, 1, "udp", "0.0.0.0.4.1", "unknown"})
				tab.Unset(399999, 1, "udp", "unknown")
				buf = tab.AppendDumpV3(buf[:0])
			}
		})
	}
}
