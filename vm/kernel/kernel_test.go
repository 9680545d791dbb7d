package kernel

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// installRelease lays out a release directory (img, boot.img,
// klibs/) as the cache and ops keep them.
func installRelease(t *testing.T, dir string, withBoot bool) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "klibs"), 0o755))
	kb, err := os.ReadFile(testELF(t))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, KernelFile), kb, 0o644))
	if withBoot {
		writeBootImage(t, dir, probeStage1, 2)
	}
}

func envOf(m map[string]string) KernelOption {
	return WithGetenv(func(k string) string { return m[k] })
}

func TestFindKernelOrder(t *testing.T) {
	root := t.TempDir()
	cache := filepath.Join(root, "cache")
	ops := filepath.Join(root, "ops")
	flagDir := filepath.Join(root, "flag")
	envDir := filepath.Join(root, "env")
	for _, d := range []string{flagDir, envDir} {
		installRelease(t, d, true)
	}
	installRelease(t, filepath.Join(cache, "0.1.9"), true)
	installRelease(t, filepath.Join(cache, "0.1.10"), true) // newer than 0.1.9 numerically
	installRelease(t, filepath.Join(cache, "0.1.10-arm"), false)
	installRelease(t, filepath.Join(ops, "0.1.50"), true)
	installRelease(t, filepath.Join(ops, "0.1.51"), true)
	require.NoError(t, os.WriteFile(filepath.Join(ops, "latest.txt"), []byte("0.1.50\n"), 0o644))
	env := map[string]string{EnvKernel: filepath.Join(envDir, KernelFile), EnvBoot: filepath.Join(envDir, BootFile)}
	flags := WithKernelFiles(filepath.Join(flagDir, KernelFile), filepath.Join(flagDir, BootFile))
	dirs := []KernelOption{WithCacheDir(cache), WithOpsHome(ops), WithArch("amd64")}

	tests := []struct {
		name              string
		opts              []KernelOption
		kernel, boot, src string
		version           string
	}{
		{"flags first", []KernelOption{flags, envOf(env)}, flagDir, flagDir, "flag", ""},
		{"env next", []KernelOption{envOf(env)}, envDir, envDir, "env", ""},
		{"newest cached", []KernelOption{envOf(nil)}, filepath.Join(cache, "0.1.10"), filepath.Join(cache, "0.1.10"), "cache", "0.1.10"},
		{"cached version", []KernelOption{envOf(nil), WithVersion("0.1.9")}, filepath.Join(cache, "0.1.9"), filepath.Join(cache, "0.1.9"), "cache", "0.1.9"},
		{"ops version", []KernelOption{envOf(nil), WithVersion("0.1.51")}, filepath.Join(ops, "0.1.51"), filepath.Join(ops, "0.1.51"), "ops", "0.1.51"},
		{"explicit kernel, boot from env", []KernelOption{WithKernelFiles(filepath.Join(flagDir, KernelFile), ""), envOf(env)}, flagDir, envDir, "flag", ""},
		{"explicit boot, kernel from cache", []KernelOption{WithKernelFiles("", filepath.Join(flagDir, BootFile)), envOf(nil)}, filepath.Join(cache, "0.1.10"), flagDir, "cache", "0.1.10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := FindKernel(append(dirs, tt.opts...)...)
			require.NoError(t, err)
			assert.Equal(t, filepath.Join(tt.kernel, KernelFile), k.Kernel)
			assert.Equal(t, filepath.Join(tt.boot, BootFile), k.Boot)
			assert.Equal(t, tt.src, k.Source)
			assert.Equal(t, tt.version, k.Version)
		})
	}

	t.Run("ops latest.txt", func(t *testing.T) {
		k, err := FindKernel(WithCacheDir(filepath.Join(root, "empty")), WithOpsHome(ops), envOf(nil), WithArch("amd64"))
		require.NoError(t, err)
		assert.Equal(t, filepath.Join(ops, "0.1.50", KernelFile), k.Kernel)
		assert.Equal(t, filepath.Join(ops, "0.1.50", "klibs"), k.KlibDir)
		assert.Equal(t, "ops", k.Source)
	})
	t.Run("OPS_HOME", func(t *testing.T) {
		home := filepath.Join(root, "opshome")
		installRelease(t, filepath.Join(home, ".ops", "0.1.7"), true)
		k, err := FindKernel(WithCacheDir(filepath.Join(root, "empty")), envOf(map[string]string{"OPS_HOME": home}), WithArch("amd64"))
		require.NoError(t, err)
		assert.Equal(t, filepath.Join(home, ".ops", "0.1.7", KernelFile), k.Kernel)
	})
	t.Run("arm64 suffix", func(t *testing.T) {
		_, err := FindKernel(WithCacheDir(cache), WithOpsHome(filepath.Join(root, "none")), envOf(nil), WithArch("arm64"))
		// The cached arm64 kernel is the x86-64 test ELF: found, then refused.
		require.ErrorContains(t, err, "not an arm64 kernel")
	})
}

func TestFindKernelErrors(t *testing.T) {
	root := t.TempDir()
	empty := []KernelOption{WithCacheDir(filepath.Join(root, "c")), WithOpsHome(filepath.Join(root, "o")), envOf(nil), WithArch("amd64")}

	_, err := FindKernel(empty...)
	require.ErrorIs(t, err, ErrNoKernel)
	for _, hint := range []string{"nanofs kernel fetch", EnvKernel, EnvBoot, FilesAsOptions, "ops"} {
		assert.Contains(t, err.Error(), hint)
	}

	text := filepath.Join(root, "kernel.img")
	require.NoError(t, os.WriteFile(text, []byte("#!/bin/sh\necho not a kernel\n"), 0o644))
	_, err = FindKernel(append(empty, WithKernelFiles(text, ""))...)
	require.ErrorContains(t, err, "not an ELF")

	_, err = FindKernel(append(empty, WithKernelFiles(filepath.Join(root, "missing"), ""))...)
	require.ErrorIs(t, err, os.ErrNotExist)

	badBoot := filepath.Join(root, "boot.img")
	require.NoError(t, os.WriteFile(badBoot, make([]byte, 512), 0o644))
	_, err = FindKernel(append(empty, WithKernelFiles(testELF(t), badBoot))...)
	require.ErrorContains(t, err, "55 AA")

	_, err = FindKernel(append(empty, WithVersion("../../etc"))...)
	require.ErrorContains(t, err, "invalid Nanos version")
	_, err = FindKernel(append(empty, WithArch("riscv64"))...)
	require.ErrorContains(t, err, "amd64 and arm64")

	// Only a kernel, no boot.img anywhere: found, Boot empty (enough for
	// direct boot).
	k, err := FindKernel(append(empty, WithKernelFiles(testELF(t), ""))...)
	require.NoError(t, err)
	assert.Empty(t, k.Boot)
}
