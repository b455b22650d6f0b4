# bitsmith: two commands on a fresh Debian machine.
#   make run   installs what is missing, builds, and runs the main job on the bundled sample
#   make test  installs what is missing, builds, and runs the test suite (ctest), then the
#              fuzz targets under ASan+UBSan (fuzz-ci: corpora replayed + 30 s each)
# Other targets: build, test-long (the exhaustive tests), bench, fuzz, sanitize, clean.

BUILD   ?= build
JOBS    ?= $(shell nproc)
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEB_PKGS := cmake ninja-build g++ pkg-config libhwy-dev libeigen3-dev libfmt-dev catch2 \
            nlohmann-json3-dev libcli11-dev libre2-dev
# Test-only: headless Chromium renders the report page (optional: the test says SKIPPED
# without it); clang + libclang-rt for the libFuzzer/sanitizer builds (make fuzz, and
# fuzz-ci, the sanitizer part of make test, which fails without them).
TEST_PKGS := chromium
FUZZ_PKGS := clang libclang-rt-14-dev
BITSMITH := $(BUILD)/cli/bitsmith

.PHONY: all run test test-long build deps test-deps fuzz-deps npm-deps bench fuzz fuzz-build fuzz-ci sanitize clean

all: build

# Debian packages: installed only when missing (apt-get update once first).
deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

# Optional packages: a failure to install them is a loud warning, not an error.
define install_optional
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing (optional):$$missing"; \
	  ( $(SUDO) apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing ) || \
	  echo "WARNING: could not install$$missing: the tests that need them will be SKIPPED"; \
	fi
endef
test-deps:
	$(call install_optional,$(TEST_PKGS))
fuzz-deps:
	$(call install_optional,$(FUZZ_PKGS))

# Test-only npm packages (a released ggml for differential tests, GGUF readers).
npm-deps: $(BUILD)/npm/.installed
$(BUILD)/npm/.installed: tools/testdeps/package.json
	@mkdir -p $(BUILD)/npm && cp tools/testdeps/package.json $(BUILD)/npm/
	@if cd $(BUILD)/npm && npm install --no-audit --no-fund --loglevel=error; then \
	  touch .installed; \
	else \
	  echo "WARNING: npm install failed: the ggml differential tests and GGUF reader tests will be SKIPPED"; \
	fi

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

run: build
	./tools/run_sample.sh $(BITSMITH)

test: build npm-deps test-deps
	cd $(BUILD) && ctest -LE long --output-on-failure -j $(JOBS) --timeout 1200
	$(MAKE) fuzz-ci

test-long: build npm-deps
	cd $(BUILD) && ctest -L long --output-on-failure -j 1 --timeout 7200

bench: build npm-deps
	$(BUILD)/bench/bitsmith_bench

# libFuzzer targets (clang, ASan+UBSan) in build-fuzz; FUZZ_SECONDS per target.
FUZZ_SECONDS ?= 60
fuzz-build: deps fuzz-deps
	CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DBITSMITH_FUZZ=ON -DBITSMITH_TESTS=OFF -DBITSMITH_BENCH=OFF \
	  -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS=-O1 -DCMAKE_C_FLAGS=-O1
	cmake --build build-fuzz -j $(JOBS) --target fuzz_all

fuzz: fuzz-build npm-deps
	./tools/run_fuzz.sh build-fuzz $(FUZZ_SECONDS)

# fuzz-ci (part of `make test`): every committed corpus replayed under ASan+UBSan, then each
# target fuzzed from its committed seeds with a fixed seed for FUZZ_CI_RUNS executions or
# FUZZ_CI_SECONDS, whichever comes first; any finding fails. The fixed seed makes it one
# reproducible sequence per target, not a lottery: CI runs a prefix of it, and
# `make fuzz-ci FUZZ_CI_SECONDS=300` runs (and so checks) more of the same sequence before a
# change lands. Exploring is `make fuzz` (random seeds, corpus kept). To fit the CI budget
# on 2 cores the build (build-fuzz-ci) compiles only the fuzz targets and only Highway's
# static target: -march=x86-64-v3 -maes -mpclmul + HWY_COMPILE_ONLY_STATIC, so the sanitized
# SIMD code is the AVX2 target (next to the scalar oracles; Highway 1.0.3 needs AES and PCLMUL
# for SSE4 and up, and codecs/element.cc asserts the target); `make fuzz` builds every target.
# docs/RELIABILITY.md.
FUZZ_CI_SECONDS ?= 30
FUZZ_CI_RUNS ?= 500000
FUZZ_CI_SEED ?= 20261123
FUZZ_CI_FLAGS := -O1 -march=x86-64-v3 -maes -mpclmul -DHWY_COMPILE_ONLY_STATIC=1 -DBITSMITH_EXPECT_STATIC_TARGET=HWY_AVX2
fuzz-ci: deps fuzz-deps npm-deps
	@command -v clang++ >/dev/null || { echo "make fuzz-ci needs clang (apt-get install clang libclang-rt-14-dev)"; exit 1; }
	@for f in avx2 fma bmi2 f16c aes pclmulqdq; do grep -qw $$f /proc/cpuinfo || { echo "make fuzz-ci needs an x86-64-v3 CPU with AES and PCLMUL (Highway's AVX2 target): no $$f in /proc/cpuinfo"; exit 1; }; done
	CC=clang CXX=clang++ cmake -S . -B build-fuzz-ci -G Ninja -DBITSMITH_FUZZ=ON -DBITSMITH_TESTS=OFF \
	  -DBITSMITH_BENCH=OFF -DCMAKE_BUILD_TYPE=None "-DCMAKE_CXX_FLAGS=$(FUZZ_CI_FLAGS)" "-DCMAKE_C_FLAGS=$(FUZZ_CI_FLAGS)"
	cmake --build build-fuzz-ci -j $(JOBS) --target fuzz_all
	FUZZ_SEED=$(FUZZ_CI_SEED) FUZZ_RUNS=$(FUZZ_CI_RUNS) FUZZ_FRESH=1 ./tools/run_fuzz.sh build-fuzz-ci $(FUZZ_CI_SECONDS)

# The test suite under ASan+UBSan.
sanitize: deps npm-deps
	cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBITSMITH_SANITIZE=ON
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ctest -LE "long|nosan" --output-on-failure -j $(JOBS) --timeout 2400

clean:
	rm -rf $(BUILD) build-fuzz build-fuzz-ci build-asan
