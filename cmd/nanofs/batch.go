package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/nanofs/nanofs/vm/build"
)

// batchFlags are build's flags for many images in one run.
type batchFlags struct {
	jobs       int
	pushTo     string // REPO: each image's artifact at REPO:<its disk name>
	imagesFrom string // FILE, or - for stdin
	outputDir  string
}

// batchImages are the images named as arguments and in --images-from.
func batchImages(args []string, from string, stdin io.Reader) ([]string, error) {
	if from == "" {
		return args, nil
	}
	r := stdin
	if from != "-" {
		f, err := os.Open(from)
		if err != nil {
			return nil, fmt.Errorf("--images-from: %w", err)
		}
		defer f.Close()
		r = f
	}
	listed, err := build.ReadImageList(r)
	if err == nil && len(args)+len(listed) == 0 {
		err = build.ErrNoImages
	}
	if err != nil {
		return nil, fmt.Errorf("--images-from %s: %w", from, err)
	}
	return append(append([]string(nil), args...), listed...), nil
}

// runBatch builds every image with the same flags, --jobs at a time, one
// line on stderr (or one JSON object on stdout) per image as it finishes.
// The error names the images that failed.
func runBatch(ctx context.Context, g *globals, images []string, o *buildOptions) error {
	switch {
	case o.out != "":
		return errors.New("-o names one disk: with several images, give --output-dir")
	case o.push != "":
		return errors.New("--push names one artifact: with several images, give --push-to REPO")
	case o.batch.jobs < 1:
		return fmt.Errorf("--jobs %d: want at least 1", o.batch.jobs)
	}
	opts, err := o.buildOpts(g, nil) // no bars: lines per image instead
	if err != nil {
		return err
	}
	if o.batch.outputDir != "" {
		if err := os.MkdirAll(o.batch.outputDir, 0o755); err != nil {
			return fmt.Errorf("--output-dir: %w", err)
		}
	}
	var mu sync.Mutex
	n := 0
	_, err = build.BuildAll(ctx, images, o.batch.jobs, func(image string) []build.Option {
		opts := append(opts[:len(opts):len(opts)], build.WithOutput(filepath.Join(o.batch.outputDir, build.DefaultDiskName(image))))
		if o.batch.pushTo != "" {
			opts = append(opts, build.WithPush(o.batch.pushTo+":"+build.ArtifactTag(image)))
		}
		return opts
	}, func(it build.Item) {
		mu.Lock()
		defer mu.Unlock()
		n++
		line := it.Report(func(err error) string { return flagError(err).Error() })
		if line.Summary != nil {
			*line.Summary = flagSummary(*line.Summary)
		}
		if sum := line.Summary; sum == nil {
			g.logf("[%d/%d] FAILED %s: %s", n, len(images), it.Image, line.Error)
		} else {
			how := fmt.Sprintf("built (fetched %s)", byteCount(sum.FetchedBytes))
			if sum.Reused != "" {
				how = "reused " + sum.Reused
			}
			if sum.Pushed != "" && sum.Pushed != sum.Reused {
				how += ", pushed " + sum.Pushed
			}
			g.logf("[%d/%d] %s -> %s: %s, %.1fs", n, len(images), it.Image, sum.Output, how, sum.Seconds)
		}
		if o.json {
			b, _ := json.Marshal(line)
			fmt.Fprintf(g.stdout, "%s\n", b)
		}
	})
	return err
}
