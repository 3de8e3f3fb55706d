//go:build !linux

package ifaddr

import "errors"

func (c *Cache) watch() error { return errors.New("ifaddr: no address notifications on this system") }
