package lazy

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/nanofs/nanofs/lazy/internal/overlay"
)

// MinTransfer returns the fewest blob bytes that reading the named files
// in full costs from an empty cache (symbolic links followed): for eStargz
// layers, the compressed members holding the files' chunks; for layers
// without random access, the whole compressed layer, once for each layer
// holding one of the files. The eStargz footers and TOCs, which Open
// fetches whatever is read later, are not counted (Stats reports them).
//
// It is the yardstick for what a build fetched: with eStargz it should be
// close to MinTransfer of the plan's files.
func (img *Image) MinTransfer(names []string) (int64, error) {
	var (
		errs   []error
		chunks []overlay.Chunk
		whole  = map[*layer]bool{}
		total  int64
	)
	for _, name := range names {
		n, err := img.lookup("measure", name, true)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !n.Mode.IsRegular() {
			errs = append(errs, &fs.PathError{Op: "measure", Path: name, Err: errors.New("not a regular file")})
			continue
		}
		d, ok := n.Data.(*fileData)
		if !ok || n.Size == 0 {
			continue
		}
		if d.layer.stargz != nil {
			chunks = append(chunks, d.chunks...)
			continue
		}
		if !whole[d.layer] {
			whole[d.layer] = true
			if d.layer.size < 0 {
				errs = append(errs, fmt.Errorf("measure %s: layer %s: compressed size unknown", name, d.layer.key))
				continue
			}
			total += d.layer.size
		}
	}
	return total + compressedSize(chunks), errors.Join(errs...)
}
