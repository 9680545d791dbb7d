// Command baseline is how images are turned into unikernels today, minus
// Docker, as the benchmark's yardstick: pull the whole image (every layer,
// as `crane pull --format=oci` does), flatten it into a directory (as
// `crane export` does, then untar), find the program's closure with
// nanofs's resolver over that directory, and write the same disk image with
// nanofs's writer. It runs as its own process so that the benchmark can
// measure its peak memory and CPU time.
//
//	baseline -ref HOST/REPO:TAG -layout DIR -root DIR -out DISK [-entry PROGRAM] [-plan FILE]
//
// With an OCI layout in -layout that already holds the image (a warm run),
// nothing is pulled. It prints the time of each phase as JSON on stdout.
package main

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/nanofs/nanofs/resolve"
	"github.com/nanofs/nanofs/vm/disk"
)

// Summary is what baseline prints.
type Summary struct {
	Pulled     bool               `json:"pulled"` // false: the layout already held the image
	Phases     map[string]float64 `json:"phases"` // seconds: pull, extract, resolve, write
	Seconds    float64            `json:"seconds"`
	ImageBytes int64              `json:"image_bytes"` // compressed layers
	TreeBytes  int64              `json:"tree_bytes"`  // file bytes extracted
	TreeFiles  int                `json:"tree_files"`
	Program    string             `json:"program"`
	PlanFiles  int                `json:"plan_files"`
	PlanBytes  int64              `json:"plan_bytes"`
	DiskBytes  int64              `json:"disk_bytes"`
	Warnings   []string           `json:"warnings,omitempty"` // entries the extraction could not reproduce
}

func main() {
	var ref, layoutDir, root, out, entry, planOut string
	flag.StringVar(&ref, "ref", "", "image reference to pull")
	flag.StringVar(&layoutDir, "layout", "", "OCI layout directory the image is pulled into (reused when it holds it)")
	flag.StringVar(&root, "root", "", "directory to flatten the image into (must not exist)")
	flag.StringVar(&out, "out", "", "disk image to write")
	flag.StringVar(&entry, "entry", "", "program to build instead of the image's entrypoint (as nanofs build --entry)")
	flag.StringVar(&planOut, "plan", "", "also write the plan as JSON to this file")
	flag.Parse()
	if ref == "" || layoutDir == "" || root == "" || out == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: baseline -ref REF -layout DIR -root DIR -out DISK [-entry PROGRAM] [-plan FILE]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var opts []resolve.Option
	if entry != "" {
		opts = append(opts, resolve.WithEntry(entry))
	}
	sum, err := baseline(ctx, ref, layoutDir, root, out, planOut, opts...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "baseline: %v\n", err)
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(sum); err != nil {
		os.Exit(1)
	}
}

