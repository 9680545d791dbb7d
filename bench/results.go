package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Results is one run of the macro benchmark: the setting, the workloads,
// and every measurement. It is saved as results.json, and RESULTS.md and
// results.png are rendered from it alone.
type Results struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Host     Host      `json:"host"`
	Nanofs   string    `json:"nanofs"` // `nanofs --version`
	Link     LinkInfo  `json:"link"`
	// StartSeconds is the wall time of a bare `nanofs --version`: what any
	// CLI run pays before it does anything.
	StartSeconds float64            `json:"start_seconds"`
	SetupSeconds float64            `json:"setup_seconds"` // workloads built or loaded, registry up
	Workloads    []Workload         `json:"workloads"`
	Runs         []Run              `json:"runs"`
	LocalCopy    map[string]float64 `json:"local_copy"` // image -> seconds to copy the plan's bytes locally
	Stages       []Stage            `json:"stages,omitempty"`
	Profiles     []Profile          `json:"profiles,omitempty"`
	// Micro holds the go test -bench lines of the micro-benchmarks.
	Micro        string   `json:"micro,omitempty"`
	MicroSeconds float64  `json:"micro_seconds,omitempty"`
	MicroError   string   `json:"micro_error,omitempty"`
	Notes        []string `json:"notes,omitempty"`
}

// Host describes the machine.
type Host struct {
	CPUs     int    `json:"cpus"`
	MemBytes int64  `json:"mem_bytes"`
	Kernel   string `json:"kernel"`
	Go       string `json:"go"`
}

// LinkInfo is the network path between the contenders and the registry.
type LinkInfo struct {
	Shaped   bool    `json:"shaped"`
	Rate     string  `json:"rate,omitempty"` // tc syntax
	RateBits int64   `json:"rate_bits,omitempty"`
	RTT      float64 `json:"rtt_seconds,omitempty"`
}

// Workload is one image, pushed in every encoding (Encodings).
type Workload struct {
	Name              string            `json:"name"`
	Description       string            `json:"description"`
	Entry             string            `json:"entry"`   // the program built (--entry), as a user would name it
	Refs              map[string]string `json:"refs"`    // encoding -> repository:tag on the registry
	Digests           map[string]string `json:"digests"` // encoding -> manifest digest
	Layers            int               `json:"layers"`
	UncompressedBytes int64             `json:"uncompressed_bytes"` // sum of the layer tars
	Files             int               `json:"files"`              // regular files in the layers
	BlobBytes         map[string]int64  `json:"blob_bytes"`         // encoding -> compressed layers
}

// Contenders and encodings, as they appear in Run.
const (
	Baseline = "baseline"
	Build    = "nanofs build"
	Mount    = "nanofs mount"

	Gzip        = "gzip"
	EStargz     = "estargz"
	ZstdChunked = "zstd:chunked"

	Cold = "cold"
	Warm = "warm"
)

// Encodings are the encodings every workload is pushed in, in report
// order: gzip (what exists today, and what the baseline pulls), then the
// two that nanofs reads lazily, file by file.
var Encodings = []string{Gzip, EStargz, ZstdChunked}

// Lazy reports whether nanofs reads an image in this encoding chunk by
// chunk through a table of contents, rather than whole layers.
func Lazy(encoding string) bool { return encoding == EStargz || encoding == ZstdChunked }

// slug spells an encoding as an image tag and a file name can
// ("zstd-chunked").
func slug(encoding string) string { return strings.ReplaceAll(encoding, ":", "-") }

// Run is one contender on one image, cold or warm.
type Run struct {
	Image     string `json:"image"`
	Encoding  string `json:"encoding"`
	Contender string `json:"contender"`
	Cache     string `json:"cache"` // cold: empty cache; warm: the same cache again

	Wall float64 `json:"wall_seconds"`
	// Repeats: a warm build runs several times and the median run is the
	// one recorded; WallMin and WallMax are the fastest and slowest.
	Repeats       int     `json:"repeats,omitempty"`
	WallMin       float64 `json:"wall_min_seconds,omitempty"`
	WallMax       float64 `json:"wall_max_seconds,omitempty"`
	RegistryBytes int64   `json:"registry_bytes"` // blob body bytes the registry sent (server side)
	Requests      int     `json:"requests"`       // every request the registry answered
	MaxRSS        int64   `json:"max_rss_bytes"`
	CPU           float64 `json:"cpu_seconds"` // user + system
	// CPUPerMB is CPU over the megabytes (10^6 bytes) the registry sent,
	// for cold runs (see CPUPerMB); Save fills it in.
	CPUPerMB float64 `json:"cpu_seconds_per_mb,omitempty"`

	Program string `json:"program,omitempty"` // what the plan runs

	// nanofs build (its --json summary)
	PlanBytes int64 `json:"plan_bytes,omitempty"`
	PlanFiles int   `json:"plan_files,omitempty"`
	MinFetch  int64 `json:"min_fetch_bytes,omitempty"` // lazy.Image.MinTransfer of the plan
	Fetched   int64 `json:"fetched_bytes,omitempty"`   // client side
	TOCBytes  int64 `json:"toc_bytes,omitempty"`

	// nanofs mount
	Ready       float64 `json:"ready_seconds,omitempty"`        // the mount answers
	FirstByte   float64 `json:"first_byte_seconds,omitempty"`   // the program's first byte read
	ClosureRead float64 `json:"closure_read_seconds,omitempty"` // every file of the plan read

	// baseline phases (pull, extract, resolve, write), seconds
	Phases map[string]float64 `json:"phases,omitempty"`

	Skipped string `json:"skipped,omitempty"` // why the run was not made
	Error   string `json:"error,omitempty"`
}

