package kernel

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// DefaultReleaseURL is the base URL of official Nanos releases, the one ops
// downloads from (ops: lepton/const.go). A release is
// <base><version>/nanos-release-linux-<version>.tar.gz (with "-virt" before
// ".tar.gz" for arm64), and <base>latest.txt names the latest version.
const DefaultReleaseURL = "https://storage.googleapis.com/nanos/release/"

// EnvReleaseURL overrides DefaultReleaseURL (a mirror, or a test server).
const EnvReleaseURL = "NANOFS_RELEASE_URL"

// releaseMeta is written next to a fetched release: where it came from.
const releaseMeta = "nanofs-release.json"

// Limits on what an archive may expand to; a Nanos release is a few tens
// of MiB.
const (
	maxReleaseBytes   = 1 << 30
	maxReleaseEntries = 10000
)

// httpDoer is the part of *http.Client Fetch uses.
type httpDoer interface {
	Do(*http.Request) (*http.Response, error)
}

// WithReleaseURL replaces the release base URL (default: NANOFS_RELEASE_URL,
// else DefaultReleaseURL).
func WithReleaseURL(base string) KernelOption {
	return func(c *kernelConfig) { c.releaseURL = base }
}

// WithSHA256 makes Fetch check the release archive against this hex SHA-256
// digest. Official releases publish none (ops verifies none either), so by
// default Fetch checks what it can: the archive's gzip checksum, its tar
// structure, and that img and boot.img are a valid kernel and boot
// image.
func WithSHA256(digest string) KernelOption {
	return func(c *kernelConfig) { c.sha256 = strings.ToLower(digest) }
}

// WithForce makes Fetch download even when the version is already cached.
func WithForce() KernelOption { return func(c *kernelConfig) { c.force = true } }

// WithHTTPClient replaces the HTTP client (default: one that fails fast when
// the host cannot be reached).
func WithHTTPClient(client *http.Client) KernelOption {
	return func(c *kernelConfig) { c.client = client }
}

// WithProgress is called as the archive downloads (total is -1 when the
// server does not say).
func WithProgress(f func(done, total int64)) KernelOption {
	return func(c *kernelConfig) { c.progress = f }
}

// ReleaseURL returns the archive URL of a release version for goarch.
func ReleaseURL(base, version, goarch string) string {
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	name := "nanos-release-linux-" + version
	if goarch == "arm64" {
		name += "-virt"
	}
	return base + version + "/" + name + ".tar.gz"
}