func baseline(ctx context.Context, ref, layoutDir, root, out, planOut string, opts ...resolve.Option) (*Summary, error) {
	sum := &Summary{Phases: map[string]float64{}}
	start := time.Now()
	phase := func(name string, t0 time.Time) { sum.Phases[name] = time.Since(t0).Seconds() }

	t0 := time.Now()
	img, pulled, err := pull(ctx, ref, layoutDir)
	if err != nil {
		return nil, err
	}
	sum.Pulled = pulled
	if pulled {
		phase("pull", t0)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	for _, l := range layers {
		n, err := l.Size()
		if err != nil {
			return nil, err
		}
		sum.ImageBytes += n
	}

	t0 = time.Now()
	if sum.TreeFiles, sum.TreeBytes, sum.Warnings, err = extract(img, root); err != nil {
		return nil, fmt.Errorf("flattening the image into %s: %w", root, err)
	}
	phase("extract", t0)

	t0 = time.Now()
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	fsys := r.FS()
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	c := cf.Config
	plan, err := resolve.Resolve(fsys, resolve.Config{Entrypoint: c.Entrypoint, Cmd: c.Cmd, Env: c.Env, WorkingDir: c.WorkingDir}, opts...)
	if err != nil {
		return nil, fmt.Errorf("resolving the program in %s: %w", root, err)
	}
	phase("resolve", t0)
	sum.Program, sum.PlanBytes = plan.Program, plan.Size()
	sum.PlanFiles = len(plan.ImageFiles())

	t0 = time.Now()
	// The same writer and settings as `nanofs build --no-bootloader`, over
	// the extracted tree instead of the lazy image.
	info, err := disk.WriteDisk(ctx, out, fsys, plan, disk.WithoutBootloader(), disk.WithParallel(8))
	if err != nil {
		return nil, err
	}
	phase("write", t0)
	sum.DiskBytes = info.Size
	sum.Seconds = time.Since(start).Seconds()

	if planOut != "" {
		f, err := os.Create(planOut)
		if err != nil {
			return nil, err
		}
		err = plan.WriteJSON(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, err
		}
	}
	return sum, nil
}

// pull returns the image from the layout, pulling it first (all layers, in
// parallel, each checked against its digest) unless the layout holds it.
func pull(ctx context.Context, ref, dir string) (v1.Image, bool, error) {
	if p, err := layout.FromPath(dir); err == nil {
		if idx, err := p.ImageIndex(); err == nil {
			if im, err := idx.IndexManifest(); err == nil && len(im.Manifests) == 1 {
				img, err := p.Image(im.Manifests[0].Digest)
				return img, false, err
			}
		}
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, false, err
	}
	img, err := remote.Image(r, remote.WithContext(ctx))
	if err != nil {
		return nil, false, fmt.Errorf("pulling %s: %w", ref, err)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return nil, false, err
	}
	if err := p.AppendImage(img); err != nil {
		return nil, false, fmt.Errorf("pulling %s: %w", ref, err)
	}
	h, err := img.Digest()
	if err != nil {
		return nil, false, err
	}
	local, err := p.Image(h)
	return local, true, err
}

// extract writes the flattened image (mutate.Extract: whiteouts applied,
// upper layers first) into dir, confined to it by os.Root. Device nodes and
// FIFOs are skipped (nothing a unikernel disk holds); ownership and times
// are not kept (the disk format has neither).
func extract(img v1.Image, dir string) (files int, bytes int64, warnings []string, err error) {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return 0, 0, nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return 0, 0, nil, err
	}
	defer root.Close()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	var dirModes []struct {
		name string
		mode fs.FileMode
	}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return files, bytes, warnings, err
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "/"))
		if name == "." || name == ".." || strings.HasPrefix(name, "../") {
			continue
		}
		// Upper layers come first, so a parent may arrive after its
		// children; it is made here and given its mode at the end.
		if d := path.Dir(name); d != "." {
			if err := root.MkdirAll(d, 0o755); err != nil {
				return files, bytes, warnings, err
			}
		}
		mode := h.FileInfo().Mode()
		switch h.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o755); err != nil {
				return files, bytes, warnings, err
			}
			dirModes = append(dirModes, struct {
				name string
				mode fs.FileMode
			}{name, mode})
		case tar.TypeReg:
			f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
			if err != nil {
				return files, bytes, warnings, err
			}
			n, err := io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return files, bytes, warnings, fmt.Errorf("%s: %w", name, err)
			}
			if err := root.Chmod(name, mode&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
				return files, bytes, warnings, err
			}
			files++
			bytes += n
		case tar.TypeSymlink:
			if err := root.Symlink(h.Linkname, name); err != nil {
				return files, bytes, warnings, err
			}
		case tar.TypeLink:
			target := path.Clean(strings.TrimPrefix(h.Linkname, "/"))
			if err := root.Link(target, name); err != nil {
				// The target can be gone: deleted or replaced by an upper
				// layer, which mutate.Extract does not follow.
				warnings = append(warnings, fmt.Sprintf("hard link %s -> %s: %v", name, target, err))
			}
		default:
			// Devices and FIFOs: not part of a unikernel disk.
		}
	}
	// Modes last: a directory made read-only early would not take its
	// children (root or not, keep the order that always works).
	for _, d := range dirModes {
		if err := root.Chmod(d.name, d.mode&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
			return files, bytes, warnings, err
		}
	}
	return files, bytes, warnings, nil
}
