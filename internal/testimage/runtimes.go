package testimage

import (
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// RuntimesPackages are the Debian packages of the runtimes image: one layer
// shared by the tests of several language runtimes (installing a JRE takes
// minutes; it is cached like every Debian layer).
var RuntimesPackages = []string{"perl", "ruby", "php-cli", "default-jre-headless", "curl", "python3"}

// DebianRuntimesSpec is a debootstrap bookworm base with a layer of
// Debian's language runtimes (Perl with its modules, Ruby, PHP, a headless
// JRE, Python) and curl; no Entrypoint, CMD ["bash"] as Debian's images.
// It needs root and debootstrap.
func DebianRuntimesSpec(t testing.TB) *Spec {
	t.Helper()
	if testing.Short() {
		t.Skip("testimage: the debian-runtimes image takes minutes to build the first time; skipped under -short")
	}
	base := DebianRootfs(t)
	pkgs := DebianLayer(t, RuntimesPackages...)
	return &Spec{
		Name:   "debian-runtimes",
		Config: v1.Config{Cmd: []string{"bash"}, Env: []string{DefaultPath}},
		Layers: []LayerInput{
			{Dir: base, CreatedBy: "debootstrap --variant=minbase bookworm"},
			{Dir: pkgs, CreatedBy: "apt-get install perl ruby php-cli default-jre-headless curl python3"},
		},
	}
}
