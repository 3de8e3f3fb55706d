package guard

import (
	"os"
	"strconv"
)

func osPid() int { return os.Getpid() }

func itoa(n int) string { return strconv.Itoa(n) }
