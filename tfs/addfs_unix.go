//go:build unix

package tfs

import (
	"io/fs"
	"syscall"
)

func sysIdentity(info fs.FileInfo) (fileID, uint64, bool) {
	s, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, 0, false
	}
	return fileID{dev: uint64(s.Dev), ino: uint64(s.Ino)}, uint64(s.Nlink), true
}
