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

test: deps-test
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build $(BUILD) -j $(JOBS)
	cd $(BUILD) && ctest --output-on-failure -j 2

demo: build
	./$(BUILD)/anoswin demo

clean:
	rm -rf $(BUILD)
