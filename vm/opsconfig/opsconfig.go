package opsconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/nanofs/nanofs/tfs"
	"github.com/nanofs/nanofs/vm/launch"
)

// Config is what nanofs takes from an ops config.json (ops's
// types.Config, read the way ops reads it: keys matched case-insensitively
// as encoding/json does, an unknown key an error as ops's
// DisallowUnknownFields makes it).
type Config struct {
	Args                []string
	Env                 map[string]string
	Files               []string
	Dirs                []string
	MapDirs             map[string]string
	Klibs               []string
	KlibDir             string
	NameServers         []string
	DisableArgsCopy     bool
	BaseVolumeSz        string
	Boot, Kernel        string
	NanosVersion        string
	RebootOnExit        bool
	Debugflags, NoTrace []string
	// Manifest holds the root keys the file sets: ManifestPassthrough,
	// RebootOnExit, Debugflags, NoTrace and RunConfig's static network.
	Manifest tfs.Tuple

	// RunConfig, for `run`.
	Ports  []string // HOST:GUEST[/udp], as launch.ParsePortForward takes them
	Memory string
	CPUs   int

	// Warnings name the keys nanofs knows but does not act on.
	Warnings []string

	passthrough tfs.Tuple // ManifestPassthrough, laid over Manifest last
}

// opsKey is one key of ops's config: how to take its value, or why nanofs
// leaves it aside.
type opsKey struct {
	name   string
	set    func(c *Config, raw json.RawMessage) error
	ignore string // reason, for keys nanofs does not act on
}

