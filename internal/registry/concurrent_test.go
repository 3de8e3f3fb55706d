package registry

import (
	"bytes"
	"sync"
	"testing"
)

// Readers (DUMP, GETADDR, GETPORT) run while writers SET and UNSET; with
// -race this checks the locking and the shared DUMP cache. At the end the
// table must be consistent and every cached DUMP must match a fresh encoding.
func TestConcurrentReadersWriters(t *testing.T) {
	tab := New(referenceSelf())
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				prog := uint32(300000 + w*1000 + i%20)
				tab.Set(Entry{prog, 1, "udp", "0.0.0.0.3.232", "unknown"})
				tab.SetV2(prog, 2, 6, uint32(1000+i), "unknown")
				if i%3 == 0 {
					tab.Unset(prog, 1, "", "unknown")
					tab.UnsetV2(prog, 2, "unknown")
				}
			}
		}(w)
	}
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			udp := []byte("udp")
			for i := 0; i < 300; i++ {
				buf = tab.AppendDumpV2(buf[:0])
				buf = tab.AppendDumpV3(buf[:0])
				tab.GetAddr(uint32(300000+i%20), 1, udp, false)
				tab.GetPort(uint32(300000+i%20), 2, 6)
				tab.ByProgVers(100000, 4, func(Entry) {})
			}
		}()
	}
	wg.Wait()
	if err := tab.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	m := &model{list: tab.Entries()}
	if !bytes.Equal(tab.AppendDumpV2(nil), m.dumpV2()) || !bytes.Equal(tab.AppendDumpV3(nil), m.dumpV3()) {
		t.Fatal("DUMP differs from the entries")
	}
}
