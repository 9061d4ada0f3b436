# trawl — two commands do everything on a fresh Debian machine with Rust:
#   make demo   install missing system packages, build, run `trawl demo` on samples/
#   make test   fmt check, clippy -D warnings, every test (incl. corpus conformance), fuzz smoke
SHELL := /bin/bash
CARGO ?= cargo
CORPUS ?= $(abspath ../shared/corpus)
export TRAWL_CORPUS := $(CORPUS)

# Debian packages the build and the tests need (real parsers and tools, no mocks). cmake,
# libssl-dev and libcurl4-openssl-dev build librdkafka (the `kafka` feature) from source:
# librdkafka 2.12's cmake build includes curl.h whenever TLS is on, though it links no curl.
APT_PACKAGES := libpcap-dev pkg-config dpkg-dev tshark tcpdump tcpreplay iproute2 iptables ipset \
                nftables bind9-utils ripgrep chromium chromium-driver python3-pip postgresql \
                openssl curl wrk cmake libssl-dev libcurl4-openssl-dev socat
# module:requirement (module alone when both are the same name). cifsdk 3.x is CIF v3's own
# client, run against `trawl serve` by tests/cli/serve.rs; medallion is the OASIS TAXII 2.1
# server that feeds_tests/taxii.rs pulls from; pymisp (MISP's own library) writes the MISP feed
# `hashes.csv` that feeds_tests/misp_feed.rs serves.
PIP_PACKAGES := idstools cifsdk:cifsdk~=3.0 medallion pymisp
# Tansu, the Kafka-protocol broker (Rust, from crates.io) that tests/daemon/kafka.rs starts:
# built once by `make test-deps` and kept in ~/.cargo/bin. An unoptimised build without debug
# info (6 CPU-minutes here; the optimised one took 45 wall-minutes on a busy 2-core machine):
# the tests need a correct broker, not a fast one. `make demo` does not need it.
TANSU_VERSION := 0.6.0

.PHONY: demo test deps test-deps build fmt clippy unit-build unit corpus-check fuzz-smoke bench perf deb deb-check

# Cargo lines start with `+`: under `make -jN` (as `make test` runs its parts) every cargo then
# draws its compiler jobs from make's one jobserver, so N bounds the rustc processes in total.

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
	  mod="$${p%%:*}"; req="$${p#*:}"; \
	  python3 -c "import $$mod" 2>/dev/null || python3 -m pip install -q "$$req" || \
	  python3 -m pip install -q --break-system-packages "$$req"; \
	done

test-deps: deps
	@if ! command -v tansu >/dev/null 2>&1 && [ ! -x "$$HOME/.cargo/bin/tansu" ]; then \
	  echo "installing tansu $(TANSU_VERSION) (the Kafka broker of the tests) into ~/.cargo/bin"; \
	  CARGO_PROFILE_DEV_DEBUG=0 $(CARGO) install --debug tansu --version $(TANSU_VERSION) \
	    --locked --no-default-features --features dynostore; \
	fi

build: deps
	+$(CARGO) build --release --bin trawl

demo: build
	./target/release/trawl demo

fmt:
	$(CARGO) fmt --all -- --check

# vendor/fst is a path dependency, and with the root package a member (".") every path
# dependency below the root is a workspace member: its tests and style are upstream's.
NOT_OURS := --exclude fst

clippy: deps
	+$(CARGO) clippy --workspace $(NOT_OURS) --all-targets -- -D warnings

unit: test-deps
	+$(CARGO) test --workspace $(NOT_OURS) --no-fail-fast

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
	+cd fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz build -O
	@set -e; cd fuzz; for t in $$(ls fuzz_targets | sed 's/\.rs$$//'); do \
	  dir=$$(mktemp -d); \
	  RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run -O $$t $$dir -- -seed=1 -runs=$(FUZZ_RUNS) -rss_limit_mb=2048 >$$dir.log 2>&1 \
	    || { tail -30 $$dir.log; echo "fuzz target $$t FAILED"; exit 1; }; \
	  echo "fuzz $$t: $$(grep -o 'Done [0-9]* runs' $$dir.log)"; rm -rf $$dir $$dir.log; \
	done