// Fetch downloads an official Nanos release for the platform into the
// nanofs cache (<cache>/<version>[-arm]/ with img, boot.img and
// klibs/) and returns it. The archive is verified while it streams in (see
// WithSHA256), extracted into a temporary directory, checked, and renamed
// into place, so the cache never holds a partial release. An already cached
// version is returned without network access unless WithForce. Without
// network the error says how to supply the files instead.
func Fetch(ctx context.Context, opts ...KernelOption) (Kernel, error) {
	c, err := newKernelConfig(opts)
	if err != nil {
		return Kernel{}, err
	}
	base := c.releaseURL
	if base == "" {
		base = c.getenv(EnvReleaseURL)
	}
	if base == "" {
		base = DefaultReleaseURL
	}
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	if c.client == nil {
		c.client = fastFailClient()
	}
	if c.sha256 != "" {
		if b, err := hex.DecodeString(c.sha256); err != nil || len(b) != sha256.Size {
			return Kernel{}, fmt.Errorf("invalid SHA-256 digest %q", c.sha256)
		}
	}

	version := c.version
	if version == "" {
		if version, err = latestVersion(ctx, c, base); err != nil {
			return Kernel{}, c.noNetwork(err)
		}
	}
	dir := filepath.Join(c.cacheDir, version+archSuffix(c.arch))
	if !c.force {
		if k, ok := releaseDir(dir, version, "cache"); ok {
			if err := checkRelease(k, c.arch); err == nil {
				return k, nil
			}
		}
	}

	url := ReleaseURL(base, version, c.arch)
	if err := os.MkdirAll(c.cacheDir, 0o755); err != nil {
		return Kernel{}, fmt.Errorf("creating the release cache: %w", err)
	}
	tmp, err := os.MkdirTemp(c.cacheDir, ".fetch-"+version+"-*")
	if err != nil {
		return Kernel{}, fmt.Errorf("creating the release cache: %w", err)
	}
	defer os.RemoveAll(tmp)

	digest, err := download(ctx, c, url, tmp)
	if err != nil {
		return Kernel{}, c.noNetwork(err)
	}
	if c.sha256 != "" && digest != c.sha256 {
		return Kernel{}, fmt.Errorf("release %s: SHA-256 %s, want %s; nothing was cached", url, digest, c.sha256)
	}
	// Old releases call the kernel stage3.img; ops renames it, so do we.
	if _, err := os.Stat(filepath.Join(tmp, KernelFile)); errors.Is(err, os.ErrNotExist) {
		if err := os.Rename(filepath.Join(tmp, "stage3.img"), filepath.Join(tmp, KernelFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return Kernel{}, err
		}
	}
	k, ok := releaseDir(tmp, version, "cache")
	if !ok {
		return Kernel{}, fmt.Errorf("release %s holds no %s; nothing was cached", url, KernelFile)
	}
	if err := checkRelease(k, c.arch); err != nil {
		return Kernel{}, fmt.Errorf("release %s: %w; nothing was cached", url, err)
	}
	meta, _ := json.MarshalIndent(map[string]string{"url": url, "sha256": digest, "version": version}, "", "  ")
	if err := os.WriteFile(filepath.Join(tmp, releaseMeta), append(meta, '\n'), 0o644); err != nil {
		return Kernel{}, err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return Kernel{}, err
	}
	if err := replaceDir(tmp, dir); err != nil {
		// Another nanofs may have cached the same release meanwhile.
		if k, ok := releaseDir(dir, version, "cache"); ok && checkRelease(k, c.arch) == nil {
			return k, nil
		}
		return Kernel{}, fmt.Errorf("caching the release: %w", err)
	}
	k, _ = releaseDir(dir, version, "cache")
	return k, nil
}

// checkRelease validates the files of a release directory.
func checkRelease(k Kernel, goarch string) error {
	if err := CheckELF(k.Kernel, goarch); err != nil {
		return err
	}
	if goarch == "amd64" {
		if k.Boot == "" {
			return fmt.Errorf("no %s", BootFile)
		}
		if _, err := ReadBootImage(k.Boot); err != nil {
			return err
		}
	}
	return nil
}

// replaceDir renames src to dst, moving an existing dst (a forced
// re-fetch) aside first and removing it afterwards.
func replaceDir(src, dst string) error {
	err := os.Rename(src, dst)
	if err == nil {
		return nil
	}
	if _, statErr := os.Stat(dst); statErr != nil {
		return err
	}
	old := dst + ".old-" + filepath.Base(src)
	if err := os.Rename(dst, old); err != nil {
		return err
	}
	if err := os.Rename(src, dst); err != nil {
		_ = os.Rename(old, dst)
		return err
	}
	return os.RemoveAll(old)
}

// fastFailClient gives up quickly when the host cannot be reached, so that
// a machine without internet gets the how-to-supply message at once.
func fastFailClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ResponseHeaderTimeout = 30 * time.Second
	return &http.Client{Transport: t}
}

// noNetwork adds the how-to-supply instructions to a download failure.
func (c *kernelConfig) noNetwork(err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	return &SupplyError{Err: err, sep: "\nto use a kernel without downloading it: ", cacheDir: c.cacheDir}
}

func get(ctx context.Context, c *kernelConfig, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "nanofs")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("downloading Nanos: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("downloading Nanos: GET %s: %s", url, resp.Status)
	}
	return resp, nil
}

