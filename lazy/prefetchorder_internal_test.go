package lazy

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/internal/testimage"
)

// rangeLog records the Range of every request for one blob, in the order
// they are sent.
type rangeLog struct {
	blob   string
	mu     sync.Mutex
	ranges []string
}

func (l *rangeLog) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/blobs/"+l.blob) {
		l.mu.Lock()
		l.ranges = append(l.ranges, r.Header.Get("Range"))
		l.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestPrefetchEndsFirst: a background fetch of a large file asks for the
// members holding its first and last chunks (its ELF header and, near the
// end, its dynamic section and section headers: what a resolve reads)
// before the members in between, which would otherwise come in one long
// request in front of them.
func TestPrefetchEndsFirst(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	big := make([]byte, 12<<20) // three 4 MiB chunks, incompressible
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	layer := testimage.LayerFromEntries(t, testimage.EStargz, testimage.File("big", 0o755, string(big)))
	img := testimage.NewImage(t, v1.Config{Cmd: []string{"/big"}}, layer)
	reg := testimage.StartInProcessRegistry(t)
	reg.Push(t, "ends", img)
	d, err := layer.Digest()
	require.NoError(t, err)

	log := &rangeLog{blob: d.String()}
	opened, err := Open(t.Context(), reg.Ref("ends"), WithCacheDir(t.TempDir()), WithTransport(log))
	require.NoError(t, err)
	defer opened.Close()
	n, err := opened.lookup("test", "big", true)
	require.NoError(t, err)
	chunks := n.Data.(*fileData).chunks
	require.Len(t, chunks, 3)

	log.mu.Lock()
	atOpen := len(log.ranges)
	log.mu.Unlock()
	// One background connection: the requests go out one after another, in
	// the order the fetch chose.
	opened.sh.bg = make(chan struct{}, 1)
	require.NoError(t, opened.Prefetch(context.WithValue(t.Context(), backgroundKey{}, true), []string{"big"}))

	log.mu.Lock()
	got := log.ranges[atOpen:]
	log.mu.Unlock()
	member := func(c int) string {
		return "bytes=" + strconv.FormatInt(chunks[c].Offset, 10) + "-" + strconv.FormatInt(chunks[c].Next-1, 10)
	}
	assert.Equal(t, []string{member(0), member(2), member(1)}, got,
		"first and last members first, each in a request of its own, then the body")
	f, err := opened.Open("big")
	require.NoError(t, err)
	defer f.Close()
	buf := make([]byte, len(big))
	_, err = f.(interface {
		ReadAt([]byte, int64) (int, error)
	}).ReadAt(buf, 0)
	require.NoError(t, err)
	assert.Equal(t, big, buf, "the file as it was written")
}
