package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/nanofs/nanofs/lazy"
	"github.com/nanofs/nanofs/vm/artifact"
	"github.com/nanofs/nanofs/vm/content"
	"github.com/nanofs/nanofs/vm/kernel"
)

// FormatVersion is the version of what nanofs writes on a disk. It is part
// of every build-inputs digest: a nanofs that lays disks out differently
// bumps it, and artifacts built by older ones are no longer reused.
const FormatVersion = "1"

// WithPush pushes the disk built (or reused) to the registry as an OCI
// artifact at ref (REPO[:TAG]), its subject the source image's manifest
// (package artifact). Only registry sources can be pushed.
func WithPush(ref string) Option { return func(o *options) { o.push = ref } }

// WithReuse looks, before building, among the source image's referrers
// (and the push target's repository) for an artifact built from the same
// inputs, and fetches its disk instead of building.
func WithReuse(reuse bool) Option { return func(o *options) { o.reuse = reuse } }

// WithRegistryOptions say how the artifacts' registry is reached (the
// source's registry too, for finding its manifest without lazy.Open).
func WithRegistryOptions(opts ...artifact.Option) Option {
	return func(o *options) { o.registryOpts = append(o.registryOpts, opts...) }
}

// WithToolVersion is the nanofs version recorded in pushed artifacts.
func WithToolVersion(v string) Option { return func(o *options) { o.toolVersion = v } }

// ErrPushSource: only images from a registry can be pushed as artifacts.
var ErrPushSource = fmt.Errorf("only an image in a registry has a manifest an artifact can refer to")

// Published is what a build did with the registry.
type Published struct {
	Inputs string            // the build-inputs digest
	Source string            // the source image's manifest, REPO@DIGEST
	Reused string            // the artifact whose disk was fetched instead of building ("" if built)
	Pushed *artifact.Pushed  // the artifact pushed (nil if none)
	Notes  map[string]string // the annotations of the artifact pushed or reused
}

// publish is the artifact state of one build.
type publish struct {
	src    *artifact.Source
	inputs string
	kernel kernel.Kernel
}

// wantsRegistry: the build talks to the artifacts' registry.
// Packages are pushed but not reused.
func (o *options) wantsRegistry() bool { return o.push != "" || (o.reuse && o.pkg == nil) }

// prepublish resolves the source's manifest and the build-inputs digest.
// Failures other than the source's kind are left for the build to report
// in its own order (nil, nil): a build that cannot see the registry fails
// there with the usual message.
func (o *options) prepublish(ctx context.Context, source string) (*publish, error) {
	kind, err := lazy.Classify(source)
	if err != nil || kind.Kind != lazy.KindRegistry {
		if o.push != "" {
			return nil, fmt.Errorf("%s: %w", source, ErrPushSource)
		}
		return nil, nil
	}
	src, err := artifact.ResolveSource(ctx, source, lazy.PlatformOf(o.imageOpts...), o.registryOpts...)
	if err != nil {
		o.debugf("not looking for a built artifact: %v", err)
		return nil, nil
	}
	p := &publish{src: src}
	if !o.noBootloader && o.pkg == nil {
		if p.kernel, err = o.findKernel(); err != nil {
			o.debugf("not looking for a built artifact: %v", err)
			return nil, nil
		}
	}
	// The digest alone, not where it was read: mirrors of one image
	// converge on one artifact.
	if p.inputs, err = o.inputsDigest(src.Descriptor.Digest.String(), p.kernel); err != nil {
		return nil, err
	}
	return p, nil
}

// reused fetches the disk of an artifact built from the same inputs, if
// there is one; nil without.
func (o *options) reused(ctx context.Context, source string, p *publish) (*Result, error) {
	var also []string
	if o.push != "" {
		also = append(also, o.push)
	}
	found, err := artifact.Find(ctx, p.src.Ref, p.inputs, also, o.registryOpts...)
	if err != nil {
		o.logf("warning: looking for a built artifact: %v", err)
		return nil, nil
	}
	if found == nil {
		o.debugf("no artifact built from inputs %s", p.inputs)
		return nil, nil
	}
	out := o.output
	if out == "" {
		out = DefaultDiskName(source)
	}
	o.progress(Progress{Phase: PhaseWrite, Image: source})
	pulled, err := artifact.Pull(ctx, found.Ref, out, o.registryOpts...)
	if err != nil {
		return nil, err
	}
	o.logf("reused %s (built from the same inputs) instead of building", found.Ref)
	kind, _ := lazy.Classify(source)
	res := &Result{Source: kind, Image: p.src.Ref, Output: out, Kernel: p.kernel.Kernel, Config: o.config,
		Published: &Published{Inputs: p.inputs, Source: p.src.Ref, Reused: found.Ref, Notes: pulled.Annotations}}
	res.Fetched.Bytes = pulled.Bytes
	return res, nil
}

