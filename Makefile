# The two commands of the README, plus the helpers they are built from.
#   make demo   install what is missing, build Release, run the demo story
#   make bin    install what is missing, build drover and drover-agent only (the quickstart)
#   make deb    the Debian packages drover and drover-agent, in build/deb
#   make agent-arm64   drover-agent cross-built for 64-bit ARM, in build-arm64 (its size
#               printed); make test checks it checks in under qemu-user
#   make test   install what is missing, build, run every test through ctest; also builds
#               everything with clang (ASan+UBSan) to check the lock annotations (check-clang)
#               and runs each fuzz target briefly there (its corpus and a few seconds), and
#               the agent for arm64 (agent-arm64), run under qemu-user by a test
#   make check-sanitizers   every test under ASan+UBSan, the concurrent ones under TSan
#               (clang; CI runs it after make test)
BUILD_DIR ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: demo test build bin deb agent-arm64 deps bench format tidy fuzz clean check-clang check-sanitizers check-asan \
	check-tsan

deps:
	./scripts/install-deps.sh

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS)

build: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)

# The two programs only, server+CLI and agent (docs/quickstart.md).
bin: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS) --target drover drover-agent

# Debian packages drover (server + CLI) and drover-agent, in $(BUILD_DIR)/deb
# (scripts/build-deb.sh; checked by the test DebPackages.BuildPassLintianInstallAndRemove).
deb: bin
	scripts/build-deb.sh $(BUILD_DIR) $(BUILD_DIR)/deb

# drover-agent for 64-bit ARM boards: Debian's cross compiler, the agent alone
# (DROVER_AGENT_ONLY), in build-arm64; prints the binary's size, stripped as a package
# would ship it. Checked by the test ArmAgent.ChecksInAndUpdatesUnderQemu.
agent-arm64: deps
	./scripts/install-deps.sh --arm64
	cmake -S . -B build-arm64 -G Ninja -DCMAKE_BUILD_TYPE=Release \
	  -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-arm64.cmake -DDROVER_AGENT_ONLY=ON
	cmake --build build-arm64 -j $(JOBS) --target drover-agent
	@aarch64-linux-gnu-strip --strip-unneeded -o build-arm64/drover-agent.stripped \
	  build-arm64/src/app/drover-agent
	@echo "drover-agent for arm64: $$(stat -c %s build-arm64/src/app/drover-agent) bytes," \
	  "$$(stat -c %s build-arm64/drover-agent.stripped) stripped (build-arm64/src/app/drover-agent)"

demo: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS) --target drover
	./$(BUILD_DIR)/src/app/drover demo

test: build check-clang agent-arm64
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)
	ctest --test-dir build-asan --output-on-failure -j $(JOBS) -R '^fuzz_smoke[.]'

# The sanitizer build: clang at -O1 with ASan+UBSan, every library, program and test, in
# build-asan. Building it is also the check of the lock annotations: clang's
# -Wthread-safety (an error) checks base/mutex.h's GUARDED_BY members, REQUIRES functions
# and lock order. make test builds it and runs the fuzz targets' smoke tests in it
# (DROVER_FUZZ_SMOKE); make check-asan runs every test in it.
SAN_CMAKE = -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" \
  -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang -DDROVER_BENCH=OFF
check-clang: deps
	cmake -S . -B build-asan $(SAN_CMAKE) -DDROVER_SANITIZE=address,undefined -DDROVER_FUZZ_SMOKE=ON
	cmake --build build-asan -j $(JOBS)

# The tests whose code runs on several threads: the store and its group commit, the HTTP
# server with the device and operator APIs, the device service, the engine, the telemetry store.
TSAN_TESTS = store_test transport_test fleet_test rollout_test telemetry_test

check-sanitizers: check-asan check-tsan

# A finding aborts the test that made it, which fails.
check-asan: check-clang
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir build-asan --output-on-failure -j $(JOBS) --timeout 1800

check-tsan: deps
	cmake -S . -B build-tsan $(SAN_CMAKE) -DDROVER_SANITIZE=thread
	cmake --build build-tsan -j $(JOBS) --target $(TSAN_TESTS)
	TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 DROVER_START_LOAD_DEVICES=100000 \
	  ctest --test-dir build-tsan --output-on-failure -j $(JOBS) --timeout 1800 -E NOT_BUILT

bench: deps
	./scripts/install-deps.sh --bench
	cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DDROVER_TESTS=OFF
	cmake --build build-bench -j $(JOBS)
	./bench/run.sh build-bench

fuzz: deps
	cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang -DDROVER_FUZZ=ON -DDROVER_TESTS=OFF -DDROVER_BENCH=OFF
	cmake --build build-fuzz -j $(JOBS)
	./fuzz/run.sh build-fuzz

# clang-tidy over src/ with the checked-in .clang-tidy; any finding fails (WarningsAsErrors).
# It reads the clang build's compile commands (build-asan, configured by check-clang; only
# configured here, not built).
tidy: deps
	cmake -S . -B build-asan $(SAN_CMAKE) -DDROVER_SANITIZE=address,undefined > /dev/null
	run-clang-tidy -p build-asan -quiet -j $(JOBS) -header-filter='^$(CURDIR)/src/' \
	  '^$(CURDIR)/src/' > build-asan/tidy.log 2>&1 || { \
	  grep -E '(warning|error):' build-asan/tidy.log | sort -u; exit 1; }
	@echo "clang-tidy: no findings in src/"

format:
	find src tests bench fuzz -name '*.cc' -o -name '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR) build-bench build-fuzz build-clang build-asan build-tsan build-arm64
