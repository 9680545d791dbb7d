package bench

import (
	"archive/tar"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"path"
	"time"
)

// Epoch is the modification time of every ballast entry, so that the same
// ballast always gives the same blobs.
var Epoch = time.Date(2020, time.January, 1, 0, 0, 0, 0, time.UTC)

// Ballast is one layer of filler for the large image: Bytes of
// incompressible content spread over Small small files (up to 16 KiB, like
// the many small files of a real image) and as many large ones (1 to 64
// MiB) as the rest takes, under Dir.
type Ballast struct {
	Dir   string // in the image, e.g. "opt/ballast-1"
	Bytes int64
	Small int
	Seed  uint64
}

// BallastFile is one file of a Ballast.
type BallastFile struct {
	Name string
	Size int64
	seed [32]byte
}

const (
	ballastSmallMax = 16 << 10
	ballastLargeMin = 1 << 20
	ballastLargeMax = 64 << 20
	ballastPerDir   = 256
)

// Files lists the ballast's files in tar order; the list and every byte
// depend only on the Ballast's fields.
func (b Ballast) Files() []BallastFile {
	rng := rand.New(rand.NewPCG(b.Seed, 0x62616c6c617374))
	var sizes []int64
	left := b.Bytes
	for range b.Small {
		if left <= 0 {
			break
		}
		n := min(1+rng.Int64N(ballastSmallMax), left)
		sizes = append(sizes, n)
		left -= n
	}
	for left > 0 {
		n := ballastLargeMin + rng.Int64N(ballastLargeMax-ballastLargeMin)
		if left-n < ballastLargeMin {
			n = left // no runt at the end
		}
		sizes = append(sizes, n)
		left -= n
	}
	// Mixed, as in a real tree, rather than all small files first.
	rng.Shuffle(len(sizes), func(i, j int) { sizes[i], sizes[j] = sizes[j], sizes[i] })
	files := make([]BallastFile, len(sizes))
	for i, n := range sizes {
		f := BallastFile{Name: path.Join(b.Dir, fmt.Sprintf("d%03d/f%06d.bin", i/ballastPerDir, i)), Size: n}
		binary.LittleEndian.PutUint64(f.seed[0:], b.Seed)
		binary.LittleEndian.PutUint64(f.seed[8:], uint64(i))
		copy(f.seed[16:], "nanofs-ballast!!")
		files[i] = f
	}
	return files
}

// Content returns the file's bytes: a ChaCha8 stream, which no compressor
// can shrink.
func (f BallastFile) Content() io.Reader {
	return io.LimitReader(rand.NewChaCha8(f.seed), f.Size)
}

// WriteTar writes the ballast layer as a tar: the directories (each parent
// of Dir too), then the files, all owned by root with Epoch times.
func (b Ballast) WriteTar(w io.Writer) error {
	tw := tar.NewWriter(w)
	dir := func(name string) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755, ModTime: Epoch, Format: tar.FormatUSTAR})
	}
	var parents []string
	for p := path.Clean(b.Dir); p != "." && p != "/"; p = path.Dir(p) {
		parents = append([]string{p}, parents...)
	}
	for _, p := range parents {
		if err := dir(p); err != nil {
			return err
		}
	}
	lastDir := ""
	for _, f := range b.Files() {
		if d := path.Dir(f.Name); d != lastDir {
			if err := dir(d); err != nil {
				return err
			}
			lastDir = d
		}
		h := &tar.Header{Typeflag: tar.TypeReg, Name: f.Name, Mode: 0o644, Size: f.Size, ModTime: Epoch, Format: tar.FormatUSTAR}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := io.Copy(tw, f.Content()); err != nil {
			return fmt.Errorf("%s: %w", f.Name, err)
		}
	}
	return tw.Close()
}