// push pushes file, the disk or package res describes.
func (o *options) pushArtifact(ctx context.Context, source string, p *publish, res *Result, file artifact.File) error {
	if res.Published == nil {
		res.Published = &Published{Inputs: p.inputs, Source: p.src.Ref}
	}
	notes := res.Published.Notes
	if notes == nil {
		args, _ := json.Marshal(res.Manifest.Arguments)
		notes = map[string]string{
			artifact.AnnotationInputs:       p.inputs,
			artifact.AnnotationSource:       p.src.Descriptor.Digest.String(),
			artifact.AnnotationSourceName:   source,
			artifact.AnnotationProgram:      res.Manifest.Program,
			artifact.AnnotationArguments:    string(args),
			artifact.AnnotationVersion:      o.toolVersion,
			artifact.AnnotationNanosVersion: p.kernel.Version,
			artifact.AnnotationFormat:       FormatVersion,
		}
		if o.toolVersion == "" {
			notes[artifact.AnnotationVersion] = "dev"
		}
		if o.pkg != nil {
			notes[artifact.AnnotationPackage] = o.pkg.name
		}
	}
	pushed, err := artifact.Write(ctx, artifact.Push{
		Target: o.push, Subject: p.src.Descriptor, Annotations: notes,
		Files: []artifact.File{file},
	}, o.registryOpts...)
	if err != nil {
		return err
	}
	res.Published.Pushed, res.Published.Notes = pushed, notes
	o.logf("pushed %s (%s)", pushed.Tag, pushed.Ref)
	return nil
}

// inputsDigest is the build-inputs digest: everything that decides the
// disk's bytes. The source manifest, every option that changes the disk,
// the content of the local files a build may add (over-approximated: any
// argument naming a host file counts), the ops config, the kernel and
// bootloader bytes, and FormatVersion. Two builds with the same digest
// write the same disk (the disk's seed is made of a subset of it).
func (o *options) inputsDigest(sourceDigest string, k kernel.Kernel) (string, error) {
	h := sha256.New()
	settings := map[string]any{
		"format": FormatVersion, "source": sourceDigest, "platform": lazy.PlatformOf(o.imageOpts...).String(),
		"entry": o.entry, "args": o.programArgs(), "argsSet": o.argsSet, "env": o.env, "includes": o.includes,
		"dns": o.dns, "workdir": o.workdir, "adds": o.adds, "overwrite": o.overwrite, "noAutoAdd": o.noAutoAdd,
		"size": o.size, "noBootloader": o.noBootloader, "config": o.config, "resolveOptions": len(o.resolveOpts),
	}
	b, err := json.Marshal(settings)
	if err != nil {
		return "", fmt.Errorf("build inputs: %w", err)
	}
	h.Write(b)
	var hosts []string
	for _, spec := range o.adds {
		a, _, err := content.ParseAdd(spec, o.cwd)
		if err != nil {
			return "", err
		}
		hosts = append(hosts, a.Src)
	}
	if !o.noAutoAdd {
		for _, a := range o.programArgs() {
			if p := hostPath(o.cwd, a); a != "" && exists(p) {
				hosts = append(hosts, p)
			}
		}
	}
	if c := o.config; c != nil {
		for _, f := range slices.Concat(c.Files, c.Dirs) {
			hosts = append(hosts, hostPath(o.cwd, f))
		}
		for _, key := range slices.Sorted(mapsKeys(c.MapDirs)) {
			hosts = append(hosts, filepath.Dir(hostPath(filepath.Dir(o.configFile), key)))
		}
	}
	for _, p := range hosts {
		if err := hashTree(h, p); err != nil {
			return "", fmt.Errorf("build inputs: %w", err)
		}
	}
	for _, f := range []string{k.Kernel, k.Boot} {
		if f == "" {
			continue
		}
		if err := hashTree(h, f); err != nil {
			return "", fmt.Errorf("build inputs: kernel: %w", err)
		}
	}
	if k.KlibDir != "" {
		for _, kl := range o.klibs() {
			fmt.Fprintf(h, "klib\x00%s\x00", kl)
			hashTree(h, filepath.Join(k.KlibDir, kl)) //nolint:errcheck // a missing klib fails the build itself
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

func mapsKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func hostPath(cwd, p string) string {
	if filepath.IsAbs(p) || cwd == "" {
		return p
	}
	return filepath.Join(cwd, p)
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// hashTree writes the names, modes, link targets and contents under root
// (links not followed) to h, in lexical order.
func hashTree(h io.Writer, root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fmt.Fprintf(h, "path\x00%s\x00%o\x00", rel, uint32(info.Mode()))
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "link\x00%s\x00", t)
		case info.Mode().IsRegular():
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			n, err := io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "\x00%d\x00", n)
		}
		return nil
	})
}

// pushedPackage makes sure the package is written as an archive (into a
// temporary directory when none was asked for) and returns what pushes it
// once written; cleanup removes the temporary archive.
func (o *options) pushedPackage(ctx context.Context, source string, p *publish, res *Result) (push func() error, cleanup func(), err error) {
	temp := ""
	if o.pkg.archive == "" {
		dir, err := os.MkdirTemp("", "nanofs-pkg-")
		if err != nil {
			return nil, nil, err
		}
		temp = dir
		o.pkg.archive = filepath.Join(dir, o.pkg.name+".tar.gz")
	}
	cleanup = func() {
		if temp != "" {
			os.RemoveAll(temp)
		}
	}
	return func() error {
		err := o.pushArtifact(ctx, source, p, res, artifact.File{Path: res.Package.Archive, MediaType: artifact.PackageMediaType})
		if temp != "" {
			res.Package.Archive, o.pkg.archive = "", ""
		}
		return err
	}, cleanup, nil
}
