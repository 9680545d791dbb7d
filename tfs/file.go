package tfs

import (
	"fmt"
	"io"
	"os"
)

// OpenFile opens the file system in the image file at name (a Nanos disk
// image or a raw TFS volume). Closing the returned io.Closer closes the
// file; the FS reads it until then.
func OpenFile(name string, opts ...OpenOption) (*FS, io.Closer, error) {
	f, size, err := openRegular(name)
	if err != nil {
		return nil, nil, err
	}
	fsys, err := Open(f, size, opts...)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	return fsys, f, nil
}

// VerifyFile is Verify of the image file at name.
func VerifyFile(name string) error {
	f, size, err := openRegular(name)
	if err != nil {
		return err
	}
	defer f.Close()
	return Verify(f, size)
}

func openRegular(name string) (*os.File, int64, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, 0, err
	}
	info, err := f.Stat()
	if err == nil && !info.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", name)
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, info.Size(), nil
}
