package lazy

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/nanofs/nanofs/lazy/internal/overlay"
)

// layer is one layer of the image and how its files are read: through its
// eStargz TOC (stargz) or from the cached tar of one streaming pass
// (stream).
type layer struct {
	index       int
	key         v1.Hash // the blob digest; for docker-save tarballs the diffID
	size        int64   // compressed size; -1 when unknown
	mediaType   types.MediaType
	annotations map[string]string
	diffID      v1.Hash // from the config; zero when not checked
	expansion   expansionLimit

	blob         *blob                         // nil for docker-save tarballs
	early        *earlyRead                    // its table of contents, read early (nil when not)
	uncompressed func() (io.ReadCloser, error) // docker-save tarballs
	stats        *counter

	stream *streamLayer
	stargz *stargzLayer
	// What Stats reports while Open is still indexing other layers.
	lazy     atomic.Bool
	tocBytes atomic.Int64
}

// openStream returns the layer's bytes from start to end, as stored.
func (l *layer) openStream(ctx context.Context) (io.ReadCloser, error) {
	if l.blob == nil {
		l.stats.requests.Add(1)
		rc, err := l.uncompressed()
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", l.key, err)
		}
		return readCloser{Reader: &countingReader{r: rc, c: l.stats}, Closer: rc}, nil
	}
	if l.size == 0 {
		return io.NopCloser(eofReader{}), nil
	}
	return l.blob.open(ctx, 0, l.size)
}

type readCloser struct {
	io.Reader
	io.Closer
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// fileData locates a regular file's content in its layer.
type fileData struct {
	layer  *layer
	offset int64           // stream layers: offset in the uncompressed tar
	chunks []overlay.Chunk // eStargz layers
}

// dataFor returns how the layer's regular files are located.
func (l *layer) dataFor(e *overlay.Entry) any {
	return &fileData{layer: l, offset: e.Offset, chunks: e.Chunks}
}

// readFile reads bytes [off, off+len(p)) of a file, all within the file.
func (l *layer) readFile(ctx context.Context, d *fileData, p []byte, off int64) (int, error) {
	if l.stargz != nil {
		return l.stargz.readAt(ctx, d, p, off)
	}
	return l.stream.readAt(ctx, p, d.offset+off)
}

func (l *layer) close() error {
	if l.stream != nil {
		return l.stream.close()
	}
	return nil
}
