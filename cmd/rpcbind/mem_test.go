package main

import (
	"testing"
	"time"
)

// The release comes once a whole tick was quiet (no table change, CPU
// under quietCPU): once after start-up, then once after each burst of
// changes or of calls, never during one.
func TestMemReleaserTicks(t *testing.T) {
	type step struct {
		changes int           // table changes during the tick's period
		cpu     time.Duration // CPU used during the period
		release bool          // whether the tick releases
	}
	const busyCPU, trickle = quietCPU + time.Millisecond, quietCPU / 2
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"start-up then quiet", []step{{0, 0, true}, {0, 0, false}, {0, trickle, false}}},
		{"changes at start delay the first release", []step{{3, 0, false}, {2, 0, false}, {0, 0, true}, {0, 0, false}}},
		{"one release per burst of changes", []step{{0, 0, true}, {10, 0, false}, {0, 0, true}, {0, 0, false}, {1, 0, false}, {0, trickle, true}}},
		{"a steady trickle of changes never releases", []step{{0, 0, true}, {1, 0, false}, {1, 0, false}, {1, 0, false}, {0, 0, true}}},
		{"a burst of calls", []step{{0, 0, true}, {0, busyCPU, false}, {0, busyCPU, false}, {0, trickle, true}, {0, trickle, false}}},
		{"calls under quietCPU are quiet", []step{{0, trickle, true}, {0, trickle, false}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cpu time.Duration
			m := newMemReleaser()
			m.cpu = func() time.Duration { return cpu }
			released := 0
			m.release = func() { released++; cpu += 3 * quietCPU } // a release's own CPU is not activity
			for i, s := range tc.steps {
				for range s.changes {
					m.changed()
				}
				cpu += s.cpu
				before := released
				if got := m.tick(); got != s.release || released-before != btoi(s.release) {
					t.Fatalf("step %d %+v: tick = %v (%d releases)", i, s, got, released-before)
				}
			}
		})
	}
	var nilM *memReleaser
	nilM.changed() // a daemon built without one (tests) must not crash
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