// OK reports whether the run was made and succeeded.
func (r Run) OK() bool { return r.Skipped == "" && r.Error == "" }

// CPUSecondsPerMB is the run's CPU time (user + system) per megabyte
// (10^6 bytes) the registry sent: what fetching costs the machine, so
// that a cold build bound by its CPU rather than by the link shows. Only
// cold runs that fetched something have one: a warm run's CPU goes to
// reading its cache, not to anything fetched.
func (r Run) CPUSecondsPerMB() (float64, bool) {
	if !r.OK() || r.Cache != Cold || r.RegistryBytes <= 0 || r.CPU <= 0 {
		return 0, false
	}
	return r.CPU / (float64(r.RegistryBytes) / 1e6), true
}

// Stage is the in-process breakdown of one build: where its time goes.
type Stage struct {
	Image    string  `json:"image"`
	Encoding string  `json:"encoding"`
	Cache    string  `json:"cache"`
	Open     float64 `json:"open_seconds"` // lazy.Open: manifest, config, layer indexes
	// OpenWait is how long, during Open, at least one registry request
	// was in flight; OpenRequests how many HTTP requests Open made.
	OpenWait     float64 `json:"open_wait_seconds"`
	OpenRequests int     `json:"open_requests"`
	Resolve      float64 `json:"resolve_seconds"`
	// TagWait is how long, after resolving, the build waited for the
	// registry to confirm the tag it started from (lazy.WithTagCheckLater,
	// as nanofs build opens a tag): the part of the check open and resolve
	// did not hide.
	TagWait  float64 `json:"tag_wait_seconds"`
	Write    float64 `json:"write_seconds"` // disk.WriteDisk: reading the plan's files, writing the disk
	Requests int64   `json:"requests"`      // blob requests of the lazy image
	Bytes    int64   `json:"bytes"`
	Error    string  `json:"error,omitempty"`
}

// Profile is a CPU profile (perf) of one more warm `nanofs build`, made
// after the measured one: where its time goes, by function.
type Profile struct {
	Image    string `json:"image"`
	Encoding string `json:"encoding"`
	Command  string `json:"command"`
	// Inclusive: nanofs's own functions with what they and their callees
	// took; Self: the functions (any) that took the most themselves.
	Inclusive []ProfileLine `json:"inclusive,omitempty"`
	Self      []ProfileLine `json:"self,omitempty"`
	Error     string        `json:"error,omitempty"`
}

// ProfileLine is one function of a profile: its share of the samples.
type ProfileLine struct {
	Percent float64 `json:"percent"`
	Symbol  string  `json:"symbol"`
}

// Find returns the run of contender on image/encoding with cache state,
// if it was made.
func (r *Results) Find(image, encoding, contender, cache string) (Run, bool) {
	for _, run := range r.Runs {
		if run.Image == image && run.Encoding == encoding && run.Contender == contender && run.Cache == cache {
			return run, run.OK()
		}
	}
	return Run{}, false
}

// Workload returns the named workload.
func (r *Results) Workload(name string) (Workload, bool) {
	for _, w := range r.Workloads {
		if w.Name == name {
			return w, true
		}
	}
	return Workload{}, false
}

// Save writes r as indented JSON, with the figures derived from the
// measurements (CPUPerMB) filled in.
func (r *Results) Save(file string) error {
	for i := range r.Runs {
		r.Runs[i].CPUPerMB, _ = r.Runs[i].CPUSecondsPerMB()
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(file, append(data, '\n'))
}

// LoadResults reads what Save wrote.
func LoadResults(file string) (*Results, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var r Results
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return &r, nil
}

// writeFileAtomic writes data to a temp file beside name and renames it,
// so that an interrupted run never leaves half a report.
func writeFileAtomic(name string, data []byte) error {
	return writeAtomic(name, func(w io.Writer) error { _, err := w.Write(data); return err })
}

// writeAtomic is writeFileAtomic for content produced by write.
func writeAtomic(name string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(name), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	err = write(f)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(f.Name(), name)
}
