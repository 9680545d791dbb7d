package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
	"github.com/nanofs/nanofs/tfs"
	"github.com/nanofs/nanofs/vm/build"
)

// TestBuildConfig builds the fixtures image with an ops config.json and
// flags over it, and reads the disk back.
func TestBuildConfig(t *testing.T) {
	fx := testimage.CFixtures(t)
	ref := fixturesRef(t)
	cache := t.TempDir()
	work := t.TempDir()
	writeTree(t, work, map[string]string{
		"ex.js": "ex", "other.js": "other", "myapp/static/index.html": "i",
		"conf/certs/a.pem": "a", "conf/certs/b.txt": "b",
	})
	t.Chdir(work)
	config := filepath.Join(work, "conf", "config.json")
	require.NoError(t, os.WriteFile(config, []byte(`{
  "Args": ["ex.js"],
  "Env": {"MODE": "config", "KEEP": "yes"},
  "Files": ["ex.js"],
  "Dirs": ["myapp/static"],
  "MapDirs": {"certs/*.pem": "/usr/lib/ssl/certs"},
  "NameServers": ["10.8.0.1"],
  "BaseVolumeSz": "64m",
  "RebootOnExit": true,
  "ManifestPassthrough": {"expected_exit_code": "3", "en1": {"mtu": "1400"}},
  "RunConfig": {"Memory": "512M", "Ports": ["8080"]},
  "Description": "a test"
}`), 0o644))
	build := func(t *testing.T, args ...string) (*tfs.FS, build.Summary, string) {
		t.Helper()
		disk := filepath.Join(t.TempDir(), "d.img")
		sum, stderr, code := buildCLI(t, append([]string{ref, "--entry", fx.Dynamic, "--no-bootloader", "--cache-dir", cache, "-o", disk, "--config", config}, args...)...)
		require.Equal(t, 0, code, stderr)
		return openDisk(t, disk), sum, stderr
	}

	t.Run("the file alone", func(t *testing.T) {
		disk, sum, stderr := build(t)
		assert.Contains(t, stderr, "warning: "+config+": ignoring Description (package metadata)")
		m := disk.Manifest()
		assert.Equal(t, tfs.Strings(fx.Dynamic, "ex.js"), m["arguments"])
		env := m["environment"].(tfs.Tuple)
		assert.Equal(t, tfs.String("config"), env["MODE"])
		assert.Equal(t, tfs.String("yes"), env["KEEP"])
		assert.Equal(t, tfs.Flag{}, m["reboot_on_exit"])
		assert.Equal(t, tfs.String("3"), m["expected_exit_code"])
		assert.Equal(t, tfs.Tuple{"mtu": tfs.String("1400")}, m["en1"])
		for name, want := range map[string]string{
			"ex.js": "ex", "myapp/static/index.html": "i", "usr/lib/ssl/certs/a.pem": "a",
		} {
			got, err := fs.ReadFile(disk, name)
			if assert.NoError(t, err, name) {
				assert.Equal(t, want, string(got))
			}
		}
		_, err := fs.Stat(disk, "usr/lib/ssl/certs/b.txt")
		assert.ErrorIs(t, err, fs.ErrNotExist, "MapDirs copies what matches only")
		assert.Equal(t, int64(64<<20), sum.DiskBytes, "BaseVolumeSz is the disk size")
		resolv, err := fs.ReadFile(disk, "etc/resolv.conf")
		require.NoError(t, err)
		assert.Contains(t, string(resolv), "nameserver 10.8.0.1")
	})

	t.Run("flags win", func(t *testing.T) {
		disk, sum, _ := build(t, "-a", "other.js", "-e", "MODE=flag", "--size", "32M", "--dns", "10.0.2.3", "--add", "other.js:/ex.js")
		m := disk.Manifest()
		assert.Equal(t, tfs.Strings(fx.Dynamic, "other.js"), m["arguments"], "-a replaces Args")
		env := m["environment"].(tfs.Tuple)
		assert.Equal(t, tfs.String("flag"), env["MODE"], "-e over Env")
		assert.Equal(t, tfs.String("yes"), env["KEEP"])
		assert.Equal(t, int64(32<<20), sum.DiskBytes)
		got, err := fs.ReadFile(disk, "ex.js")
		require.NoError(t, err)
		assert.Equal(t, "other", string(got), "--add over Files at the same path")
		_, err = fs.Stat(disk, "other.js")
		assert.NoError(t, err, "other.js as an argument is added")
	})

	t.Run("unknown key", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad.json")
		require.NoError(t, os.WriteFile(bad, []byte(`{"Fils": ["ex.js"]}`), 0o644))
		_, stderr, code := buildCLI(t, ref, "--no-bootloader", "--cache-dir", cache, "-o", filepath.Join(t.TempDir(), "d.img"), "--config", bad)
		assert.Equal(t, 1, code)
		assert.Contains(t, stderr, "--config "+bad+`: unknown key "Fils" (did you mean "Files"?)`)
	})
}
