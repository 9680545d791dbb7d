package tfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nanofs/nanofs/tfs/tempfile"
)

// Output is a file written under a temporary name next to its path and
// renamed over it by Commit: until then nothing appears at the path (a
// previous file there stays whole), and Abort removes every trace. Its
// errors name the path and the cause, never the temporary name. The
// temporary name carries the writer's PID (tfs/tempfile), so that the
// leftovers of a killed writer are removed by the next CreateOutput of the
// same path, and those of a live one are left alone.
type Output struct {
	*os.File
	path, what string
	done       bool
}

// CreateOutput starts writing path; what names it in errors ("disk", "the
// image").
func CreateOutput(path, what string) (*Output, error) {
	dir, prefix := filepath.Dir(path), "."+filepath.Base(path)
	tempfile.RemoveStale(dir, prefix) //nolint:errcheck // best effort: leftovers of killed writers
	f, err := tempfile.Create(dir, prefix)
	if err != nil {
		if _, derr := os.Stat(dir); derr != nil {
			return nil, fmt.Errorf("creating %s %s: the directory %s: %w", what, path, dir, cause(derr))
		}
		return nil, fmt.Errorf("creating %s %s: %w", what, path, cause(err))
	}
	return &Output{File: f, path: path, what: what}, nil
}

// Commit makes the file readable by all (0644), syncs, closes and renames
// it over the path.
func (o *Output) Commit() error {
	if err := o.Chmod(0o644); err != nil {
		return o.fail(err)
	}
	if err := o.Sync(); err != nil {
		return o.fail(err)
	}
	if err := o.File.Close(); err != nil {
		return o.fail(err)
	}
	if err := os.Rename(o.Name(), o.path); err != nil {
		return o.fail(err)
	}
	o.done = true
	return nil
}

func (o *Output) fail(err error) error {
	o.Abort()
	return fmt.Errorf("writing %s %s: %w", o.what, o.path, cause(err))
}

// Abort drops the file, unless committed; it is safe to defer.
func (o *Output) Abort() {
	if o.done {
		return
	}
	o.done = true
	o.File.Close()
	os.Remove(o.Name())
}

// cause is the error without the path a *fs.PathError or *os.LinkError
// adds (the temporary name).
func cause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}
