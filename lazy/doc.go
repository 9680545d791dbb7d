// Package lazy presents a container image as one read-only io/fs file
// system whose file contents cross the network only when they are read.
//
// Open takes a registry reference (with Docker's defaults), an OCI image
// layout directory or a docker-save tarball, reads the manifest and config
// (choosing a platform from a multi-platform index), indexes every layer
// and merges the layers with the overlay rules of the OCI image
// specification. How a layer is indexed depends on what it is:
//
//   - eStargz (gzip with a table of contents and the TOC digest annotated on
//     the layer): the footer and TOC are fetched with one range request for
//     the blob's last 64 KiB (a second one for the rest of a larger TOC),
//     every layer's at once, and checked against the annotation; a file read then fetches only the gzip
//     members holding the chunks it touches (neighbours in one request), each
//     chunk checked against its TOC digest and cached by it.
//   - zstd:chunked (podman and buildah's partial-pull format: a zstd layer
//     whose files' contents are zstd frames of their own, its TOC located
//     by the manifest-position annotation, io.github.containers.* or the
//     older io.containers.* keys): the TOC is fetched with one range
//     request and checked against the manifest-checksum annotation; files
//     are then read frame by frame as eStargz ones are.
//   - gzip, zstd and uncompressed layers: no random access exists, so the
//     layer is read once, decompressed while it downloads, its tar entries
//     recorded, and the uncompressed tar kept in the cache, published only
//     once the blob's digest and the config's diff_id match.
//
// A reference by digest whose manifest is cached costs no request; a tag
// opened WithTagCheckLater starts from the manifest it named last time
// while the registry is asked where it points now (Image.CheckTag), and a
// registry that answered in plain HTTP is not tried with TLS first again.
// Registry access (authentication, manifests) is go-containerregistry's;
// blob ranges are plain HTTP requests through its authenticating transport,
// checked (206 and the Content-Range asked for), retried with backoff (the
// registry's /v2/ ping too), and resumed from the last byte received. A
// registry that answers a range request with the whole blob (200) is
// detected once per blob; that blob is then kept whole in the cache,
// verified, and read from there. Every blob read has a deadline from its
// size and a minimum rate (WithMinRate), however its bytes trickle in; a
// failure after every retry wraps ErrNetwork. A layer read whole may expand
// only so far (WithMaxExpansion).
//
// The cache (os.UserCacheDir()/nanofs unless WithCacheDir) is
// content-addressed, written atomically and shared by concurrent processes
// through file locks. An eStargz chunk is checked against its digest once,
// before it is stored, and read from then on with pread after a size check
// (VerifyCache hashes every entry again on demand); a layer read whole is
// verified before its tar enters the cache and read from then on the same
// way, its per-segment digests checked again by VerifyCache.
//
// Reads of eStargz layers are fetched ahead: PrefetchLater queues files
// (a resolve queues each file it puts in a plan) that background workers
// fetch while the caller goes on; an image keeps a bounded number of range
// requests in flight, neighbouring members share a request, and each gzip
// member is decompressed and hashed on a core of its own. Its temporary files
// carry the writer's PID: Open removes those of processes that died, and
// PruneCache also bounds the cache's size, least recently used first.
package lazy
