# Thin wrapper over CMake/ctest. Each target installs what it needs first (idempotent).
BUILD ?= build
JOBS  ?= $(shell nproc)

.PHONY: all deps deps-test build test demo clean sanitize-test

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

demo: build
	./$(BUILD)/anoswin demo

clean:
	rm -rf $(BUILD)
