// Package fslist lists the files of any io/fs.FS the way ls -l does: an
// image read lazily, a Nanos disk's root filesystem, a directory. It owns
// the line formats of `nanofs ls` and `nanofs inspect` and reads what a
// FileInfo's Sys carries beyond io/fs (links, owner, device numbers) from
// the file systems nanofs opens.
//
// It must not import the CLI or vm/*.
package fslist

import (
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"syscall"
	"time"

	"github.com/nanofs/nanofs/lazy"
	"github.com/nanofs/nanofs/tfs"
)

// Format is the shape of a listing's lines.
type Format int

const (
	// Long is ls -l: mode, links, owner and group ids, size (a device: its
	// major and minor numbers), modification time (UTC), name and link
	// target.
	Long Format = iota
	// Brief is mode, links, size, absolute path and link target.
	Brief
)

// Options say what a listing shows.
type Options struct {
	Format Format
	// FollowDir lists the directory a link to a directory leads to: an
	// explicit path is the common wish.
	FollowDir bool
	// Recursive lists everything below a directory, by absolute paths,
	// instead of its entries by their names.
	Recursive bool
}

// Path turns a user's path (/etc/passwd, etc/passwd, /) into io/fs form.
func Path(p string) (string, error) {
	q := strings.Trim(p, "/")
	if q == "" {
		return ".", nil
	}
	if !fs.ValidPath(q) {
		return "", fmt.Errorf("invalid path %q", p)
	}
	return q, nil
}

// List writes name's listing to w: anything but a directory as itself, a
// directory by its entries, or by everything below it (o.Recursive).
func List(w io.Writer, fsys fs.FS, name string, o Options) error {
	line := func(name, shown string, info fs.FileInfo) error {
		s, err := lineOf(fsys, name, shown, info, o.Format)
		if err == nil {
			_, err = fmt.Fprintln(w, s)
		}
		return err
	}
	info, err := fs.Lstat(fsys, name)
	if err != nil {
		return err
	}
	if o.FollowDir && info.Mode()&fs.ModeSymlink != 0 {
		if st, err := fs.Stat(fsys, name); err == nil && st.IsDir() {
			info = st
		}
	}
	if !info.IsDir() {
		return line(name, path.Join("/", name), info)
	}
	if !o.Recursive {
		entries, err := fs.ReadDir(fsys, name)
		if err != nil {
			return err
		}
		for _, e := range entries {
			info, err := e.Info()
			if err != nil {
				return err
			}
			if err := line(path.Join(name, e.Name()), e.Name(), info); err != nil {
				return err
			}
		}
		return nil
	}
	return fs.WalkDir(fsys, name, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return line(p, path.Join("/", p), info)
	})
}

// lineOf is the line of one file, name in fsys, shown as shown.
func lineOf(fsys fs.FS, name, shown string, info fs.FileInfo, f Format) (string, error) {
	st := statOf(info)
	var line string
	switch f {
	case Brief:
		line = fmt.Sprintf("%s %3d %12d %s", Mode(info.Mode()), st.nlink, info.Size(), shown)
	default:
		size := fmt.Sprint(info.Size())
		if st.dev && info.Mode()&fs.ModeDevice != 0 {
			size = fmt.Sprintf("%d, %d", st.major, st.minor)
		}
		line = fmt.Sprintf("%s %3d %5d %5d %12s %s %s", Mode(info.Mode()), st.nlink, st.uid, st.gid, size,
			info.ModTime().UTC().Format(time.DateTime[:16]), shown)
	}
	if info.Mode()&fs.ModeSymlink != 0 {
		target, err := fs.ReadLink(fsys, name)
		if err != nil {
			return "", err
		}
		line += " -> " + target
	}
	return line, nil
}

// stat is what a listing shows beyond io/fs.
type stat struct {
	nlink        uint64
	uid, gid     uint32
	dev          bool // major and minor are known
	major, minor uint32
}

func statOf(info fs.FileInfo) stat {
	st := stat{nlink: 1}
	switch s := info.Sys().(type) {
	case *lazy.Stat:
		st.nlink, st.uid, st.gid, st.dev = uint64(s.Nlink()), s.Uid(), s.Gid(), true
		st.major, st.minor = s.Rdev()
	case *tfs.FileStat:
		st.nlink = s.Nlink
	case *syscall.Stat_t: // a directory on the host
		st.nlink, st.uid, st.gid = uint64(s.Nlink), s.Uid, s.Gid
	}
	return st
}

// Mode renders a mode the way ls -l does, special bits included
// (fs.FileMode.String writes them differently).
func Mode(m fs.FileMode) string {
	b := []byte("?rwxrwxrwx")
	switch m.Type() {
	case 0:
		b[0] = '-'
	case fs.ModeDir:
		b[0] = 'd'
	case fs.ModeSymlink:
		b[0] = 'l'
	case fs.ModeNamedPipe:
		b[0] = 'p'
	case fs.ModeSocket:
		b[0] = 's'
	case fs.ModeDevice | fs.ModeCharDevice:
		b[0] = 'c'
	case fs.ModeDevice:
		b[0] = 'b'
	}
	for i := range 9 {
		if m&(1<<uint(8-i)) == 0 {
			b[1+i] = '-'
		}
	}
	special := func(bit fs.FileMode, at int, set, unset byte) {
		if m&bit == 0 {
			return
		}
		if b[at] == '-' {
			b[at] = unset
		} else {
			b[at] = set
		}
	}
	special(fs.ModeSetuid, 3, 's', 'S')
	special(fs.ModeSetgid, 6, 's', 'S')
	special(fs.ModeSticky, 9, 't', 'T')
	return string(b)
}
