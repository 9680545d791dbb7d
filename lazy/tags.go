package lazy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/nanofs/nanofs/lazy/internal/cas"
)

// A tag is resolved by the registry alone, which costs a warm build its
// only round trips (the /v2/ ping, then the manifest). The cache remembers
// which manifest each tag named when it was last looked up: with
// WithTagCheckLater, Open starts from that manifest at once and asks the
// registry in the background, and Image.CheckTag says whether the tag
// still names it.

// ErrTagMoved: the tag names another manifest than the one the image was
// opened from (a *TagMovedError).
var ErrTagMoved = errors.New("the tag names another manifest now")

// TagMovedError is a tag that was pushed again since it was last looked
// up: the image opened is the manifest it named then.
type TagMovedError struct {
	Ref string  // the reference as asked of the registry
	Was v1.Hash // the manifest the image was opened from
	Now v1.Hash // the manifest the registry names now
}

func (e *TagMovedError) Error() string {
	return fmt.Sprintf("%s: the tag moved from %s to %s", e.Ref, e.Was, e.Now)
}

func (e *TagMovedError) Unwrap() error { return ErrTagMoved }

// tagSuffix is the cache suffix of the record of what a tag named, kept
// with the manifests under the SHA-256 of the tag's full name.
const tagSuffix = ".tag"

func tagKey(t name.Tag) string { return cas.SHA256([]byte("tag " + t.Name())) }

// rememberTag records that ref (when a tag) named the manifest d. The
// record is an optimisation: failing to write it is not an error.
func rememberTag(store *cas.Store, ref name.Reference, d v1.Hash) {
	if t, ok := ref.(name.Tag); ok {
		_ = store.WriteMeta(manifestKind, tagKey(t), tagSuffix, []byte(d.String()))
	}
}

// recalledTag returns the cached manifest ref (a tag) named when it was
// last looked up, or nil.
func recalledTag(store *cas.Store, ref name.Reference) *remote.Descriptor {
	t, ok := ref.(name.Tag)
	if !ok {
		return nil
	}
	raw, err := store.ReadMeta(manifestKind, tagKey(t), tagSuffix)
	if err != nil {
		return nil
	}
	h, err := v1.NewHash(strings.TrimSpace(string(raw)))
	if err != nil {
		return nil
	}
	return cachedManifest(store, t.Context().Digest(h.String()))
}

// tagCheck is the registry's answer to where a tag points, asked in the
// background.
type tagCheck struct {
	ref  string
	was  v1.Hash
	done chan struct{}
	err  error // set before done is closed
}

// startTagCheck asks the registry which manifest ref names now (a GET,
// which also brings the manifest into the cache if it moved), through the
// transport t connects.
func startTagCheck(ctx context.Context, ref name.Reference, was v1.Hash, p retryPolicy, t *lazyTransport, store *cas.Store) *tagCheck {
	c := &tagCheck{ref: ref.String(), was: was, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		rt, err := t.connected()
		if err != nil {
			c.err = err
			return
		}
		desc, err := getManifest(ctx, ref, p, []remote.Option{remote.WithTransport(rt), remote.WithContext(ctx)})
		if err != nil {
			c.err = classify(err, ref.String())
			return
		}
		keepManifest(store, desc)
		rememberTag(store, ref, desc.Digest)
		if desc.Digest != was {
			c.err = &TagMovedError{Ref: ref.String(), Was: was, Now: desc.Digest}
		}
	}()
	return c
}

// CheckTag waits for the registry's answer to where the image's tag points
// (opened WithTagCheckLater from the manifest the tag named before) and
// returns nil when it is the manifest the image was opened from. When the
// tag moved, it returns a *TagMovedError (ErrTagMoved): open the image
// again, which starts from the new manifest. Any other error is the one
// Open would have returned for the tag. An image opened any other way has
// nothing to check: nil.
func (img *Image) CheckTag(ctx context.Context) error {
	if img.tag == nil {
		return nil
	}
	select {
	case <-img.tag.done:
		return img.tag.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// moved is err, or when the tag turns out to have moved (which may be
// why the old manifest could not be read) the *TagMovedError wrapping it:
// the caller opens the image again.
func (c *tagCheck) moved(ctx context.Context, err error) error {
	if c == nil || err == nil {
		return err
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		return err
	}
	if errors.Is(c.err, ErrTagMoved) {
		return fmt.Errorf("%w (the manifest it named before: %w)", c.err, err)
	}
	return err
}
