# ClinicDesk: `make run` starts the app on a demo profile, `make test` runs
# every test. Both first install the Debian packages they need (apt-get,
# through sudo when not root) and say what they do.

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

.PHONY: run test deb deps-build deps-test deps-deb bench fmt lint clean-demo

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

fmt:
	cargo fmt --all
