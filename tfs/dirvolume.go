package tfs

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// DirVolume says what a volume made from a directory holds besides the
// tree: the root tuple's program, arguments, environment and working
// directory, and how the volume is written.
type DirVolume struct {
	Program   string            // path in the tree of the program Nanos runs ("": none)
	Args      []string          // arguments after the program path (need Program)
	Env       map[string]string // environment
	Cwd       string            // working directory
	Label     string
	Seed      []byte
	FreeSpace int64
	// Skipped hears of each entry a TFS cannot hold (devices, FIFOs,
	// sockets), with what it is ("a FIFO").
	Skipped func(name, what string)
	// Left hears of the paths left out because they are the output
	// itself, inside the directory.
	Left func(names []string)
}

// ParseEnv reads NAME=VALUE assignments into DirVolume.Env; a later
// assignment of a name wins.
func ParseEnv(assignments []string) (map[string]string, error) {
	env := make(map[string]string, len(assignments))
	for _, kv := range assignments {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q: want NAME=VALUE", kv)
		}
		env[k] = v
	}
	return env, nil
}

// ParseFreeSpace reads DirVolume.FreeSpace (ParseSize's grammar): below
// 1 TiB, the most the free space left for the kernel's log may be.
func ParseFreeSpace(s string) (int64, error) {
	n, err := ParseSize(s)
	if err == nil && n >= 1<<40 {
		err = fmt.Errorf("%q is too large (at most 1 TiB less a byte)", s)
	}
	if err != nil {
		return 0, fmt.Errorf("%w (e.g. 1048576, 512KiB, 64MiB)", err)
	}
	return n, nil
}

// VolumeInfo is what WriteDirVolume wrote.
type VolumeInfo struct {
	Size int64
	UUID [16]byte
}

// WriteDirVolume writes a TFS volume holding the tree under dir to out
// (through a temporary file: out appears only complete). No link in dir
// leads outside it (os.Root); out itself, when it lies inside dir, is left
// out. The same inputs always give the same bytes.
func WriteDirVolume(ctx context.Context, dir, out string, v DirVolume) (*VolumeInfo, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("source directory: %w", err)
	}
	defer root.Close()
	tmp, err := CreateOutput(out, "the image")
	if err != nil {
		return nil, err
	}
	defer tmp.Abort()
	w, err := NewWriter(tmp, WithLabel(v.Label), WithSeed(v.Seed), WithFreeSpace(v.FreeSpace))
	if err != nil {
		return nil, err
	}
	if v.Program != "" {
		program := "/" + strings.TrimLeft(v.Program, "/")
		if err := w.SetProgram(program); err != nil {
			return nil, err
		}
		if len(v.Args) > 0 {
			if err := w.SetArguments(append([]string{program}, v.Args...)...); err != nil {
				return nil, err
			}
		}
	} else if len(v.Args) > 0 {
		return nil, fmt.Errorf("arguments need a program (the argument vector starts with the program path)")
	}
	if len(v.Env) > 0 {
		if err := w.SetEnvironment(v.Env); err != nil {
			return nil, err
		}
	}
	if v.Cwd != "" {
		if err := w.SetCwd(v.Cwd); err != nil {
			return nil, err
		}
	}
	skipped := func(name string, mode fs.FileMode) {
		if v.Skipped != nil {
			v.Skipped(name, kindWord(mode))
		}
	}
	src := root.FS()
	if hide := ownFiles(dir, out, tmp.Name()); len(hide) > 0 {
		if v.Left != nil {
			names := make([]string, 0, len(hide))
			for n := range hide {
				names = append(names, n)
			}
			v.Left(names)
		}
		src = withoutFS{src, hide}
	}
	if err := w.AddFS(ctx, src, skipped); err != nil {
		return nil, fmt.Errorf("adding %s: %w", dir, err)
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	if err := tmp.Commit(); err != nil {
		return nil, err
	}
	return &VolumeInfo{Size: w.Size(), UUID: w.UUID()}, nil
}

// ownFiles returns, relative to dir, the output image and its
// temporary file when they lie inside dir: an image must not contain itself.
func ownFiles(dir, output, tmp string) map[string]bool {
	resolved := func(p string) string {
		if a, err := filepath.Abs(p); err == nil {
			p = a
		}
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		return p
	}
	rel, err := filepath.Rel(resolved(dir), resolved(filepath.Dir(output)))
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return nil
	}
	rel = filepath.ToSlash(rel)
	return map[string]bool{
		path.Join(rel, filepath.Base(output)): true,
		path.Join(rel, filepath.Base(tmp)):    true,
	}
}

// withoutFS leaves some paths out of a directory's fs.FS.
type withoutFS struct {
	fsys fs.FS
	hide map[string]bool
}

func (h withoutFS) Open(name string) (fs.File, error) {
	if h.hide[name] {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return h.fsys.Open(name)
}

func (h withoutFS) ReadDir(name string) ([]fs.DirEntry, error) {
	es, err := fs.ReadDir(h.fsys, name)
	out := es[:0]
	for _, e := range es {
		if !h.hide[path.Join(name, e.Name())] {
			out = append(out, e)
		}
	}
	return out, err
}

func (h withoutFS) ReadLink(name string) (string, error)   { return fs.ReadLink(h.fsys, name) }
func (h withoutFS) Lstat(name string) (fs.FileInfo, error) { return fs.Lstat(h.fsys, name) }

func kindWord(mode fs.FileMode) string {
	switch {
	case mode&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case mode&fs.ModeSocket != 0:
		return "a socket"
	case mode&fs.ModeCharDevice != 0:
		return "a character device"
	case mode&fs.ModeDevice != 0:
		return "a block device"
	}
	return "a " + mode.String() + " file"
}
