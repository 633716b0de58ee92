# The two commands for a new machine: `make run` (the demo) and `make test` (the suites).
# Each installs missing Debian packages, configures with CMake, builds, then runs.
BUILD ?= build
JOBS ?= $(shell nproc)

.PHONY: run test build deps configure clean

run: build
	$(BUILD)/ropejit-demo

test: build
	ctest --test-dir $(BUILD) --verbose --no-tests=error

build: configure
	cmake --build $(BUILD) -j $(JOBS)

configure: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release

deps:
	scripts/install-deps

clean:
	rm -rf $(BUILD)
