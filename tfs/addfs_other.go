//go:build !unix

package tfs

import "io/fs"

func sysIdentity(fs.FileInfo) (fileID, uint64, bool) { return fileID{}, 0, false }
