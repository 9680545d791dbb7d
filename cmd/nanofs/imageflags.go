package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/nanofs/nanofs/lazy"
	"github.com/nanofs/nanofs/tfs"
	"github.com/nanofs/nanofs/vm"
	"github.com/nanofs/nanofs/vm/build"
)

// imageFlags are the flags of every verb that reads an image (ls, cat;
// mount, build and resolve can add them the same way).
type imageFlags struct {
	platform string
	insecure bool
	cacheDir string
	minRate  string
	maxExp   int64
	maxLayer string
	mirror   string
}

// envRegistryMirror names the default of --registry-mirror.
const envRegistryMirror = "NANOFS_REGISTRY_MIRROR"

func (f *imageFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.platform, "platform", "", "os/arch[/variant] to pick from a multi-platform image (default linux/<host architecture>)")
	fs.BoolVar(&f.insecure, "insecure", false, "allow plain HTTP and TLS certificates that do not verify (localhost registries need no flag)")
	fs.StringVar(&f.mirror, "registry-mirror", os.Getenv(envRegistryMirror), "registry HOST[:PORT] to fetch Docker Hub images from, as Docker's registry-mirrors (default $"+envRegistryMirror+")")
	fs.StringVar(&f.cacheDir, "cache-dir", "", "content cache directory (default $XDG_CACHE_HOME/nanofs, i.e. ~/.cache/nanofs)")
	fs.Int64Var(&f.maxExp, "max-expansion", lazy.DefaultMaxExpansion, "most times its compressed size a gzip or zstd layer may expand to (plus 64 MiB)")
	fs.StringVar(&f.maxLayer, "max-layer-size", "32G", "most bytes one layer may expand to, whatever its compressed size")
	fs.StringVar(&f.minRate, "min-rate", "", "give up on a blob read slower than this many bytes a second, after a minute's grace, e.g. 1M (default 10K; 0: never)")
}

// options are the flags as options of lazy.Open; a bad --platform,
// --max-expansion, --max-layer-size or --min-rate is reported before
// anything is opened.
func (f *imageFlags) options() ([]lazy.Option, error) {
	opts := []lazy.Option{lazy.WithUserAgent(version)}
	if f.mirror != "" {
		if err := lazy.CheckRegistryMirror(f.mirror); err != nil {
			return nil, fmt.Errorf("--registry-mirror: %w", err)
		}
		opts = append(opts, lazy.WithRegistryMirror(f.mirror))
	}
	if f.platform != "" {
		p, err := lazy.ParsePlatform(f.platform)
		if err != nil {
			return nil, fmt.Errorf("--platform %q: %w", f.platform, err)
		}
		opts = append(opts, lazy.WithPlatform(p))
	}
	// Zero values (flags not registered, as in tests) keep the library's
	// defaults.
	maxLayer := int64(0)
	if f.maxLayer != "" {
		var err error
		if maxLayer, err = tfs.ParseSize(f.maxLayer); err != nil {
			return nil, fmt.Errorf("--max-layer-size: %w", err)
		}
	}
	if f.maxExp < 0 {
		return nil, fmt.Errorf("--max-expansion %d: want a positive ratio", f.maxExp)
	}
	opts = append(opts, lazy.WithMaxExpansion(f.maxExp, maxLayer))
	if f.minRate != "" {
		rate, err := tfs.ParseSize(f.minRate)
		if err != nil {
			return nil, fmt.Errorf("--min-rate: %w", err)
		}
		opts = append(opts, lazy.WithMinRate(rate, -1))
	}
	if f.insecure {
		opts = append(opts, lazy.WithInsecure())
	}
	if f.cacheDir != "" {
		opts = append(opts, lazy.WithCacheDir(f.cacheDir))
	}
	return opts, nil
}

// open opens SOURCE as build.Open does: an image (a registry reference,
// an OCI layout directory or a docker-save tarball), a directory or a
// Nanos disk image. The caller closes it.
func (f *imageFlags) open(ctx context.Context, g *globals, ref string) (*build.Source, error) {
	opts, err := f.options()
	if err != nil {
		return nil, err
	}
	src, err := build.Open(ctx, ref, build.WithImageOptions(opts...), build.WithLog(g.logf, g.debugf), build.WithProgress(newProgress(g).Show))
	if err != nil {
		return nil, flagError(err)
	}
	return src, nil
}

// reportFetched prints (with --verbose) what reading the image cost, per
// layer and in total.
func reportFetched(g *globals, st lazy.Stats) {
	for i, l := range st.Layers {
		kind := "downloaded whole, then cached"
		if l.Lazy {
			kind = "eStargz, read lazily"
		}
		g.debugf("layer %d %s (%s): %s in %d requests", i, l.Digest, kind, byteCount(l.Bytes), l.Requests)
	}
	g.debugf("fetched %s in %d requests (%d bytes)", byteCount(st.Bytes), st.Requests, st.Bytes)
}

// byteCount renders n in binary units.
func byteCount(n int64) string { return vm.ByteCount(n) }
