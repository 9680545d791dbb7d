package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// NetnsPrefix starts the name of every network namespace the benchmark
// creates; the rest is the pid of the process that made it, so that a later
// run can tell a namespace left by a crashed run from one in use.
const NetnsPrefix = "nanofsbench-"

// Link is a network namespace joined to the host by a veth pair: a server
// started inside it (Command) is reached from the host at NSIP, through
// the veth, where tc can shape the traffic.
type Link struct {
	NS     string // namespace name
	HostIf string // veth end in the host's namespace
	NSIf   string // veth end inside NS
	HostIP string
	NSIP   string

	shaped bool
}

// NewLink creates the namespace, the veth pair and their addresses, named
// after this process. The traffic is not shaped until Shape.
func NewLink(ctx context.Context) (*Link, error) {
	pid := os.Getpid()
	// 10.250.0.0/16, one /30 per pid: two runs at once do not collide
	// unless their pids are 16384 apart.
	n := pid % 16384
	l := &Link{
		NS:     NetnsPrefix + strconv.Itoa(pid),
		HostIf: vethOf(NetnsPrefix + strconv.Itoa(pid)),
		NSIf:   "nfb" + strconv.Itoa(pid) + "n",
		HostIP: fmt.Sprintf("10.250.%d.%d", n/64, n%64*4+1),
		NSIP:   fmt.Sprintf("10.250.%d.%d", n/64, n%64*4+2),
	}
	steps := [][]string{
		{"ip", "netns", "add", l.NS},
		{"ip", "link", "add", l.HostIf, "type", "veth", "peer", "name", l.NSIf, "netns", l.NS},
		{"ip", "addr", "add", l.HostIP + "/30", "dev", l.HostIf},
		{"ip", "link", "set", l.HostIf, "up"},
		{"ip", "-n", l.NS, "addr", "add", l.NSIP + "/30", "dev", l.NSIf},
		{"ip", "-n", l.NS, "link", "set", l.NSIf, "up"},
		{"ip", "-n", l.NS, "link", "set", "lo", "up"},
	}
	for _, s := range steps {
		if err := run(ctx, s...); err != nil {
			l.Close()
			return nil, err
		}
	}
	return l, nil
}

// Shape rate-limits both directions of the veth with a token bucket
// filter (the egress of each end is the ingress of the other). rate is in
// tc's syntax, e.g. "100mbit".
func (l *Link) Shape(ctx context.Context, rate string) error {
	bps, err := ParseRate(rate)
	if err != nil {
		return err
	}
	// A 4 KiB bucket per 100 Mbit/s measured 95 Mbit/s of TCP goodput on
	// a veth; scale it so faster links are not held back by the bucket.
	burst := max(bps*4096/100_000_000, 4096) // bytes
	args := []string{"qdisc", "replace", "dev", "", "root", "tbf", "rate", rate,
		"burst", strconv.FormatInt(burst, 10), "latency", "400ms"}
	for _, side := range []struct{ ns, dev string }{{"", l.HostIf}, {l.NS, l.NSIf}} {
		a := append([]string(nil), args...)
		a[3] = side.dev
		if side.ns != "" {
			a = append([]string{"-n", side.ns}, a...)
		}
		if err := run(ctx, append([]string{"tc"}, a...)...); err != nil {
			return err
		}
	}
	l.shaped = true
	return nil
}

// Shaped reports whether Shape was applied.
func (l *Link) Shaped() bool { return l.shaped }

// Command returns name args run inside the namespace. It dies with the
// process that starts it (SIGKILL), so a crashed benchmark leaves no
// server behind.
func (l *Link) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", l.NS, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	return cmd
}

// Close kills what still runs inside the namespace and deletes it (which
// deletes the veth pair too).
func (l *Link) Close() error {
	return removeNetns(l.NS)
}

// vethOf is the host end of the veth pair of the namespace ns.
func vethOf(ns string) string {
	return "nfb" + strings.TrimPrefix(ns, NetnsPrefix) + "h"
}

// RemoveStaleLinks deletes the namespaces left by benchmark runs whose
// process is gone (crashed or killed), with whatever still runs in them.
// It returns the names removed.
func RemoveStaleLinks(ctx context.Context) ([]string, error) {
	out, err := exec.CommandContext(ctx, "ip", "netns", "list").Output()
	if err != nil {
		return nil, fmt.Errorf("ip netns list: %w", err)
	}
	var removed []string
	var errs []error
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		rest, ok := strings.CutPrefix(name, NetnsPrefix)
		if !ok {
			continue
		}
		if pid, err := strconv.Atoi(rest); err == nil && pid != os.Getpid() && processAlive(pid) {
			continue // another run, still going
		}
		if err := removeNetns(name); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, name)
	}
	return removed, errors.Join(errs...)
}

// removeNetns kills the processes inside ns (only benchmark servers run
// there), then deletes it.
func removeNetns(ns string) error {
	if out, err := exec.Command("ip", "netns", "pids", ns).Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		// The kernel frees a namespace's devices only when its last
		// process is gone.
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			out, err := exec.Command("ip", "netns", "pids", ns).Output()
			if err != nil || len(bytes.TrimSpace(out)) == 0 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Deleting one end of a veth deletes both; the namespace's deletion
	// would too, but only later, in the background.
	exec.Command("ip", "link", "del", vethOf(ns)).Run()
	out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput()
	if err != nil && !bytes.Contains(out, []byte("No such file")) {
		return fmt.Errorf("ip netns del %s: %w: %s", ns, err, bytes.TrimSpace(out))
	}
	return nil
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func run(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// ParseRate reads a rate in tc's units (bit, kbit, mbit, gbit: powers of
// 1000) into bits per second.
func ParseRate(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}, {"bit", 1}} {
		if v, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = v, u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	// Written so that NaN fails too.
	if err != nil || !(v > 0 && v*float64(mult) <= 1e13) {
		return 0, fmt.Errorf("rate %q: want a positive rate like 100mbit", s)
	}
	return int64(v * float64(mult)), nil
}