# The Debian package: binary, man pages and completions (generated from the clap
# definitions), systemd unit, example config. Output: target/debian/trawl_<version>_<arch>.deb
ASSETS := target/assets
deb: build
	rm -rf $(ASSETS) && mkdir -p $(ASSETS)/man $(ASSETS)/completions
	./target/release/trawl generate man --out $(ASSETS)/man
	gzip -9n $(ASSETS)/man/*.1
	./target/release/trawl generate bash > $(ASSETS)/completions/trawl
	./target/release/trawl generate zsh > $(ASSETS)/completions/_trawl
	./target/release/trawl generate fish > $(ASSETS)/completions/trawl.fish
	@command -v cargo-deb >/dev/null || $(CARGO) install cargo-deb --locked
	$(CARGO) deb --no-build --strip --output target/debian/

# Install the package for real (root, or sudo), check what it put where, remove it again.
deb-check: deb
	@set -e; SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	deb=$$(ls -t target/debian/trawl_*.deb | head -1); \
	$$SUDO dpkg -i $$deb; \
	trap '$$SUDO dpkg -P trawl >/dev/null' EXIT; \
	/usr/bin/trawl --version; \
	for f in /usr/share/man/man1/trawl.1.gz /usr/share/man/man1/trawl-scan.1.gz \
	         /usr/share/bash-completion/completions/trawl /lib/systemd/system/trawl.service \
	         /etc/trawl/trawl.toml; do test -s $$f || { echo "deb-check: $$f missing"; exit 1; }; done; \
	zcat /usr/share/man/man1/trawl-scan.1.gz | grep -q 'trawl-scan' ; \
	grep -q '^ExecStart=/usr/bin/trawl run' /lib/systemd/system/trawl.service; \
	dpkg -s trawl | grep -q '^Depends:.*libpcap'; \
	echo "deb-check: $$deb installs, runs and carries its man pages, completions, unit and config"

# `make test` runs fmt, then three stages; each part writes target/test-parts/PART.log,
# printed whole when the part ends (parts never interleave) with its wall and CPU time, and a
# failing part stops the run once the parts beside it have ended (its log ends in FAILED):
#   1. clippy, beside Tansu's first build (test-deps);
#   2. the test binaries built (unit-build) with every core: clippy and this are the critical path;
#   3. the tests run (unit), which mostly waits on the services they start (PostgreSQL,
#      Chromium, Tansu, medallion), beside the fuzz build and smoke and the release build
#      and .deb check, which use that idle time.
# The parts share make's one jobserver of TEST_JOBS slots. `make PART` runs one part alone.
TEST_JOBS ?= 4
PART_LOGS := target/test-parts

unit-build: test-deps
	+$(CARGO) test --workspace $(NOT_OURS) --no-run

test: fmt deps
	@rm -rf $(PART_LOGS) && mkdir -p $(PART_LOGS)
	+@$(MAKE) --no-print-directory -j$(TEST_JOBS) part-clippy part-test-deps
	+@$(MAKE) --no-print-directory part-unit-build
	+@$(MAKE) --no-print-directory -j$(TEST_JOBS) part-unit part-fuzz-smoke part-deb-check
	@echo "make test parts (wall, CPU = user+sys of the part and its children):"; \
	for p in clippy test-deps unit-build unit fuzz-smoke deb-check; do echo "  $$p: $$(cat $(PART_LOGS)/$$p.time)"; done
	@$(MAKE) --no-print-directory corpus-check

part-%:
	+@echo "[$*] started"; TIMEFORMAT='%0R s wall, %0U+%0S s CPU'; \
	{ time $(MAKE) --no-print-directory $* >$(PART_LOGS)/$*.log 2>&1; } 2>$(PART_LOGS)/$*.time; \
	rc=$$?; cat $(PART_LOGS)/$*.log; \
	if [ $$rc = 0 ]; then echo "[$*] ok: $$(cat $(PART_LOGS)/$*.time)"; \
	else echo "[$*] FAILED (exit $$rc) after $$(cat $(PART_LOGS)/$*.time); its log: $(PART_LOGS)/$*.log"; exit 1; fi

bench: deps
	$(CARGO) bench
