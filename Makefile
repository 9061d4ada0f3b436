# trawl — two commands do everything on a fresh Debian machine with Rust:
#   make demo   install missing system packages, build, run `trawl demo` on samples/
#   make test   fmt check, clippy -D warnings, every test (incl. corpus conformance), fuzz smoke
SHELL := /bin/bash
CARGO ?= cargo
CORPUS ?= $(abspath ../shared/corpus)
export TRAWL_CORPUS := $(CORPUS)

# Debian packages the build and the tests need (real parsers and tools, no mocks).
APT_PACKAGES := libpcap-dev pkg-config tshark tcpdump tcpreplay iproute2 iptables ipset \
                nftables bind9-utils ripgrep chromium python3-pip
PIP_PACKAGES := idstools

.PHONY: demo test deps build fmt clippy unit corpus-check fuzz-smoke bench perf

deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@for p in $(PIP_PACKAGES); do \
	  python3 -c "import $$p" 2>/dev/null || python3 -m pip install -q $$p || \
	  python3 -m pip install -q --break-system-packages $$p; \
	done

build: deps
	$(CARGO) build --release --bin trawl

demo: build
	./target/release/trawl demo

fmt:
	$(CARGO) fmt --all -- --check

# vendor/fst is a path dependency, and with the root package a member (".") every path
# dependency below the root is a workspace member: its tests and style are upstream's.
NOT_OURS := --exclude fst

clippy: deps
	$(CARGO) clippy --workspace $(NOT_OURS) --all-targets -- -D warnings

unit: deps
	$(CARGO) test --workspace $(NOT_OURS) --no-fail-fast

corpus-check:
	@if [ -d "$(CORPUS)" ]; then \
	  echo "corpus: $(CORPUS) present; conformance tests ran against it"; \
	else \
	  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"; \
	  echo "!!! CORPUS ABSENT: $(CORPUS) -- corpus conformance tests did NOT run !!!"; \
	  echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"; \
	fi

# Every fuzz target, deterministically (fixed seed, fixed run count, empty corpus), so a
# green run here is green in CI; `cargo fuzz run TARGET` explores for as long as you like.
FUZZ_RUNS ?= 30000
fuzz-smoke:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	cd fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz build -O
	@set -e; cd fuzz; for t in $$(ls fuzz_targets | sed 's/\.rs$$//'); do \
	  dir=$$(mktemp -d); \
	  RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run -O $$t $$dir -- -seed=1 -runs=$(FUZZ_RUNS) -rss_limit_mb=2048 >$$dir.log 2>&1 \
	    || { tail -30 $$dir.log; echo "fuzz target $$t FAILED"; exit 1; }; \
	  echo "fuzz $$t: $$(grep -o 'Done [0-9]* runs' $$dir.log)"; rm -rf $$dir $$dir.log; \
	done

test: fmt clippy unit fuzz-smoke corpus-check

bench: deps
	$(CARGO) bench
