package lazy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// SourceKind is what a reference names: where an image (or a root
// filesystem) is read from.
type SourceKind int

// The kinds of sources. Open reads the first three; a Nanos disk image
// (read with tfs) and a plain directory (a root filesystem as it is, such
// as a nanofs mount) are for the callers that take them too.
const (
	KindRegistry      SourceKind = iota // a registry reference, e.g. node:16.3.0
	KindOCILayout                       // an OCI image layout directory
	KindDockerArchive                   // a `docker save` tarball
	KindDisk                            // a regular file that is not a tarball: a Nanos disk image
	KindDirectory                       // a plain directory: a root filesystem
)

func (k SourceKind) String() string {
	switch k {
	case KindRegistry:
		return "registry reference"
	case KindOCILayout:
		return "OCI image layout"
	case KindDockerArchive:
		return "docker-save tarball"
	case KindDisk:
		return "disk image"
	case KindDirectory:
		return "directory"
	}
	return fmt.Sprintf("SourceKind(%d)", int(k))
}

// Source is a classified reference.
type Source struct {
	Kind SourceKind
	// Ref is the reference as given; Path is the local path (without an
	// oci: or docker-archive: prefix) for every kind but KindRegistry.
	Ref, Path string
}

// IsImage reports whether Open reads the source.
func (s Source) IsImage() bool {
	return s.Kind == KindRegistry || s.Kind == KindOCILayout || s.Kind == KindDockerArchive
}

// ErrNoSuchSource: a reference that names a local path (it starts with
// "/" or ".") names nothing there, or is neither a local path nor a valid
// registry reference.
var ErrNoSuchSource = errors.New("no such image")

// Classify says what kind of source ref is. It is the one place that
// decides it: a prefix (oci:, docker-archive:) says so outright; an
// existing directory is an OCI layout when it holds index.json or
// oci-layout and a plain root filesystem otherwise; an existing regular
// file is a docker-save tarball when it starts like a tar archive and a
// disk image otherwise; anything else must parse as a registry reference.
func Classify(ref string) (Source, error) {
	switch {
	case strings.HasPrefix(ref, PrefixOCILayout):
		return Source{Kind: KindOCILayout, Ref: ref, Path: strings.TrimPrefix(ref, PrefixOCILayout)}, nil
	case strings.HasPrefix(ref, PrefixDockerArchive):
		return Source{Kind: KindDockerArchive, Ref: ref, Path: strings.TrimPrefix(ref, PrefixDockerArchive)}, nil
	}
	fi, err := os.Stat(ref)
	switch {
	case err == nil && fi.IsDir() && IsLayout(ref):
		return Source{Kind: KindOCILayout, Ref: ref, Path: ref}, nil
	case err == nil && fi.IsDir():
		return Source{Kind: KindDirectory, Ref: ref, Path: ref}, nil
	case err == nil && fi.Mode().IsRegular() && isTar(ref):
		return Source{Kind: KindDockerArchive, Ref: ref, Path: ref}, nil
	case err == nil && fi.Mode().IsRegular():
		return Source{Kind: KindDisk, Ref: ref, Path: ref}, nil
	case err == nil:
		return Source{}, fmt.Errorf("%s is a %v, not an image, a directory or a disk image file", ref, fi.Mode().Type())
	case looksLikePath(ref):
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return Source{}, &NoSourceError{Ref: ref, Err: err}
	}
	if _, perr := name.ParseReference(ref); perr != nil {
		return Source{}, &NoSourceError{Ref: ref, Err: perr}
	}
	return Source{Kind: KindRegistry, Ref: ref}, nil
}

// IsLayout reports whether dir is an OCI image layout: it holds index.json
// (what go-containerregistry reads) or the oci-layout marker file.
func IsLayout(dir string) bool {
	for _, marker := range []string{"index.json", "oci-layout"} {
		if _, err := os.Stat(filepath.Join(dir, marker)); err == nil {
			return true
		}
	}
	return false
}

// isTar reports whether the file starts like a tar archive (the ustar
// magic at offset 257), as a docker-save tarball does.
func isTar(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	magic := make([]byte, 5)
	if _, err := f.ReadAt(magic, 257); err != nil {
		return false
	}
	return string(magic) == "ustar"
}

// NoSourceError says that a reference names nothing nanofs can read; it
// is ErrNoSuchSource to errors.Is.
type NoSourceError struct {
	Ref string
	Err error // why: the path's error, or the reference's parse error
}

func (e *NoSourceError) Error() string {
	return fmt.Sprintf("%q is not a local OCI layout directory or docker-save tarball, nor an image reference: %v", e.Ref, e.Err)
}

func (e *NoSourceError) Unwrap() []error { return []error{ErrNoSuchSource, e.Err} }
