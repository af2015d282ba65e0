# vpp-maglev: `make demo` runs the daemon on the bundled demo, `make test` runs everything.
# Both set up what they need: Debian packages (when run as root), a .venv, the project.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
APT_PACKAGES := python3-venv python3-dev libssl-dev git iproute2 procps socat openssh-client tmux groff-base libcap2-bin build-essential debhelper dh-virtualenv lintian chromium chromium-driver fonts-liberation fonts-noto-color-emoji
SOURCES := maglev test twisted_plugins bench

.PHONY: pkg-deb all demo test lint typecheck pytest setup install-deps venv install clean bench-probes bench-vppemu bench-sync bench-maglevt bench-grpc bench-web bench-peers proto vpp-api screenshots

all: test

demo: install
	$(BIN)/python -m maglev.demo

test: install lint typecheck pytest

lint:
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)

typecheck:
	$(BIN)/mypy

pytest:
	$(BIN)/python -m pytest $(PYTEST_ARGS)

setup: install

# The web UI's screenshots in docs/screenshots/, from the browser tests.
screenshots: install
	MAGLEV_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/python -m pytest test/test_web_browser.py

# Debian packages the build and the tests use; installed only when missing, only as root.
install-deps:
	@missing=""; for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else \
		echo "not root: skipping Debian packages$$missing (tests needing them will skip)"; \
	fi

$(VENV)/.deps: setup.cfg pyproject.toml | install-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q '.[test]'
	touch $@

venv: $(VENV)/.deps

# A regular (not editable) install: twistd only finds plugins in an installed twisted/plugins.
# The compiled connect-check engine is also built in place, for code run from the tree (tests).
install: $(VENV)/.deps
	$(BIN)/pip install -q --no-deps --force-reinstall .
	$(BIN)/python setup.py -q build_ext --inplace

# Debian packages (vpp-maglev, vpp-maglevd) into dist/; needs root for the build tools.
DEB_BUILD_PACKAGES := build-essential debhelper dh-virtualenv python3-venv python3-dev libssl-dev lintian
pkg-deb:
	@$(MAKE) --no-print-directory install-deps APT_PACKAGES="$(DEB_BUILD_PACKAGES) git"
	debian/build-debs dist
	lintian --fail-on error dist/vpp-maglev_*.changes

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis .demo maglev/BUILD_COMMIT
	rm -f maglev/health/probes/_connect*.so

bench-probes: install
	$(BIN)/python bench/probes.py

bench-vppemu: install
	$(BIN)/python bench/vppemu.py

bench-sync: install
	$(BIN)/python bench/sync.py

bench-maglevt: install
	$(BIN)/python bench/maglevt.py

bench-grpc: install
	$(BIN)/python bench/grpc.py

bench-web: install
	$(BIN)/python bench/web.py

# The peers are Debian's haproxy and keepalived; installed here when missing (as root).
bench-peers: install
	@$(MAKE) --no-print-directory install-deps APT_PACKAGES="haproxy keepalived"
	$(BIN)/python bench/peers.py

# The generated stubs are committed; test_proto.py fails when they are stale.
proto: $(VENV)/.deps
	$(BIN)/python -m maglev.api.codegen

# The VPP API definitions the package carries (maglev/vppapi/definitions.json), from VPP's JSON.
VPP_API_SOURCE ?= ../shared/vpp-api
vpp-api: $(VENV)/.deps
	$(BIN)/python -m maglev.vppapi.generate --from $(VPP_API_SOURCE)