// opsKeys mirrors ops's types.Config.
var opsKeys = []opsKey{
	{name: "Args", set: func(c *Config, raw json.RawMessage) error { return decodeStrings(raw, &c.Args, nil) }},
	{name: "Env", set: func(c *Config, raw json.RawMessage) error {
		if err := decodeInto(raw, &c.Env, "an object of strings"); err != nil {
			return err
		}
		for k := range c.Env {
			if k == "" || strings.ContainsAny(k, "=\x00") {
				return fmt.Errorf("%q is not an environment variable name", k)
			}
		}
		return nil
	}},
	{name: "Files", set: func(c *Config, raw json.RawMessage) error { return decodeStrings(raw, &c.Files, nonEmpty) }},
	{name: "Dirs", set: func(c *Config, raw json.RawMessage) error { return decodeStrings(raw, &c.Dirs, nonEmpty) }},
	{name: "MapDirs", set: func(c *Config, raw json.RawMessage) error {
		if err := decodeInto(raw, &c.MapDirs, "an object of strings"); err != nil {
			return err
		}
		for k, v := range c.MapDirs {
			if k == "" || !path.IsAbs(v) {
				return fmt.Errorf("%q: %q: want a host path pattern mapped to an absolute path in the image", k, v)
			}
		}
		return nil
	}},
	{name: "Klibs", set: func(c *Config, raw json.RawMessage) error {
		return decodeStrings(raw, &c.Klibs, func(s string) error {
			if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\x00") {
				return fmt.Errorf("%q is not a klib name", s)
			}
			return nil
		})
	}},
	{name: "KlibDir", set: func(c *Config, raw json.RawMessage) error { return decodeInto(raw, &c.KlibDir, "a string") }},
	{name: "NameServers", set: func(c *Config, raw json.RawMessage) error {
		return decodeStrings(raw, &c.NameServers, func(s string) error {
			if net.ParseIP(s) == nil {
				return fmt.Errorf("%q is not an IP address", s)
			}
			return nil
		})
	}},
	{name: "DisableArgsCopy", set: func(c *Config, raw json.RawMessage) error {
		return decodeInto(raw, &c.DisableArgsCopy, "true or false")
	}},
	{name: "BaseVolumeSz", set: func(c *Config, raw json.RawMessage) error {
		if err := decodeInto(raw, &c.BaseVolumeSz, "a string such as \"100m\""); err != nil {
			return err
		}
		if c.BaseVolumeSz != "" {
			if _, err := tfs.ParseSize(c.BaseVolumeSz); err != nil {
				return err
			}
		}
		return nil
	}},
	{name: "Boot", set: func(c *Config, raw json.RawMessage) error { return decodeInto(raw, &c.Boot, "a string") }},
	{name: "Kernel", set: func(c *Config, raw json.RawMessage) error { return decodeInto(raw, &c.Kernel, "a string") }},
	{name: "NanosVersion", set: func(c *Config, raw json.RawMessage) error {
		return decodeInto(raw, &c.NanosVersion, "a string")
	}},
	{name: "RebootOnExit", set: func(c *Config, raw json.RawMessage) error {
		return decodeInto(raw, &c.RebootOnExit, "true or false")
	}},
	{name: "Debugflags", set: func(c *Config, raw json.RawMessage) error {
		return decodeStrings(raw, &c.Debugflags, manifestKeyName)
	}},
	{name: "NoTrace", set: func(c *Config, raw json.RawMessage) error { return decodeStrings(raw, &c.NoTrace, nonEmpty) }},
	{name: "ManifestPassthrough", set: func(c *Config, raw json.RawMessage) error {
		var m map[string]json.RawMessage
		if err := decodeInto(raw, &m, "an object"); err != nil {
			return err
		}
		c.passthrough = tfs.Tuple{}
		for k, v := range m {
			if err := manifestKeyName(k); err != nil {
				return err
			}
			val, err := manifestValue(v)
			if err != nil {
				return fmt.Errorf("%q: %w", k, err)
			}
			c.passthrough[k] = val
		}
		return nil
	}},
	{name: "RunConfig", set: func(c *Config, raw json.RawMessage) error { return decodeObject(raw, opsRunKeys, c, "RunConfig.") }},
	// Known, not acted on.
	{name: "BuildDir", ignore: "nanofs builds in memory"},
	{name: "CloudConfig", ignore: "cloud settings"},
	{name: "TargetConfig", ignore: "cloud settings"},
	{name: "Force", ignore: "ops download setting"},
	{name: "Home", ignore: "ops home directory"},
	{name: "Mounts", ignore: "volumes are not supported"},
	{name: "NightlyBuild", ignore: "nanofs takes the Nanos release or kernel files it is given"},
	{name: "Program", ignore: "the program comes from the image or the build's entry"},
	{name: "ProgramPath", ignore: "the program comes from the image or the build's entry"},
	{name: "TargetRoot", ignore: "the image is the root"},
	{name: "LocalFilesParentDirectory", ignore: "ops replaces it with the config file's directory; nanofs does the same"},
	{name: "TFSv4", ignore: "nanofs writes TFS version 5"},
	{name: "Uefi", ignore: "UEFI disks are not supported"},
	{name: "UefiBoot", ignore: "UEFI disks are not supported"},
	{name: "Version", ignore: "package metadata"},
	{name: "Language", ignore: "package metadata"},
	{name: "Runtime", ignore: "package metadata"},
	{name: "Description", ignore: "package metadata"},
	{name: "VolumesDir", ignore: "volumes are not supported"},
	{name: "PackageBaseURL", ignore: "ops package repository"},
	{name: "PackageManifestURL", ignore: "ops package repository"},
}

