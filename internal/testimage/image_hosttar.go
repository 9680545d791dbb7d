package testimage

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"

	"github.com/nanofs/nanofs/tfs/fspath"
)

// writeHostTar writes the layer tar of a scanned host tree the way docker
// and containerd do for an overlayfs upper directory: whiteout devices
// become .wh.NAME files, opaque directories get a .wh..wh..opq file, the
// second and later names of an inode become tar hard links to the first.
// Times are Epoch unless keepMTimes; ownership and xattrs are kept, user and
// group names left empty (they would depend on the host's user database).
func writeHostTar(w io.Writer, items []layerItem, keepMTimes bool) error {
	tw := tar.NewWriter(w)
	firstName := map[string]string{} // linkID -> first path written
	for _, it := range items {
		h := &tar.Header{ModTime: Epoch}
		if keepMTimes && !it.mtime.IsZero() {
			h.ModTime = it.mtime
		}
		switch it.kind {
		case itemWhiteout:
			h.Typeflag, h.Name = tar.TypeReg, path.Join(path.Dir(it.path), WhiteoutPrefix+path.Base(it.path))
		case itemOpaque:
			h.Typeflag, h.Name = tar.TypeReg, path.Join(it.path, OpaqueMarker)
		case itemNode:
			n := it.node
			h.Name, h.Mode, h.Uid, h.Gid = it.path, int64(fspath.UnixMode(n.Mode)), n.UID, n.GID
			for k, v := range it.xattrs {
				if h.PAXRecords == nil {
					h.PAXRecords = map[string]string{}
				}
				h.PAXRecords["SCHILY.xattr."+k] = v
			}
			switch t := n.Mode.Type(); {
			case t == fs.ModeDir:
				h.Typeflag, h.Name = tar.TypeDir, it.path+"/"
			case t == 0 && firstName[it.linkID] != "":
				h.Typeflag, h.Linkname = tar.TypeLink, firstName[it.linkID]
			case t == 0:
				h.Typeflag, h.Size = tar.TypeReg, n.Size
				if it.linkID != "" {
					firstName[it.linkID] = it.path
				}
			case t == fs.ModeSymlink:
				h.Typeflag, h.Linkname = tar.TypeSymlink, n.Target
			case t == fs.ModeNamedPipe:
				h.Typeflag = tar.TypeFifo
			case t == fs.ModeDevice|fs.ModeCharDevice, t == fs.ModeDevice:
				h.Typeflag = tar.TypeBlock
				if t&fs.ModeCharDevice != 0 {
					h.Typeflag = tar.TypeChar
				}
				if _, err := fmt.Sscanf(n.Dev, "%d:%d", &h.Devmajor, &h.Devminor); err != nil {
					return fmt.Errorf("%s: device number %q: %w", it.abs, n.Dev, err)
				}
			default:
				return fmt.Errorf("%s: cannot put file type %v in a tar", it.abs, t)
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("tar header for %s: %w", it.abs, err)
		}
		if h.Typeflag == tar.TypeReg && h.Size > 0 {
			if err := copyHostFile(tw, it.abs, h.Size); err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("closing tar: %w", err)
	}
	return nil
}

// copyHostFile copies exactly size bytes of a file that was scanned
// earlier; a file that changed size since is an error, not a corrupt tar.
func copyHostFile(w io.Writer, name string, size int64) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(w, io.LimitReader(f, size+1))
	if err != nil {
		return fmt.Errorf("copying %s: %w", name, err)
	}
	if n != size {
		return fmt.Errorf("%s changed while being archived: %d bytes, scanned %d", name, n, size)
	}
	return nil
}
