package main

import "testing"

// The release comes once the table has been quiet for a whole tick: once
// after start-up, then once after each burst of changes, never during one.
func TestMemReleaserTicks(t *testing.T) {
	type step struct {
		changes int  // table changes during the tick's period
		release bool // whether the tick releases
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"start-up then quiet", []step{{0, true}, {0, false}, {0, false}}},
		{"changes at start delay the first release", []step{{3, false}, {2, false}, {0, true}, {0, false}}},
		{"one release per burst", []step{{0, true}, {10, false}, {0, true}, {0, false}, {1, false}, {0, true}}},
		{"a steady trickle never releases", []step{{0, true}, {1, false}, {1, false}, {1, false}, {0, true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMemReleaser()
			released := 0
			m.release = func() { released++ }
			for i, s := range tc.steps {
				for range s.changes {
					m.changed()
				}
				before := released
				if got := m.tick(); got != s.release || released-before != btoi(s.release) {
					t.Fatalf("step %d (%d changes): tick = %v (%d releases), want %v", i, s.changes, got, released-before, s.release)
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
