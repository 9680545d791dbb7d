package opsconfig

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/nanofs/nanofs/tfs"
	"github.com/nanofs/nanofs/vm/launch"
)

// opsSample is a config as ops users write them (keys from ops's
// configuration documentation).
const opsSample = `{
  "Args": ["--report-on-fatalerror", "ex.js"],
  "Env": {"NODE_DEBUG": "*", "Environment": "development"},
  "Files": ["ex.js"],
  "Dirs": ["myapp/static"],
  "MapDirs": {"/etc/ssl/certs/*": "/usr/lib/ssl/certs"},
  "Klibs": ["ntp"],
  "NameServers": ["10.8.0.1"],
  "BaseVolumeSz": "100m",
  "RebootOnExit": true,
  "Debugflags": ["trace"],
  "NoTrace": ["futex"],
  "ManifestPassthrough": {"ntp_servers": ["127.0.0.1:1234"], "expected_exit_code": "3", "en1": {"mtu": "1400"}},
  "RunConfig": {"Ports": ["8080", "80,443", "9000-90"], "UDPPorts": ["53"], "Memory": "512M", "CPUs": 2,
                "IPAddress": "192.168.1.75", "NetMask": "255.255.255.0", "Gateway": "192.168.1.1"},
  "Version": "1.0", "Description": ""
}`

func TestParseOpsConfig(t *testing.T) {
	c, err := Parse([]byte(opsSample))
	require.NoError(t, err)
	assert.Equal(t, []string{"--report-on-fatalerror", "ex.js"}, c.Args)
	assert.Equal(t, map[string]string{"NODE_DEBUG": "*", "Environment": "development"}, c.Env)
	assert.Equal(t, []string{"ex.js"}, c.Files)
	assert.Equal(t, []string{"myapp/static"}, c.Dirs)
	assert.Equal(t, map[string]string{"/etc/ssl/certs/*": "/usr/lib/ssl/certs"}, c.MapDirs)
	assert.Equal(t, []string{"ntp"}, c.Klibs)
	assert.Equal(t, []string{"10.8.0.1"}, c.NameServers)
	assert.Equal(t, "100m", c.BaseVolumeSz)
	assert.Equal(t, []string{"8080:8080", "80:80", "443:443", "9000:90", "53:53/udp"}, c.Ports)
	assert.Equal(t, "512M", c.Memory)
	assert.Equal(t, 2, c.CPUs)
	assert.Equal(t, tfs.Tuple{
		"reboot_on_exit":     tfs.Flag{},
		"trace":              tfs.Flag{},
		"notrace":            tfs.Strings("futex"),
		"ntp_servers":        tfs.Strings("127.0.0.1:1234"),
		"expected_exit_code": tfs.String("3"),
		"en1":                tfs.Tuple{"mtu": tfs.String("1400")},
		"ipaddr":             tfs.String("192.168.1.75"),
		"netmask":            tfs.String("255.255.255.0"),
		"gateway":            tfs.String("192.168.1.1"),
	}, c.Manifest)
	assert.Equal(t, []string{"ignoring Version (package metadata)"}, c.Warnings, "a key left empty is not worth a warning")
	for _, p := range c.Ports {
		_, err := launch.ParsePortForward(p)
		assert.NoError(t, err, p)
	}
}

