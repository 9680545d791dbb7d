package tfs

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing n bytes of f at off to
// the disk, without waiting (sync_file_range, SYNC_FILE_RANGE_WRITE). A
// failure only loses the head start: the final sync reports real errors.
func startWriteback(f *os.File, off, n int64) {
	if n <= 0 {
		return
	}
	c, err := f.SyscallConn()
	if err != nil {
		return
	}
	c.Control(func(fd uintptr) { //nolint:errcheck // only a head start
		unix.SyncFileRange(int(fd), off, n, unix.SYNC_FILE_RANGE_WRITE) //nolint:errcheck
	})
}
