package build

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
)

// Item is one image of a batch, and how its build went.
type Item struct {
	Index  int    // its place in the list
	Image  string // as given
	Result *Result
	Err    error
}

// BatchError names the images of a batch that failed; the others were
// built.
type BatchError struct {
	Failed []Item
	Total  int
}

func (e *BatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d images failed:", len(e.Failed), e.Total)
	for _, it := range e.Failed {
		fmt.Fprintf(&b, "\n  %s: %v", it.Image, it.Err)
	}
	return b.String()
}

// Unwrap lets errors.Is and errors.As see each image's error.
func (e *BatchError) Unwrap() []error {
	errs := make([]error, len(e.Failed))
	for i, it := range e.Failed {
		errs[i] = it.Err
	}
	return errs
}

// ErrNoImages: a batch was given no image.
var ErrNoImages = errors.New("no images to build")

// ReadImageList reads a list of images, one reference a line; blank lines
// and # comments are skipped.
func ReadImageList(r io.Reader) ([]string, error) {
	var images []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			images = append(images, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return images, nil
}

// BuildAll builds every image, at most jobs at a time, each with the
// options opts gives for it. The builds share what their options share —
// the same cache directory (lazy.WithCacheDir) means a base layer common to
// several images is fetched once (the cache locks each blob it downloads).
// An image that fails does not stop the others; done (if not nil) hears of
// each as it finishes, from several goroutines. The items come back in the
// order of images; the error is a *BatchError when any failed.
func BuildAll(ctx context.Context, images []string, jobs int, opts func(image string) []Option, done func(Item)) ([]Item, error) {
	if len(images) == 0 {
		return nil, ErrNoImages
	}
	if jobs < 1 {
		jobs = 1
	}
	items := make([]Item, len(images))
	sem := make(chan struct{}, jobs)
	var wg sync.WaitGroup
	for i, img := range images {
		items[i] = Item{Index: i, Image: img}
		wg.Add(1)
		go func(it *Item) {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
				var o []Option
				if opts != nil {
					o = opts(it.Image)
				}
				it.Result, it.Err = Build(ctx, it.Image, o...)
			case <-ctx.Done():
				it.Err = ctx.Err()
			}
			if done != nil {
				done(*it)
			}
		}(&items[i])
	}
	wg.Wait()
	var failed []Item
	for _, it := range items {
		if it.Err != nil {
			failed = append(failed, it)
		}
	}
	if len(failed) > 0 {
		return items, &BatchError{Failed: failed, Total: len(items)}
	}
	return items, nil
}

// ArtifactTag is the tag an image's artifact gets in a repository of
// artifacts (the batch's push target): its disk name without .img
// (node:16.3.0 -> node-16.3.0).
func ArtifactTag(image string) string {
	return strings.TrimSuffix(DefaultDiskName(image), ".img")
}
