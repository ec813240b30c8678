# ClinicDesk: `make run` starts the app on a demo profile, `make test` runs
# every test. Both first install the Debian packages they need (apt-get,
# through sudo when not root) and say what they do. `make fuzz` fuzzes the
# network parsers (nightly and cargo-fuzz, installed when missing).

SHELL := /bin/bash
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Building: cpal's ALSA backend and the window's GL/X11/Wayland libraries.
BUILD_PACKAGES := pkg-config libasound2-dev cmake libxkbcommon-dev libxkbcommon-x11-0 \
  libgl1 libegl1 libgl1-mesa-dri libx11-xcb1 libxcursor1 libxrandr2 libxi6 fonts-dejavu-core
# The real peers the tests start: a display, a D-Bus session with a keyring,
# and (for the telephony issues) sound and SIP peers.
TEST_PACKAGES := xvfb x11-apps imagemagick xdotool dbus dbus-x11 gnome-keyring libsecret-tools \
  pulseaudio pulseaudio-utils libasound2-plugins alsa-utils sox sip-tester kamailio kamailio-tls-modules baresip-core \
  dunst libnotify-bin util-linux postgresql openssl desktop-file-utils appstream
# Packaging: dpkg-deb and dpkg-shlibdeps, the icon's renderer, the validators
# of the desktop file and the AppStream metadata.
DEB_PACKAGES := dpkg-dev binutils librsvg2-bin desktop-file-utils appstream

.PHONY: run test deb deps-build deps-test deps-deb deps-fuzz fuzz fuzz-seeds bench fmt lint clean-demo

## Install what building needs (skipped when already installed).
deps-build:
	@missing=$$(for p in $(BUILD_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "==> Installing build packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "==> Build packages present"; fi
	@command -v cargo >/dev/null || { echo "cargo not found: install Rust 1.95 (rustup) first"; exit 1; }

## Install the peers the tests start (skipped when already installed).
deps-test: deps-build
	@missing=$$(for p in $(TEST_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "==> Installing test peers:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "==> Test peers present"; fi

## Install what packaging needs (skipped when already installed).
deps-deb: deps-build
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "==> Installing packaging tools:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "==> Packaging tools present"; fi

## The Debian package: target/debian/clinicdesk_VERSION-1_ARCH.deb (a release build;
## packaging/deb/build.sh says each step). Install it with `sudo apt install ./target/debian/clinicdesk_*.deb`.
deb: deps-deb
	@echo "==> Building the Debian package (packaging/deb/build.sh)"
	packaging/deb/build.sh

## Start the window on the demo profile (generated clinic on first start).
run: deps-build
	@echo "==> Building and starting ClinicDesk on the demo profile"
	cargo run --bin clinicdesk -- demo

## Every test: formatting, lints, unit tests and the end-to-end suite.
test: deps-test
	@echo "==> cargo fmt --check"
	cargo fmt --all -- --check
	@echo "==> cargo clippy --all-targets -- -D warnings"
	cargo clippy --all-targets -- -D warnings
	@echo "==> cargo test (unit tests, then tests/it against real peers; benches are only compiled, by clippy)"
	cargo test --lib --bins --tests -- --test-threads=2
	cargo test --doc

## Benchmarks (criterion): the replica's reads, SIP parsing, media.
bench: deps-build
	cargo bench --bench store
	cargo bench --bench sip_parse
	cargo bench --bench media
	cargo bench --bench call_latency
	cargo bench --bench peer_delay

## Install what fuzzing needs: the nightly toolchain (rustup) and cargo-fuzz
## (cargo install), each skipped when present.
deps-fuzz: deps-build
	@command -v rustup >/dev/null || { echo "rustup not found: cargo fuzz needs a nightly toolchain through rustup"; exit 1; }
	@if rustup toolchain list | grep -q '^nightly'; then echo "==> Nightly toolchain present"; \
	else echo "==> Installing the nightly toolchain (rustup toolchain install nightly)"; rustup toolchain install nightly --profile minimal; fi
	@if command -v cargo-fuzz >/dev/null; then echo "==> cargo-fuzz present"; \
	else echo "==> Installing cargo-fuzz (cargo install cargo-fuzz --locked)"; cargo install cargo-fuzz --locked; fi

## Fuzz every parser that reads the network (fuzz/fuzz_targets/), FUZZ_SECONDS
## each (default 60), from the committed seeds (fuzz/seeds/<target>) and what
## earlier runs found (fuzz/corpus/<target>, not committed). Stops at the first
## crash, panic, leak, timeout or oversized allocation and prints its input.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := sip_message sip_headers sip_uri sdp rtp rtcp dtmf jitter
FUZZ_FLAGS := -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=256 -print_final_stats=1
fuzz: deps-fuzz
	@cd fuzz && for t in $(FUZZ_TARGETS); do \
	  echo "==> Fuzzing $$t for $(FUZZ_SECONDS) s (cargo +nightly fuzz run $$t, seeds in fuzz/seeds/$$t)"; \
	  mkdir -p corpus/$$t; \
	  if ! cargo +nightly fuzz run $$t corpus/$$t seeds/$$t -- $(FUZZ_FLAGS); then \
	    crash=$$(ls -t artifacts/$$t/* 2>/dev/null | head -n 1); \
	    echo "==> $$t FAILED; its input is fuzz/$$crash:"; \
	    [ -n "$$crash" ] && od -A d -c "$$crash" | head -n 40; \
	    echo "==> Rerun it with: cd fuzz && cargo +nightly fuzz run $$t $$crash"; \
	    exit 1; \
	  fi; \
	done; echo "==> No crash in $(FUZZ_TARGETS)"

## Rebuild fuzz/seeds from the RFC 4475 messages, the SIPp scenarios and the unit tests.
fuzz-seeds:
	python3 fuzz/make_seeds.py

fmt:
	cargo fmt --all