// opsRunKeys mirrors ops's types.RunConfig.
var opsRunKeys = []opsKey{
	{name: "Ports", set: func(c *Config, raw json.RawMessage) error { return decodePorts(raw, c, "") }},
	{name: "UDPPorts", set: func(c *Config, raw json.RawMessage) error { return decodePorts(raw, c, "/udp") }},
	{name: "Memory", set: func(c *Config, raw json.RawMessage) error {
		if err := decodeInto(raw, &c.Memory, "a string such as \"2G\""); err != nil {
			return err
		}
		if c.Memory != "" {
			if _, err := launch.ParseMemory(c.Memory); err != nil {
				return err
			}
		}
		return nil
	}},
	{name: "CPUs", set: func(c *Config, raw json.RawMessage) error {
		if err := decodeInto(raw, &c.CPUs, "a number"); err != nil {
			return err
		}
		if c.CPUs < 0 || c.CPUs > 1024 {
			return fmt.Errorf("%d CPUs", c.CPUs)
		}
		return nil
	}},
	{name: "IPAddress", set: networkKey("ipaddr")},
	{name: "IPv6Address", set: networkKey("ip6addr")},
	{name: "NetMask", set: networkKey("netmask")},
	{name: "Gateway", set: networkKey("gateway")},
	{name: "Accel", ignore: "nanofs uses KVM whenever it is usable, unless the run chooses an accelerator"},
	{name: "AtExit", ignore: "no hooks"},
	{name: "Bridged", ignore: "nanofs runs QEMU user networking"},
	{name: "BridgeIPAddress", ignore: "nanofs runs QEMU user networking"},
	{name: "BridgeName", ignore: "nanofs runs QEMU user networking"},
	{name: "TapName", ignore: "nanofs runs QEMU user networking"},
	{name: "CanIPForward", ignore: "cloud settings"},
	{name: "GPUs", ignore: "cloud settings"},
	{name: "GPUType", ignore: "cloud settings"},
	{name: "Debug", ignore: "no GDB stub"},
	{name: "GdbPort", ignore: "no GDB stub"},
	{name: "ImageName", ignore: "the build names its output"},
	{name: "InstanceGroup", ignore: "cloud settings"},
	{name: "InstanceName", ignore: "cloud settings"},
	{name: "Kernel", ignore: "use the top-level Kernel"},
	{name: "Mgmt", ignore: "no QMP"},
	{name: "QMP", ignore: "no QMP"},
	{name: "Vga", ignore: "the console is serial"},
	{name: "Mounts", ignore: "volumes are not supported"},
	{name: "AttachVolumeOnInstanceCreate", ignore: "volumes are not supported"},
	{name: "Nics", ignore: "one NIC, QEMU user networking"},
	{name: "Background", ignore: "run stays in the foreground"},
	{name: "BackgroundDetach", ignore: "run stays in the foreground"},
	{name: "ShowDebug", ignore: "nanofs's own verbosity decides"},
	{name: "ShowErrors", ignore: "nanofs's own verbosity decides"},
	{name: "ShowWarnings", ignore: "nanofs's own verbosity decides"},
	{name: "Verbose", ignore: "nanofs's own verbosity decides"},
	{name: "JSON", ignore: "nanofs's own output format decides"},
	{name: "VolumeSizeInGb", ignore: "cloud settings"},
	{name: "ThreadsPerCore", ignore: "cloud settings"},
}

// reservedManifestKeys are the root keys nanofs itself sets from the image
// and the flags: a config may not set them behind their back.
var reservedManifestKeys = map[string]string{
	"children":    "it is the directory tree",
	"program":     "it is the build's entry",
	"arguments":   "use Args or the program's arguments",
	"environment": "use Env or the build's environment",
	"cwd":         "it is the build's working directory",
	"klibs":       "use Klibs",
}

// Parse reads an ops config.json.
func Parse(data []byte) (*Config, error) {
	c := &Config{}
	if err := decodeObject(data, opsKeys, c, ""); err != nil {
		return nil, err
	}
	if err := c.finish(); err != nil {
		return nil, err
	}
	return c, nil
}

