package main

import (
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nanofs/nanofs/lazy"
)

func init() { verbs = append(verbs, newLsCmd) }

func newLsCmd(g *globals) *cobra.Command {
	var img imageFlags
	var recursive bool
	cmd := &cobra.Command{
		Use:   "ls IMAGE [PATH]",
		Short: "List a directory of an image, like ls -l, without pulling it",
		Long: `List PATH (default /) of IMAGE like "ls -l": type and permissions, link
count, owner and group ids, size, modification time (UTC), name and symlink
target. A directory lists its entries (symbolic links to directories are
followed); anything else lists itself.

IMAGE is a registry reference (node:20, registry.example.com/app@sha256:...,
Docker Hub by default), an OCI image layout directory or a docker-save
tarball. Only the image's index is read: its manifest and config, the table of
contents of eStargz layers, and other layers in full (once: they are cached).
With --verbose the bytes fetched are reported per layer.`,
		Example: `  nanofs ls node:20 /usr/local/bin
  nanofs ls --platform linux/arm64 alpine:3.20 /etc
  nanofs ls -R ./oci-layout /app
  nanofs ls -v localhost:5000/app:latest`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := "/"
			if len(args) == 2 {
				p = args[1]
			}
			name, err := imagePath(p)
			if err != nil {
				return err
			}
			li, err := img.open(cmd.Context(), g, args[0])
			if err != nil {
				return err
			}
			defer li.Close()
			err = listImage(g, li, name, recursive)
			reportFetched(g, li.Stats())
			return err
		},
	}
	img.register(cmd.Flags())
	cmd.Flags().BoolVarP(&recursive, "recursive", "R", false, "list subdirectories too")
	return cmd
}

// imagePath turns a user's path (/etc/passwd, etc/passwd, /) into io/fs form.
func imagePath(p string) (string, error) {
	q := strings.Trim(p, "/")
	if q == "" {
		return ".", nil
	}
	if !fs.ValidPath(q) {
		return "", fmt.Errorf("invalid path %q", p)
	}
	return q, nil
}

func listImage(g *globals, img *lazy.Image, name string, recursive bool) error {
	return listTree(img, name, true, recursive, func(name, shown string, info fs.FileInfo) error {
		return lsLine(g, img, name, shown, info)
	})
}

// listTree lists name as ls -l does: anything but a directory as itself,
// a directory by its entries (shown by their names), or by everything below
// it when recursive (shown by absolute paths). With followDir a link to a
// directory lists the directory: an explicit path is the common wish.
func listTree(fsys fs.FS, name string, followDir, recursive bool, line func(name, shown string, info fs.FileInfo) error) error {
	info, err := fs.Lstat(fsys, name)
	if err != nil {
		return err
	}
	if followDir && info.Mode()&fs.ModeSymlink != 0 {
		if st, err := fs.Stat(fsys, name); err == nil && st.IsDir() {
			info = st
		}
	}
	if !info.IsDir() {
		return line(name, path.Join("/", name), info)
	}
	if !recursive {
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

// lsLine prints one file: mode, links, uid, gid, size, mtime, name.
func lsLine(g *globals, img *lazy.Image, name, shown string, info fs.FileInfo) error {
	nlink, uid, gid := uint32(1), uint32(0), uint32(0)
	size := fmt.Sprint(info.Size())
	if st, ok := info.Sys().(*lazy.Stat); ok {
		nlink, uid, gid = st.Nlink(), st.Uid(), st.Gid()
		if info.Mode()&fs.ModeDevice != 0 {
			major, minor := st.Rdev()
			size = fmt.Sprintf("%d, %d", major, minor)
		}
	}
	line := fmt.Sprintf("%s %3d %5d %5d %12s %s %s", lsMode(info.Mode()), nlink, uid, gid, size,
		info.ModTime().UTC().Format(time.DateTime[:16]), shown)
	if info.Mode()&fs.ModeSymlink != 0 {
		target, err := img.ReadLink(name)
		if err != nil {
			return err
		}
		line += " -> " + target
	}
	_, err := fmt.Fprintln(g.stdout, line)
	return err
}

// lsMode renders a mode the way ls -l does, special bits included
// (fs.FileMode.String writes them differently).
func lsMode(m fs.FileMode) string {
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
