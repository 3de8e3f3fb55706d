//go:build !linux

package systemd

import "os"

// TakeActivated finds nothing outside Linux.
func TakeActivated() *Activation { return &Activation{} }

// FromFiles refuses every file outside Linux.
func FromFiles(files []*os.File) *Activation {
	a := &Activation{}
	for _, f := range files {
		a.Refused = append(a.Refused, Refused{FD: int(f.Fd()), Name: f.Name(), Err: ErrUnsupported})
		f.Close()
	}
	return a
}
