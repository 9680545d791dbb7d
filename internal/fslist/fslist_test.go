package fslist

import (
	"io/fs"
	"testing"

	"github.com/stretchr/testify/assert"
)

// modeOf builds an fs.FileMode from unix permission bits plus special bits
// and, in bit 31, the directory flag.
func modeOf(m uint32) fs.FileMode {
	out := fs.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		out |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		out |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		out |= fs.ModeSticky
	}
	if m&(1<<31) != 0 {
		out |= fs.ModeDir
	}
	return out
}

func TestMode(t *testing.T) {
	for _, tc := range []struct {
		mode uint32
		want string
	}{
		{0o755, "-rwxr-xr-x"},
		{0o4755 | 1<<31, "drwsr-xr-x"},
		{0o2644, "-rw-r-Sr--"},
		{0o1777 | 1<<31, "drwxrwxrwt"},
		{0o1776 | 1<<31, "drwxrwxrwT"},
	} {
		m := modeOf(tc.mode)
		assert.Equal(t, tc.want, Mode(m), "%o", tc.mode)
	}
}
