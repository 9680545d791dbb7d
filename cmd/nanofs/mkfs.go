package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/nanofs/nanofs/internal/tempfile"
	"github.com/nanofs/nanofs/tfs"
	"github.com/spf13/cobra"
)

func init() { verbs = append(verbs, newMkfsCmd) }

type mkfsOptions struct {
	output    string
	program   string
	args      []string
	env       []string
	cwd       string
	label     string
	seed      string
	freeSpace string
}

func newMkfsCmd(g *globals) *cobra.Command {
	var o mkfsOptions
	cmd := &cobra.Command{
		Use:   "mkfs DIR -o IMAGE",
		Short: "Write a Nanos root filesystem (TFS volume) holding the tree of a local directory",
		Long: `Write a Nanos TFS volume holding everything under DIR: directories, regular
files, symlinks and hard links (devices, FIFOs and sockets are skipped with a
warning). The root tuple gets the program to run, its arguments, environment
and working directory. The result is a raw volume, the root filesystem part of
a Nanos disk image; the same inputs always give the same bytes.

IMAGE is written to a temporary file next to it and renamed into place only
when complete.`,
		Example: `  nanofs mkfs ./rootfs -o app.img --program /bin/app -a --port -a 8080 -e HOME=/
  nanofs inspect app.img`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runMkfs(cmd, g, args[0], o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", "", "image file to write (required)")
	f.StringVar(&o.program, "program", "", "path of the program inside DIR that Nanos runs")
	f.StringArrayVarP(&o.args, "arg", "a", nil, "append an argument after the program path (repeatable)")
	f.StringArrayVarP(&o.env, "env", "e", nil, "set an environment variable, NAME=VALUE (repeatable)")
	f.StringVar(&o.cwd, "cwd", "", "initial working directory of the program")
	f.StringVar(&o.label, "label", "", fmt.Sprintf("volume label (at most %d bytes)", tfs.MaxLabelLen))
	f.StringVar(&o.seed, "seed", "", "seed the volume UUID is derived from (images differing only in UUID need different seeds)")
	f.StringVar(&o.freeSpace, "free-space", "1MiB", "free space to leave after the data for the kernel's log (e.g. 64MiB)")
	_ = cmd.MarkFlagRequired("output")
	return cmd
}

func runMkfs(cmd *cobra.Command, g *globals, dir string, o mkfsOptions) error {
	free, err := mkfsParseSize(o.freeSpace)
	if err != nil {
		return fmt.Errorf("--free-space: %w", err)
	}
	env := make(map[string]string, len(o.env))
	for _, kv := range o.env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("--env %q: want NAME=VALUE", kv)
		}
		env[k] = v
	}
	if len(o.args) > 0 && o.program == "" {
		return errors.New("--arg needs --program (the argument vector starts with the program path)")
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("source directory: %w", err)
	}
	defer root.Close()

	tempfile.RemoveStale(filepath.Dir(o.output), "."+filepath.Base(o.output)) //nolint:errcheck // best effort
	tmp, err := tempfile.Create(filepath.Dir(o.output), "."+filepath.Base(o.output))
	if err != nil {
		return fmt.Errorf("creating the image: %w", err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()

	w, err := tfs.NewWriter(tmp, tfs.WithLabel(o.label), tfs.WithSeed([]byte(o.seed)), tfs.WithFreeSpace(free))
	if err != nil {
		return err
	}
	if o.program != "" {
		program := "/" + strings.TrimLeft(o.program, "/")
		if err := w.SetProgram(program); err != nil {
			return err
		}
		if len(o.args) > 0 {
			if err := w.SetArguments(append([]string{program}, o.args...)...); err != nil {
				return err
			}
		}
	}
	if len(env) > 0 {
		if err := w.SetEnvironment(env); err != nil {
			return err
		}
	}
	if o.cwd != "" {
		if err := w.SetCwd(o.cwd); err != nil {
			return err
		}
	}
	skipped := func(name string, mode fs.FileMode) {
		g.logf("mkfs: skipping /%s: %s cannot be stored in a Nanos filesystem", name, mkfsKind(mode))
	}
	src := root.FS()
	if hide := mkfsOwnFiles(dir, o.output, tmp.Name()); len(hide) > 0 {
		g.debugf("mkfs: leaving out %v: the image being written lies inside %s", hide, dir)
		src = mkfsHiddenFS{src, hide}
	}
	if err := w.AddFS(cmd.Context(), src, skipped); err != nil {
		return fmt.Errorf("adding %s: %w", dir, err)
	}
	if err := w.Close(); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("writing the image: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("writing the image: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing the image: %w", err)
	}
	if err := os.Rename(tmp.Name(), o.output); err != nil {
		return fmt.Errorf("writing the image: %w", err)
	}
	done = true
	g.logf("wrote %s: %d bytes, UUID %s", o.output, w.Size(), tfs.FormatUUID(w.UUID()))
	return nil
}

// mkfsOwnFiles returns, relative to dir, the output image and its
// temporary file when they lie inside dir: an image must not contain itself.
func mkfsOwnFiles(dir, output, tmp string) map[string]bool {
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

// mkfsHiddenFS leaves some paths out of a directory's fs.FS.
type mkfsHiddenFS struct {
	fsys fs.FS
	hide map[string]bool
}

func (h mkfsHiddenFS) Open(name string) (fs.File, error) {
	if h.hide[name] {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return h.fsys.Open(name)
}

func (h mkfsHiddenFS) ReadDir(name string) ([]fs.DirEntry, error) {
	es, err := fs.ReadDir(h.fsys, name)
	out := es[:0]
	for _, e := range es {
		if !h.hide[path.Join(name, e.Name())] {
			out = append(out, e)
		}
	}
	return out, err
}

func (h mkfsHiddenFS) ReadLink(name string) (string, error)   { return fs.ReadLink(h.fsys, name) }
func (h mkfsHiddenFS) Lstat(name string) (fs.FileInfo, error) { return fs.Lstat(h.fsys, name) }

func mkfsKind(mode fs.FileMode) string {
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

// mkfsParseSize reads a byte count: 1048576, 512KiB, 64MiB, 1GiB (also
// K/M/G and KB/MB/GB, all powers of 1024).
func mkfsParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	shift := 0
	for _, u := range []struct {
		suffix string
		shift  int
	}{{"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"KB", 10}, {"MB", 20}, {"GB", 30}, {"K", 10}, {"M", 20}, {"G", 30}, {"B", 0}} {
		if strings.HasSuffix(t, u.suffix) {
			t, shift = strings.TrimSuffix(t, u.suffix), u.shift
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	if err != nil || n < 0 || n > (1<<62)>>shift {
		return 0, fmt.Errorf("%q is not a size (e.g. 1048576, 512KiB, 64MiB)", s)
	}
	return n << shift, nil
}
