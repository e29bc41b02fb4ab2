# Thin wrapper over CMake/ctest. Each target installs what it needs first (idempotent).
BUILD ?= build
JOBS  ?= $(shell nproc)

.PHONY: all deps deps-test build test demo clean sanitize-test fuzz

all: build

deps:
	./scripts/install-deps.sh

deps-test:
	./scripts/install-deps.sh --test

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# All tests in the optimised build, then the unit tests again under ASan+UBSan.
test: deps-test
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build $(BUILD) -j $(JOBS)
	cd $(BUILD) && ctest --output-on-failure -j 2
	$(MAKE) --no-print-directory sanitize-test

sanitize-test:
	cmake -S . -B $(BUILD)-asan -DCMAKE_BUILD_TYPE=Release -DANOSWIN_SANITIZE=ON >/dev/null
	cmake --build $(BUILD)-asan -j $(JOBS)
	cd $(BUILD)-asan && ctest --output-on-failure -j 2 -LE slow

# libFuzzer targets (clang, ASan+UBSan), each run for FUZZ_SECONDS from the seeds in fuzz/corpus/.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= fuzz_nifti fuzz_safetensors fuzz_manifest fuzz_options
fuzz:
	./scripts/install-deps.sh --fuzz
	CC=clang cmake -S . -B $(BUILD)-fuzz -DCMAKE_BUILD_TYPE=Release -DANOSWIN_FUZZ=ON >/dev/null
	cmake --build $(BUILD)-fuzz -j $(JOBS) --target $(FUZZ_TARGETS)
	./fuzz/run.sh $(BUILD)-fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# The demo needs only the command-line tool: building the tests and benchmarks too would take
# minutes of the demo's 15 on a fresh 2-core machine.
demo: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build $(BUILD) -j $(JOBS) --target anoswin
	./$(BUILD)/anoswin demo

clean:
	rm -rf $(BUILD)
