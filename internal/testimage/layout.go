package testimage

import (
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// RefNameAnnotation names an image inside an OCI layout's index.json.
const RefNameAnnotation = "org.opencontainers.image.ref.name"

// WriteOCILayout writes img as an OCI image layout directory (index.json
// with one manifest, tagged "latest") in a temp dir and returns the dir.
func WriteOCILayout(t testing.TB, img v1.Image) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "oci")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatalf("testimage: creating OCI layout: %v", err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{RefNameAnnotation: "latest"})); err != nil {
		t.Fatalf("testimage: writing OCI layout: %v", err)
	}
	return dir
}

// WriteOCILayoutIndex writes a multi-platform index as an OCI layout.
func WriteOCILayoutIndex(t testing.TB, idx v1.ImageIndex) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "oci")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatalf("testimage: creating OCI layout: %v", err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{RefNameAnnotation: "latest"})); err != nil {
		t.Fatalf("testimage: writing OCI layout: %v", err)
	}
	return dir
}

// WriteDockerTarball writes img as a `docker save` style tarball tagged
// ref (e.g. "example.com/app:1") in a temp dir and returns the file.
func WriteDockerTarball(t testing.TB, ref string, img v1.Image) string {
	t.Helper()
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatalf("testimage: %v", err)
	}
	file := filepath.Join(t.TempDir(), "image.tar")
	if err := tarball.WriteToFile(file, tag, img); err != nil {
		t.Fatalf("testimage: writing docker tarball: %v", err)
	}
	return file
}
