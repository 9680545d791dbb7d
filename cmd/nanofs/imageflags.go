package main

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"runtime"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/pflag"

	"github.com/nanofs/nanofs/lazy"
	"github.com/nanofs/nanofs/resolve"
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
}

func (f *imageFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.platform, "platform", "", "os/arch[/variant] to pick from a multi-platform image (default linux/<host architecture>)")
	fs.BoolVar(&f.insecure, "insecure", false, "allow plain HTTP and TLS certificates that do not verify (localhost registries need no flag)")
	fs.StringVar(&f.cacheDir, "cache-dir", "", "content cache directory (default $XDG_CACHE_HOME/nanofs, i.e. ~/.cache/nanofs)")
	fs.Int64Var(&f.maxExp, "max-expansion", lazy.DefaultMaxExpansion, "most times its compressed size a gzip or zstd layer may expand to (plus 64 MiB)")
	fs.StringVar(&f.maxLayer, "max-layer-size", "32G", "most bytes one layer may expand to, whatever its compressed size")
	fs.StringVar(&f.minRate, "min-rate", "", "give up on a blob read slower than this many bytes a second, after a minute's grace, e.g. 1M (default 10K; 0: never)")
}

// open opens IMAGE: a registry reference, an OCI layout directory or a
// docker-save tarball. The caller closes the image.
func (f *imageFlags) open(ctx context.Context, g *globals, ref string) (*lazy.Image, error) {
	var opts []lazy.Option
	if f.platform != "" {
		p, err := v1.ParsePlatform(f.platform)
		if err == nil && (p.OS == "" || p.Architecture == "") {
			err = errors.New("want os/arch[/variant], e.g. linux/arm64")
		}
		if err != nil {
			return nil, fmt.Errorf("--platform %q: %w", f.platform, err)
		}
		opts = append(opts, lazy.WithPlatform(*p))
	}
	if f.insecure {
		opts = append(opts, lazy.WithInsecure())
	}
	if f.cacheDir != "" {
		opts = append(opts, lazy.WithCacheDir(f.cacheDir))
	}
	// Zero values (flags not registered) keep the library's defaults.
	maxLayer := int64(0)
	if f.maxLayer != "" {
		var err error
		if maxLayer, err = parseSize(f.maxLayer); err != nil {
			return nil, fmt.Errorf("--max-layer-size: %w", err)
		}
	}
	if f.maxExp < 0 {
		return nil, fmt.Errorf("--max-expansion %d: want a positive ratio", f.maxExp)
	}
	opts = append(opts, lazy.WithMaxExpansion(f.maxExp, maxLayer))
	if f.minRate != "" {
		rate := int64(0)
		if f.minRate != "0" {
			var err error
			if rate, err = parseSize(f.minRate); err != nil {
				return nil, fmt.Errorf("--min-rate: %w", err)
			}
		}
		opts = append(opts, lazy.WithMinRate(rate, -1))
	}
	opts = append(opts, lazy.WithUserAgent(version))
	if g.showProgress() {
		// One status line on the terminal, rewritten in place, cleared when done.
		opts = append(opts, lazy.WithProgress(func(s lazy.Stats) {
			fmt.Fprintf(g.stderr, "\r\033[Kopening %s: %s fetched", ref, byteCount(s.Bytes))
		}))
		defer fmt.Fprint(g.stderr, "\r\033[K")
	}
	img, err := lazy.Open(ctx, ref, opts...)
	if err != nil {
		return nil, err
	}
	g.debugf("opened %s", img.Name())
	return img, nil
}

// reportFetched prints (with --verbose) what reading the image cost, per
// layer and in total.
func reportFetched(g *globals, img *lazy.Image) {
	st := img.Stats()
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
func byteCount(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// targetMachine is the ELF machine a program read through these flags must
// be built for: --platform's architecture, or the host's (the default
// platform, and the architecture of the kernel a disk boots).
func (f *imageFlags) targetMachine() (elf.Machine, error) {
	arch := runtime.GOARCH
	if f.platform != "" {
		p, err := v1.ParsePlatform(f.platform)
		if err != nil {
			return elf.EM_NONE, fmt.Errorf("--platform %q: %w", f.platform, err)
		}
		arch = p.Architecture
	}
	m, err := resolve.MachineForArch(arch)
	if err != nil {
		return elf.EM_NONE, fmt.Errorf("--platform %q: %w", f.platform, err)
	}
	return m, nil
}