// latestVersion reads <base>latest.txt.
func latestVersion(ctx context.Context, c *kernelConfig, base string) (string, error) {
	resp, err := get(ctx, c, base+"latest.txt")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256))
	if err != nil {
		return "", fmt.Errorf("downloading Nanos: reading latest.txt: %w", err)
	}
	v := strings.TrimSpace(string(b))
	if err := checkVersion(v); err != nil {
		return "", fmt.Errorf("latest.txt at %s: %w", base, err)
	}
	return v, nil
}

// progressReader reports bytes read.
type progressReader struct {
	r           io.Reader
	done, total int64
	report      func(done, total int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	if p.report != nil && n > 0 {
		p.report(p.done, p.total)
	}
	return n, err
}

// download streams the archive at url into dir, extracting as it arrives,
// and returns the hex SHA-256 of the compressed bytes.
func download(ctx context.Context, c *kernelConfig, url, dir string) (string, error) {
	resp, err := get(ctx, c, url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	h := sha256.New()
	body := &progressReader{r: io.TeeReader(resp.Body, h), total: resp.ContentLength, report: c.progress}
	if err := extractRelease(bufio.NewReaderSize(body, 64<<10), dir); err != nil {
		return "", fmt.Errorf("release %s: %w; nothing was cached", url, err)
	}
	return finishDigest(h, body)
}

// finishDigest reads what follows the archive's end (tar padding the tar
// reader left unread) into the hash.
func finishDigest(h hash.Hash, r io.Reader) (string, error) {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return "", fmt.Errorf("downloading Nanos: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// extractRelease unpacks a gzip-compressed tar of regular files and
// directories into dir. Entry names must stay inside dir (no absolute
// paths, no ".."); links and special files are not needed from a release
// and are skipped. The whole stream is read, so the gzip checksum is
// verified.
func extractRelease(r io.Reader, dir string) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("not a gzip archive: %w", err)
	}
	defer zr.Close()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(zr)
	var total int64
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("corrupt archive: %w", err)
		}
		if n >= maxReleaseEntries {
			return fmt.Errorf("more than %d entries: not a Nanos release", maxReleaseEntries)
		}
		name, err := releaseEntryName(hdr.Name)
		if err != nil {
			return err
		}
		if name == "" {
			continue
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o755); err != nil {
				return fmt.Errorf("extracting %s: %w", hdr.Name, err)
			}
		case tar.TypeReg:
			total += hdr.Size
			if hdr.Size < 0 || total > maxReleaseBytes {
				return fmt.Errorf("expands to more than %d bytes: not a Nanos release", maxReleaseBytes)
			}
			if d := path.Dir(name); d != "." {
				if err := root.MkdirAll(d, 0o755); err != nil {
					return fmt.Errorf("extracting %s: %w", hdr.Name, err)
				}
			}
			if err := extractFile(root, name, tr, hdr); err != nil {
				return err
			}
		}
	}
	// Drain the gzip stream so its trailer (CRC-32, size) is checked.
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return fmt.Errorf("corrupt archive: %w", err)
	}
	return nil
}

func extractFile(root *os.Root, name string, r io.Reader, hdr *tar.Header) error {
	mode := os.FileMode(0o644)
	if hdr.Mode&0o111 != 0 {
		mode = 0o755
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("extracting %s: %w", hdr.Name, err)
	}
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	var pe *fs.PathError
	if err != nil && !errors.As(err, &pe) {
		return fmt.Errorf("corrupt archive: extracting %s: %w", hdr.Name, err)
	}
	if err != nil {
		return fmt.Errorf("extracting %s: %w", hdr.Name, err)
	}
	if n != hdr.Size {
		return fmt.Errorf("extracting %s: truncated archive", hdr.Name)
	}
	return nil
}

// releaseEntryName cleans an archive path; "" means the archive root.
func releaseEntryName(name string) (string, error) {
	clean := path.Clean(strings.TrimPrefix(name, "./"))
	if path.IsAbs(name) || clean == ".." || strings.HasPrefix(clean, "../") || strings.Contains(name, "\x00") {
		return "", fmt.Errorf("archive entry %q points outside the release directory", name)
	}
	if clean == "." {
		return "", nil
	}
	return clean, nil
}