// decodeObject reads a JSON object key by key, in order (a later duplicate
// wins, as with encoding/json), matching keys as encoding/json does: the
// exact name first, then any case.
func decodeObject(data []byte, keys []opsKey, c *Config, prefix string) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return syntaxError(data, err)
	}
	if tok == nil {
		return nil // null: nothing set
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("%swant a JSON object", strings.TrimSuffix(prefix, "."))
	}
	var unknown []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return syntaxError(data, err)
		}
		name, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return syntaxError(data, err)
		}
		k := findKey(keys, name)
		switch {
		case k == nil:
			unknown = append(unknown, unknownKey(prefix, name, keys))
		case k.ignore != "":
			if !isZeroJSON(raw) {
				c.Warnings = append(c.Warnings, fmt.Sprintf("ignoring %s%s (%s)", prefix, k.name, k.ignore))
			}
		default:
			if err := k.set(c, raw); err != nil {
				return fmt.Errorf("%s%s: %w", prefix, k.name, err)
			}
		}
	}
	if _, err := dec.Token(); err != nil {
		return syntaxError(data, err)
	}
	if prefix == "" {
		if _, err := dec.Token(); err != io.EOF {
			return fmt.Errorf("more data after the JSON object")
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("unknown %s %s (ops and nanofs reject keys they do not know)", plural(len(unknown), "key", "keys"), strings.Join(unknown, ", "))
	}
	return nil
}

func findKey(keys []opsKey, name string) *opsKey {
	for i := range keys {
		if keys[i].name == name {
			return &keys[i]
		}
	}
	for i := range keys {
		if strings.EqualFold(keys[i].name, name) {
			return &keys[i]
		}
	}
	return nil
}

// unknownKey names an unknown key, with the known key it most looks like.
func unknownKey(prefix, name string, keys []opsKey) string {
	s := strconv.Quote(prefix + name)
	best, dist := "", 3
	for _, k := range keys {
		if d := editDistance(strings.ToLower(name), strings.ToLower(k.name)); d < dist {
			best, dist = k.name, d
		}
	}
	if best != "" {
		s += fmt.Sprintf(" (did you mean %q?)", prefix+best)
	}
	return s
}

// editDistance is the Levenshtein distance, for "did you mean".
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// syntaxError says where in the file a JSON error is.
func syntaxError(data []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) && se.Offset <= int64(len(data)) {
		line := 1 + bytes.Count(data[:se.Offset], []byte("\n"))
		return fmt.Errorf("line %d: %w", line, err)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("unexpected end of the JSON data")
	}
	return err
}

// isZeroJSON reports whether a value leaves its key at its default: null,
// false, 0, "", [] or {}.
func isZeroJSON(raw json.RawMessage) bool {
	switch strings.TrimSpace(string(raw)) {
	case "null", "false", "0", `""`, "[]", "{}":
		return true
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return false
	}
	switch v := v.(type) {
	case []any:
		return len(v) == 0
	case map[string]any:
		return len(v) == 0
	case float64:
		return v == 0
	}
	return false
}

func decodeInto(raw json.RawMessage, v any, want string) error {
	if err := json.Unmarshal(raw, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("want %s, not %s", want, te.Value)
		}
		return err
	}
	return nil
}

func decodeStrings(raw json.RawMessage, v *[]string, check func(string) error) error {
	if err := decodeInto(raw, v, "an array of strings"); err != nil {
		return err
	}
	if check != nil {
		for _, s := range *v {
			if err := check(s); err != nil {
				return err
			}
		}
	}
	return nil
}

func nonEmpty(s string) error {
	if s == "" {
		return errors.New("an empty string")
	}
	return nil
}

// manifestKeyName accepts a root key a config may set.
func manifestKeyName(k string) error {
	if k == "" {
		return errors.New("an empty manifest key")
	}
	if why, ok := reservedManifestKeys[k]; ok {
		return fmt.Errorf("the manifest key %q is nanofs's to set (%s)", k, why)
	}
	return nil
}

// manifestValue converts a ManifestPassthrough value as ops writes it:
// strings, arrays and objects of those (ops refuses anything else).
func manifestValue(raw json.RawMessage) (tfs.Value, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	return toManifest(v, 0)
}

