package build

import (
	"context"
	"fmt"
	"io"

	"github.com/nanofs/nanofs/vm/fslist"
)

// CopyFile writes the regular file at p (a path in the source: /etc/passwd,
// etc/passwd; links followed inside the source) to w. An image's file is
// fetched and verified whole before the first byte goes out: a corrupt
// chunk must not leave half a file behind.
func (s *Source) CopyFile(ctx context.Context, w io.Writer, p string) error {
	name, err := fslist.Path(p)
	if err != nil {
		return err
	}
	f, err := s.FS.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file (%v)", p, info.Mode().Type())
	}
	if s.Image != nil {
		if err := s.Image.Prefetch(ctx, []string{name}); err != nil {
			return fmt.Errorf("%s: %w (nothing written)", p, err)
		}
	}
	_, err = io.CopyBuffer(w, f, make([]byte, 1<<20))
	return err
}
