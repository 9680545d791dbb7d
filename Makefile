# nanofs — build, test, benchmark and demo targets.
# `make test` installs the system packages the tests need (as root) and runs every test.

SHELL    := bash
GO       ?= go
BIN      ?= bin/nanofs
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
# System packages the tests use; each test skips with a message when one is absent.
DEB_PKGS := fuse3 docker-registry debootstrap qemu-system-x86 musl-tools zstd gcc libc6-dev binutils iproute2 tar dnsmasq-base
# What proves each package is installed (same order as DEB_PKGS): a command, or a file.
DEB_BINS := fusermount3 docker-registry debootstrap qemu-system-x86_64 musl-gcc zstd gcc /usr/include/stdio.h strings tc tar dnsmasq
# What `make demo` needs: a C compiler for its program, a registry to serve it, QEMU to boot it.
DEMO_PKGS := gcc libc6-dev docker-registry qemu-system-x86
DEMO_BINS := gcc /usr/include/stdio.h docker-registry qemu-system-x86_64
FUZZTIME ?= 10s
TEST_TIMEOUT ?= 30m

# A Nanos kernel, bootloader and tools for the boot tests and the TFS oracles:
# ../shared/nanos beside the checkout (as in CI) when it is there. Variables
# already set in the environment win; without a kernel, boot tests skip and
# say how to get one (`nanofs kernel fetch`).
NANOS_DIR ?= $(abspath ../shared/nanos)
ifneq ($(wildcard $(NANOS_DIR)/kernel.img),)
export NANOFS_KERNEL ?= $(NANOS_DIR)/kernel.img
export NANOFS_BOOT   ?= $(NANOS_DIR)/boot.img
export NANOS_DUMP    ?= $(NANOS_DIR)/dump
export NANOS_MKFS    ?= $(NANOS_DIR)/mkfs
endif

# $(call ensure,PKGS,PROOFS,STATUS): installs the missing Debian packages when
# run as root; otherwise prints the install line and exits with STATUS.
define ensure
	@missing=""; set -- $(2); for p in $(1); do \
	  command -v $$1 >/dev/null 2>&1 || [ -e "$$1" ] || missing="$$missing $$p"; shift; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
	  echo "missing:$$missing (install with: sudo apt-get install$$missing)"; exit $(3); fi; \
	echo "installing$$missing"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null
endef

.PHONY: all build test test-short vet bench fuzz demo demo-node deps demo-deps clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/nanofs

deps:
	$(call ensure,$(DEB_PKGS),$(DEB_BINS),0)
	@$(GO) mod download

demo-deps:
	$(call ensure,$(DEMO_PKGS),$(DEMO_BINS),1)

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

# Every test, a line per finished test, then one screen: counts, every skip
# with its reason, every failure (internal/testsummary; full log in test.log).
# In CI a skip not on .ci/allowed-skips fails the run.
test: deps vet build
	@echo "kernel for boot tests: $${NANOFS_KERNEL:-none (boot tests skip)}"
	set -o pipefail; NANOFS_BIN=$(abspath $(BIN)) $(GO) test -json -timeout $(TEST_TIMEOUT) ./... 2>&1 | \
	  $(GO) run ./internal/testsummary -allow .ci/allowed-skips -log test.log

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
demo: demo-deps build
	set -o pipefail; NANOFS_BIN=$(abspath $(BIN)) $(GO) test -json -count=1 -run '^TestDemo$$' ./internal/demo 2>&1 | \
	  $(GO) run ./internal/testsummary -v -strict -log demo.log

# The README's quick start as written, `nanofs run node:16.3.0 -- hi.js` with hi.js from a fresh
# directory: an image of node:16.3.0's shape built locally (debootstrap, Node's official build
# from npm) and served as library/node:16.3.0 by a local registry that NANOFS_REGISTRY_MIRROR
# names (booted when NANOFS_KERNEL and NANOFS_BOOT name a Nanos kernel).
demo-node: deps build
	set -o pipefail; NANOFS_BIN=$(abspath $(BIN)) $(GO) test -json -count=1 -timeout 30m -run '^TestDemoNode$$' ./internal/demo 2>&1 | \
	  $(GO) run ./internal/testsummary -v -strict -log demo.log

clean:
	rm -rf bin