func toManifest(v any, depth int) (tfs.Value, error) {
	if depth > 32 {
		return nil, errors.New("nested too deeply")
	}
	switch v := v.(type) {
	case string:
		return tfs.String(v), nil
	case []any:
		out := make(tfs.Vector, len(v))
		for i, e := range v {
			val, err := toManifest(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = val
		}
		return out, nil
	case map[string]any:
		out := tfs.Tuple{}
		for k, e := range v {
			if k == "" {
				return nil, errors.New("an empty key")
			}
			val, err := toManifest(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = val
		}
		return out, nil
	case nil:
		return nil, errors.New("null is not a manifest value (ops writes strings, arrays and objects)")
	}
	return nil, fmt.Errorf("%v is not a manifest value: write it as a string, as ops requires (flags as \"t\")", v)
}

// decodePorts reads ops's port list: "80", "80,443", or "8080-80", which
// ops hands QEMU as hostfwd=tcp::8080-:80, host port 8080 to guest port 80.
func decodePorts(raw json.RawMessage, c *Config, proto string) error {
	var ports []string
	if err := decodeStrings(raw, &ports, nil); err != nil {
		return err
	}
	for _, s := range ports {
		for _, p := range strings.Split(s, ",") {
			host, guest, ok := strings.Cut(p, "-")
			if !ok {
				guest = host
			}
			fwd := host + ":" + guest + proto
			if _, err := launch.ParsePortForward(fwd); err != nil {
				return fmt.Errorf("%q: want PORT, HOST-GUEST or a comma-separated list of those", s)
			}
			c.Ports = append(c.Ports, fwd)
		}
	}
	return nil
}

// networkKey sets a static network key of the root tuple (spec §7: the
// first interface's settings may sit at the root), as ops does.
func networkKey(key string) func(c *Config, raw json.RawMessage) error {
	return func(c *Config, raw json.RawMessage) error {
		var s string
		if err := decodeInto(raw, &s, "a string"); err != nil {
			return err
		}
		if s == "" {
			return nil
		}
		if net.ParseIP(s) == nil {
			return fmt.Errorf("%q is not an IP address", s)
		}
		if c.Manifest == nil {
			c.Manifest = tfs.Tuple{}
		}
		c.Manifest[key] = tfs.String(s)
		return nil
	}
}

// finish turns the flag-like keys into manifest keys, then lays
// ManifestPassthrough over them, as ops applies it last.
func (c *Config) finish() error {
	if c.Manifest == nil {
		c.Manifest = tfs.Tuple{}
	}
	if c.RebootOnExit {
		c.Manifest["reboot_on_exit"] = tfs.Flag{}
	}
	for _, f := range c.Debugflags {
		c.Manifest[f] = tfs.Flag{}
	}
	if len(c.NoTrace) > 0 {
		c.Manifest["notrace"] = tfs.Strings(c.NoTrace...)
	}
	for k, v := range c.passthrough {
		c.Manifest[k] = v
	}
	// ops loads the firewall klib for a firewall key.
	if _, ok := c.passthrough["firewall"]; ok && !slices.Contains(c.Klibs, "firewall") {
		c.Klibs = append(c.Klibs, "firewall")
	}
	if len(c.Manifest) == 0 {
		c.Manifest = nil
	}
	return nil
}

// EnvRender is the environment variable that, set to "true", makes Load
// expand $VARS in the file first, as ops's config interpolation does.
const EnvRender = "ops_render_config"

// Load reads the ops config.json at file.
func Load(file string) (*Config, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	if os.Getenv(EnvRender) == "true" {
		data = []byte(os.ExpandEnv(string(data)))
	}
	return Parse(data)
}

// SortedEnv is Env as NAME=VALUE, sorted by name.
func (c *Config) SortedEnv() []string {
	var env []string
	for _, k := range slices.Sorted(maps.Keys(c.Env)) {
		env = append(env, k+"="+c.Env[k])
	}
	return env
}
