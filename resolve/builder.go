package resolve

import (
	"fmt"
	"io/fs"
	"path"
	"sort"
)

// planBuilder collects the entries of a plan, each path once.
type planBuilder struct {
	r        *rootFS
	entries  map[string]*Entry
	neededBy map[string]map[string]bool
}

func newPlanBuilder(r *rootFS) *planBuilder {
	return &planBuilder{r: r, entries: map[string]*Entry{}, neededBy: map[string]map[string]bool{}}
}

// generic reasons give way to a specific one given later.
func genericReason(r string) bool { return r == "" || r == reasonDir || r == reasonLink }

func (b *planBuilder) add(e Entry, neededBy string) {
	if old, ok := b.entries[e.Path]; ok {
		if genericReason(old.Reason) && !genericReason(e.Reason) {
			old.Reason = e.Reason
		}
	} else {
		if e.Reason == "" {
			e.Reason = reasonDir
		}
		b.entries[e.Path] = &e
		if e.Kind == KindFile && e.Size > 0 {
			// Its bytes are needed by whatever writes the plan: start
			// fetching them now.
			b.r.prefetchLater(e.Path)
		}
	}
	b.addNeededBy(e.Path, neededBy)
}

func (b *planBuilder) addNeededBy(p, by string) {
	if by == "" {
		return
	}
	set := b.neededBy[p]
	if set == nil {
		set = map[string]bool{}
		b.neededBy[p] = set
	}
	set[by] = true
}

// addLocated adds what resolving a path needs: the directories passed
// through, every symbolic link followed, and the file or directory it
// ends at. It reports false (adding only the way there) for anything else
// (a device, a FIFO).
func (b *planBuilder) addLocated(loc *located, reason, neededBy string) bool {
	for _, d := range loc.Dirs {
		b.addDir(d, reasonDir)
	}
	for _, l := range loc.Links {
		mode := fs.FileMode(0o777)
		if info, err := b.r.lstat(l.Path); err == nil {
			mode = info.Mode()
		}
		b.add(Entry{Path: l.Path, Kind: KindSymlink, Target: l.Target, Mode: mode & permBits,
			Size: int64(len(l.Target)), Reason: reasonLink}, tidy(loc.Path))
	}
	switch {
	case loc.File == "/":
		return true
	case loc.Info.IsDir():
		b.add(Entry{Path: loc.File, Kind: KindDir, Mode: loc.Info.Mode() & permBits, Reason: reason}, neededBy)
	case loc.Info.Mode().IsRegular():
		b.add(Entry{Path: loc.File, Kind: KindFile, Mode: loc.Info.Mode() & permBits, Size: loc.Info.Size(),
			Reason: reason}, neededBy)
	default:
		return false
	}
	return true
}

// permBits are the mode bits an entry keeps: the type is its Kind.
const permBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

func (b *planBuilder) addDir(p, reason string) {
	if p == "/" {
		return
	}
	if _, ok := b.entries[p]; ok {
		return
	}
	mode := fs.FileMode(0o755)
	if info, err := b.r.lstat(p); err == nil {
		mode = info.Mode() & permBits
	}
	b.add(Entry{Path: p, Kind: KindDir, Mode: mode, Reason: reason}, "")
}

// addGenerated adds a file the image lacks; dir is the canonical directory
// it goes in.
func (b *planBuilder) addGenerated(dir, name string, content []byte, reason string) {
	p := path.Join(dir, name)
	delete(b.entries, p) // a dangling link there is replaced
	b.add(Entry{Path: p, Kind: KindGenerated, Mode: 0o644, Size: int64(len(content)), Content: content,
		Reason: reasonGenerated + ": " + reason}, "")
}

// finish returns the entries sorted by path, with every parent directory.
func (b *planBuilder) finish() ([]Entry, error) {
	for _, p := range sortedKeys(b.entries) {
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			if e, ok := b.entries[d]; ok {
				if e.Kind != KindDir {
					return nil, fmt.Errorf("plan: %s is a %v but holds %s", d, e.Kind, p)
				}
				continue
			}
			info, err := b.r.lstat(d)
			if err != nil {
				return nil, fmt.Errorf("plan: parent of %s: %w", p, err)
			}
			if !info.IsDir() {
				return nil, fmt.Errorf("plan: %s is not a directory but holds %s", d, p)
			}
			b.addDir(d, reasonDir)
		}
	}
	out := make([]Entry, 0, len(b.entries))
	for _, p := range sortedKeys(b.entries) {
		e := *b.entries[p]
		if set := b.neededBy[p]; len(set) > 0 {
			e.NeededBy = sortedKeys(set)
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}
