# vmclone - two entry points (see README.md):
#   make run     install missing deps (Debian 12, as root), build, run the demo
#   make check   install missing deps, build, run every test suite
# Variables: BUILD (build dir, default build), MESON_OPTS (e.g. -Dwerror=true)

BUILD ?= build
MESON_OPTS ?=

.PHONY: run check deps build clean

run: build
	scripts/demo.sh $(BUILD)/src/cli/vm-clone

check: build
	@rc=0; meson test -C $(BUILD) --print-errorlogs --num-processes 2 || rc=$$?; \
	scripts/test-summary.py $(BUILD)/meson-logs/testlog.json; exit $$rc

deps:
	@scripts/install-deps.sh

build: deps
	@if [ -f $(BUILD)/build.ninja ]; then \
	    [ -z "$(MESON_OPTS)" ] || meson configure $(BUILD) $(MESON_OPTS); \
	else \
	    meson setup $(BUILD) $(MESON_OPTS); \
	fi
	ninja -C $(BUILD)

clean:
	rm -rf $(BUILD)
