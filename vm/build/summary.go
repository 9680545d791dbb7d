package build

import (
	"encoding/json"

	"github.com/nanofs/nanofs/resolve"
	"github.com/nanofs/nanofs/vm/artifact"
	"github.com/nanofs/nanofs/vm/content"
	"github.com/nanofs/nanofs/vm/opspkg"
)

// Summary is what a build reports when it is done: nanofs's CLI prints it
// as JSON, so its JSON field names are a contract.
type Summary struct {
	Output       string           `json:"output"`
	Image        string           `json:"image"`
	Program      string           `json:"program"`
	Args         []string         `json:"args"`
	Files        int              `json:"files"`
	Entries      int              `json:"entries"`
	PlanBytes    int64            `json:"plan_bytes"`
	MinFetch     int64            `json:"min_fetch_bytes"` // the yardstick for FetchedBytes: see lazy.Image.MinTransfer
	DiskBytes    int64            `json:"disk_bytes"`
	FetchedBytes int64            `json:"fetched_bytes"`
	TOCBytes     int64            `json:"toc_bytes"` // of FetchedBytes: eStargz footers and TOCs
	Requests     int64            `json:"requests"`
	Seconds      float64          `json:"seconds"`
	Bootable     bool             `json:"bootable"`
	Kernel       string           `json:"kernel,omitempty"`
	Skipped      []string         `json:"skipped,omitempty"`
	Warnings     []string         `json:"warnings,omitempty"`
	Added        []content.Source `json:"added,omitempty"` // local files and directories copied in
	// Wrapper is the entrypoint wrapper evaluated at build time, whose final
	// exec gave Program and Args.
	Wrapper   *resolve.Wrapper        `json:"wrapper,omitempty"`
	Generated []resolve.GeneratedFile `json:"generated,omitempty"` // runtime-provided /etc files
	Runtimes  []resolve.RuntimeUse    `json:"runtimes,omitempty"`  // what the runtime rules added

	// The registry as the store of built disks (WithPush, WithReuse).
	Inputs string `json:"inputs_digest,omitempty"` // the build-inputs digest
	Reused string `json:"reused,omitempty"`        // the artifact fetched instead of building
	Pushed string `json:"pushed,omitempty"`        // the artifact pushed, REPO@DIGEST
}

// Summary is the result's report; a reused disk's says only what the
// artifact says.
func (res *Result) Summary() Summary {
	var sum Summary
	if p := res.Published; p != nil {
		sum.Inputs, sum.Reused = p.Inputs, p.Reused
		if p.Pushed != nil {
			sum.Pushed = p.Pushed.Ref
		}
	}
	plan := res.Plan
	if plan == nil { // reused
		sum.Output, sum.Image, sum.FetchedBytes, sum.DiskBytes, sum.Seconds = res.Output, res.Image, res.Fetched.Bytes, res.Fetched.Bytes, res.Elapsed.Seconds()
		sum.Kernel, sum.Bootable = res.Kernel, res.Kernel != ""
		if n := res.Published.Notes; n != nil {
			sum.Program = n[artifact.AnnotationProgram]
			json.Unmarshal([]byte(n[artifact.AnnotationArguments]), &sum.Args) //nolint:errcheck // an annotation, informative only
		}
		return sum
	}
	inputs, reused, pushed := sum.Inputs, sum.Reused, sum.Pushed
	return Summary{
		Output: res.Output, Image: res.Image, Program: plan.Program, Args: plan.Args,
		Files: res.Files, Entries: len(plan.Entries), PlanBytes: plan.Size(), MinFetch: res.MinFetch, DiskBytes: res.Disk.Size,
		FetchedBytes: res.Fetched.Bytes, TOCBytes: res.TOCBytes, Requests: res.Fetched.Requests, Seconds: res.Elapsed.Seconds(),
		Bootable: res.Disk.Bootloader, Kernel: res.Kernel, Skipped: res.Disk.Skipped, Warnings: plan.Warnings,
		Added: res.Added, Wrapper: plan.Wrapper, Generated: plan.Generated, Runtimes: plan.Runtimes,
		Inputs: inputs, Reused: reused, Pushed: pushed,
	}
}

// PackageSummary is what a build of an ops package (WithPackage) reports:
// nanofs's CLI prints it as JSON.
type PackageSummary struct {
	Name         string                 `json:"name"`
	Image        string                 `json:"image"`
	Arch         string                 `json:"arch"`
	Archive      string                 `json:"archive,omitempty"`
	Installed    string                 `json:"installed,omitempty"`
	Manifest     opspkg.PackageManifest `json:"manifest"`
	Files        int                    `json:"files"`
	Bytes        int64                  `json:"bytes"`
	FetchedBytes int64                  `json:"fetched_bytes"`
	Seconds      float64                `json:"seconds"`
	Warnings     []string               `json:"warnings,omitempty"`
	Pushed       string                 `json:"pushed,omitempty"` // the artifact pushed, REPO@DIGEST
}

// PackageSummary is the report of a result with a Package.
func (res *Result) PackageSummary() PackageSummary {
	pr := res.Package
	sum := PackageSummary{
		Name: pr.Name, Image: res.Image, Arch: pr.Arch, Archive: pr.Archive, Installed: pr.Installed, Manifest: pr.Manifest,
		Files: pr.Files, Bytes: pr.Bytes, FetchedBytes: res.Fetched.Bytes, Seconds: res.Elapsed.Seconds(), Warnings: res.Plan.Warnings,
	}
	if p := res.Published; p != nil && p.Pushed != nil {
		sum.Pushed = p.Pushed.Ref
	}
	return sum
}

// ItemReport is what a batch reports of one image as it finishes
// (nanofs's CLI prints one a line when it builds several images).
type ItemReport struct {
	Image   string   `json:"image"`
	OK      bool     `json:"ok"`
	Error   string   `json:"error,omitempty"`
	Summary *Summary `json:"summary,omitempty"`
}

// Report is the item's report; describe words a failure (nil: its
// Error()), so that a caller can add its own hints.
func (it Item) Report(describe func(error) string) ItemReport {
	r := ItemReport{Image: it.Image, OK: it.Err == nil}
	if it.Err != nil {
		r.Error = it.Err.Error()
		if describe != nil {
			r.Error = describe(it.Err)
		}
		return r
	}
	sum := it.Result.Summary()
	r.Summary = &sum
	return r
}