func TestParseOpsConfigCases(t *testing.T) {
	for _, tc := range []struct {
		name     string
		json     string
		wantErr  string // "" for success
		check    func(t *testing.T, c *Config)
		warnings []string
	}{
		{name: "empty object", json: `{}`, check: func(t *testing.T, c *Config) { assert.Nil(t, c.Manifest) }},
		{name: "null", json: `null`},
		{name: "keys in any case, as encoding/json matches them", json: `{"args": ["a"], "ENV": {"X": "1"}, "runconfig": {"memory": "1G"}}`,
			check: func(t *testing.T, c *Config) {
				assert.Equal(t, []string{"a"}, c.Args)
				assert.Equal(t, "1", c.Env["X"])
				assert.Equal(t, "1G", c.Memory)
			}},
		{name: "a later duplicate wins", json: `{"Args": ["a"], "args": ["b"]}`,
			check: func(t *testing.T, c *Config) { assert.Equal(t, []string{"b"}, c.Args) }},
		{name: "unknown key with a suggestion", json: `{"Fils": ["x"], "Args": []}`,
			wantErr: `unknown key "Fils" (did you mean "Files"?)`},
		{name: "every unknown key named", json: `{"Fils": ["x"], "Zzzzzzzz": 1, "RunConfig": {"Memroy": "1G"}}`,
			wantErr: `RunConfig.Memroy`},
		{name: "unknown keys listed together", json: `{"Fils": ["x"], "Zzzzzzzz": 1}`,
			wantErr: `unknown keys "Fils" (did you mean "Files"?), "Zzzzzzzz"`},
		{name: "known but unsupported keys warn", json: `{"Mounts": {"vol": "/files"}, "RunConfig": {"Bridged": true, "Accel": false}, "Program": "x/y"}`,
			warnings: []string{"ignoring Mounts (volumes are not supported)", "ignoring RunConfig.Bridged (nanofs runs QEMU user networking)",
				"ignoring Program (the program comes from the image or the build's entry)"}},
		{name: "wrong type", json: `{"Files": "ex.js"}`, wantErr: "Files: want an array of strings, not string"},
		{name: "wrong type in RunConfig", json: `{"RunConfig": {"CPUs": "2"}}`, wantErr: "RunConfig.CPUs: want a number, not string"},
		{name: "not an object", json: `["Args"]`, wantErr: "want a JSON object"},
		{name: "syntax error with its line", json: "{\n  \"Args\": [\"a\",]\n}", wantErr: "line 2"},
		{name: "truncated", json: `{"Args": ["a"`, wantErr: "unexpected end"},
		{name: "trailing data", json: `{} {}`, wantErr: "more data after the JSON object"},
		{name: "reserved manifest key", json: `{"ManifestPassthrough": {"program": "/bin/sh"}}`, wantErr: `"program" is nanofs's to set (it is the build's entry)`},
		{name: "reserved debug flag", json: `{"Debugflags": ["children"]}`, wantErr: `"children" is nanofs's to set`},
		{name: "passthrough number refused as ops does", json: `{"ManifestPassthrough": {"expected_exit_code": 3}}`,
			wantErr: `write it as a string`},
		{name: "passthrough null", json: `{"ManifestPassthrough": {"x": null}}`, wantErr: "null is not a manifest value"},
		{name: "passthrough overrides a flag key", json: `{"RebootOnExit": true, "ManifestPassthrough": {"reboot_on_exit": "t"}}`,
			check: func(t *testing.T, c *Config) { assert.Equal(t, tfs.String("t"), c.Manifest["reboot_on_exit"]) }},
		{name: "firewall passthrough loads the firewall klib", json: `{"ManifestPassthrough": {"firewall": {"rules": []}}}`,
			check: func(t *testing.T, c *Config) { assert.Equal(t, []string{"firewall"}, c.Klibs) }},
		{name: "bad port", json: `{"RunConfig": {"Ports": ["80-"]}}`, wantErr: `RunConfig.Ports: "80-"`},
		{name: "bad memory", json: `{"RunConfig": {"Memory": "lots"}}`, wantErr: "RunConfig.Memory"},
		{name: "bad IP", json: `{"RunConfig": {"IPAddress": "1.2.3"}}`, wantErr: `"1.2.3" is not an IP address`},
		{name: "bad name server", json: `{"NameServers": ["dns.example"]}`, wantErr: "NameServers"},
		{name: "bad klib", json: `{"Klibs": ["../x"]}`, wantErr: "not a klib name"},
		{name: "bad volume size", json: `{"BaseVolumeSz": "big"}`, wantErr: "BaseVolumeSz"},
		{name: "bad env name", json: `{"Env": {"A=B": "c"}}`, wantErr: "not an environment variable name"},
		{name: "MapDirs to a relative path", json: `{"MapDirs": {"x/*": "usr/lib"}}`, wantErr: "absolute path in the image"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.json))
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			if tc.check != nil {
				tc.check(t, c)
			}
			assert.ElementsMatch(t, tc.warnings, c.Warnings)
		})
	}
}

// FuzzParseOpsConfig: any input gives a config or an error, and a config
// only holds what the rest of nanofs accepts.
func FuzzParseOpsConfig(f *testing.F) {
	f.Add([]byte(opsSample))
	f.Add([]byte(`{"ManifestPassthrough": {"a": {"b": ["c", {"d": "e"}]}}, "RunConfig": {"Ports": ["1-2,3"]}}`))
	f.Add([]byte(`{"args": null, "FILES": [], "RunConfig": null}`))
	f.Add([]byte(`{"Fils": 1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if c != nil {
				t.Fatal("a config with an error")
			}
			return
		}
		for _, p := range c.Ports {
			if _, err := launch.ParsePortForward(p); err != nil {
				t.Fatalf("port %q: %v", p, err)
			}
		}
		if c.Memory != "" {
			if _, err := launch.ParseMemory(c.Memory); err != nil {
				t.Fatal(err)
			}
		}
		for k, v := range c.Manifest {
			if _, reserved := reservedManifestKeys[k]; reserved || k == "" {
				t.Fatalf("manifest key %q", k)
			}
			if err := checkManifestValue(v); err != nil {
				t.Fatalf("%q: %v", k, err)
			}
		}
		for _, w := range c.Warnings {
			if !strings.HasPrefix(w, "ignoring ") {
				t.Fatalf("warning %q", w)
			}
		}
	})
}

// checkManifestValue accepts what the TFS writer encodes.
func checkManifestValue(v tfs.Value) error {
	switch v := v.(type) {
	case tfs.String, tfs.Flag:
		return nil
	case tfs.Vector:
		for _, e := range v {
			if err := checkManifestValue(e); err != nil {
				return err
			}
		}
		return nil
	case tfs.Tuple:
		for k, e := range v {
			if k == "" {
				return assert.AnError
			}
			if err := checkManifestValue(e); err != nil {
				return err
			}
		}
		return nil
	}
	return assert.AnError
}
