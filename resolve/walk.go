package resolve

import (
	"context"
	"fmt"
)

// Sink receives a plan's entries by kind, for Walk.
type Sink interface {
	Dir(e Entry) error
	Symlink(e Entry) error
	File(e Entry) error // a KindFile or KindGenerated entry
}

// Walk hands each entry of the plan, in plan order (parents before their
// children), to the sink method for its kind; the root itself is left
// out. It stops at the first error, which names the entry, or when ctx is
// done. The disk writer and the ops package writer are its two sinks.
func (p *Plan) Walk(ctx context.Context, s Sink) error {
	for _, e := range p.Entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.Path == "/" {
			continue
		}
		var err error
		switch e.Kind {
		case KindDir:
			err = s.Dir(e)
		case KindSymlink:
			err = s.Symlink(e)
		case KindFile, KindGenerated:
			err = s.File(e)
		default:
			err = fmt.Errorf("unknown entry kind %v", e.Kind)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", e.Path, err)
		}
	}
	return nil
}
