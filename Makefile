# nanofs — build, test, benchmark and demo targets.
# `make test` installs the system packages the tests need (as root) and runs every test.

GO       ?= go
BIN      ?= bin/nanofs
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
# System packages the tests use; each test skips with a message when one is absent.
DEB_PKGS := fuse3 docker-registry debootstrap qemu-system-x86 musl-tools zstd gcc libc6-dev binutils iproute2 tar dnsmasq-base
# Binaries that prove each package is installed (same order as DEB_PKGS).
DEB_BINS := fusermount3 docker-registry debootstrap qemu-system-x86_64 musl-gcc zstd gcc gcc strings tc tar dnsmasq
FUZZTIME ?= 10s
TEST_TIMEOUT ?= 30m

.PHONY: all build test test-short vet bench fuzz demo demo-node deps clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/nanofs

deps:
	@missing=""; set -- $(DEB_BINS); for p in $(DEB_PKGS); do \
	  command -v $$1 >/dev/null 2>&1 || missing="$$missing $$p"; shift; done; \
	if [ -z "$$missing" ]; then echo "deps: all system packages present"; exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
	  echo "deps: missing:$$missing (install with: sudo apt-get install$$missing)"; exit 0; fi; \
	echo "deps: installing$$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null
	@$(GO) mod download

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

test: deps vet
	$(GO) test -timeout $(TEST_TIMEOUT) ./...

# Unit tests only: no debootstrap, registry processes, mounts or VMs.
test-short: vet
	$(GO) test -short ./...

# The benchmark (bench/README.md): nanofs against pull + flatten + copy over a shaped link
# (netns, veth, tc tbf, a delay proxy), every contender cold and warm, then every package's
# go test benchmarks. Writes bench/RESULTS.md, results.json and results.png. Needs root;
# about 16 minutes (22 on a fresh machine).
BENCH_TIMEOUT ?= 40m
bench: deps build
	NANOFS_BENCH=1 NANOFS_BIN=$(abspath $(BIN)) $(GO) test -count=1 -v -timeout $(BENCH_TIMEOUT) -run '^TestMacroBench$$' ./bench

# Every fuzz target for a short, bounded time.
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; done

# The main job end to end on a built-in image, no internet: build a real image
# locally, serve it from a local registry, browse it, build a disk, inspect it,
# and boot it when NANOFS_KERNEL and NANOFS_BOOT name a Nanos kernel.
demo: build
	NANOFS_BIN=$(abspath $(BIN)) $(GO) test -count=1 -v -run '^TestDemo$$' ./internal/demo

# The README's quick start: a Debian-based node image built locally (debootstrap, apt), served
# from a local registry, and `nanofs run IMAGE --entry node -- hi.js` with hi.js from a fresh
# directory (booted when NANOFS_KERNEL and NANOFS_BOOT name a Nanos kernel).
demo-node: build
	NANOFS_BIN=$(abspath $(BIN)) $(GO) test -count=1 -v -run '^TestDemoNode$$' ./internal/demo

clean:
	rm -rf bin
