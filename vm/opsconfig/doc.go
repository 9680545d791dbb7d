// Package opsconfig reads an ops config.json (ops's types.Config) the way ops
// reads it, into what nanofs acts on: the program's arguments and
// environment, local files to add (Files, Dirs, MapDirs), klibs, kernel
// and disk settings, manifest keys, and RunConfig for booting. It owns the
// key table, the "did you mean" for unknown keys and the conversion of
// ManifestPassthrough values to TFS values; it applies nothing itself.
package opsconfig
