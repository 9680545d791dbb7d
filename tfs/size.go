package tfs

import (
	"fmt"
	"strings"
)

// ParseSize reads a byte count: a number with an optional binary unit,
// K, M, G or T, optionally followed by "i" and "B", in any case (512M,
// 2GiB, 100m, 1048576). It is the one size grammar of nanofs: disk sizes,
// ops's BaseVolumeSz and mkfs sizes and, through vm.ParseMemory, guest memory. Zero is accepted; callers that need
// a positive size say so.
func ParseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(t, "B")
	t = strings.TrimSuffix(t, "I")
	shift := 0
	if t != "" {
		switch t[len(t)-1] {
		case 'K':
			shift = 10
		case 'M':
			shift = 20
		case 'G':
			shift = 30
		case 'T':
			shift = 40
		}
		if shift != 0 {
			t = strings.TrimSpace(t[:len(t)-1])
		}
	}
	var n int64
	if _, err := fmt.Sscanf(t, "%d", &n); err != nil || n < 0 || fmt.Sprint(n) != t {
		return 0, fmt.Errorf("%q is not a size like 512M or 2G", s)
	}
	if n > (1<<62)>>shift {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n << shift, nil
}
