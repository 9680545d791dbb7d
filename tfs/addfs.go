package tfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
)

// AddFS adds every entry of fsys (its root becomes the volume root) in
// lexical order, so the result is deterministic: directories, regular files
// with their contents streamed, symlinks (fsys must implement
// fs.ReadLinkFS), and hard links, recognized by inode when FileInfo.Sys()
// is a *syscall.Stat_t (os.DirFS, os.Root.FS) or a *FileStat (another TFS).
// Entries TFS cannot hold — devices, FIFOs, sockets — are passed to skip,
// or are an error if skip is nil. A file whose size changes while it is
// read is an error.
func (w *Writer) AddFS(ctx context.Context, fsys fs.FS, skip func(name string, mode fs.FileMode)) error {
	seen := make(map[fileID]string)
	return fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if name == "." {
			return nil
		}
		switch mode := d.Type(); {
		case mode.IsDir():
			return w.Mkdir(name)
		case mode&fs.ModeSymlink != 0:
			target, err := fs.ReadLink(fsys, name)
			if err != nil {
				return err
			}
			return w.Symlink(target, name)
		case mode.IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			if id, nlink, ok := identity(info); ok && nlink > 1 {
				if first, dup := seen[id]; dup {
					return w.Link(first, name)
				}
				seen[id] = name
			}
			return w.addFSFile(fsys, name, info.Size())
		default:
			if skip == nil {
				return &fs.PathError{Op: "add", Path: name, Err: fmt.Errorf("%v files cannot be stored in TFS", mode.Type())}
			}
			skip(name, mode.Type())
			return nil
		}
	})
}

func (w *Writer) addFSFile(fsys fs.FS, name string, size int64) error {
	f, err := fsys.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := w.AddFile(name, size, f); err != nil {
		return err
	}
	var one [1]byte
	if n, err := io.ReadFull(f, one[:]); n > 0 {
		return &fs.PathError{Op: "add", Path: name, Err: fmt.Errorf("file grew beyond %d bytes while being read", size)}
	} else if err != nil && !errors.Is(err, io.EOF) {
		return &fs.PathError{Op: "add", Path: name, Err: err}
	}
	return nil
}

type fileID struct{ dev, ino uint64 }

// identity returns what makes two names the same file.
func identity(info fs.FileInfo) (id fileID, nlink uint64, ok bool) {
	if s, isTFS := info.Sys().(*FileStat); isTFS {
		return fileID{ino: s.Inode}, s.Nlink, true
	}
	return sysIdentity(info)
}
