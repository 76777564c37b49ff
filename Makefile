# The two commands of the README, plus the helpers they are built from.
#   make demo   install what is missing, build Release, run the demo story
#   make test   install what is missing, build, run every test through ctest; also builds
#               everything with clang to check the lock annotations (check-clang)
BUILD_DIR ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: demo test build deps bench format tidy fuzz clean check-clang

deps:
	./scripts/install-deps.sh

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS)

build: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)

demo: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS) --target drover
	./$(BUILD_DIR)/src/app/drover demo

test: build check-clang
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)

# Every library and program built with clang, whose -Wthread-safety (an error) checks the
# lock annotations of base/mutex.h: GUARDED_BY members, REQUIRES functions, lock order.
check-clang: deps
	cmake -S . -B build-clang -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++ \
	  -DCMAKE_C_COMPILER=clang -DDROVER_TESTS=OFF -DDROVER_BENCH=OFF
	cmake --build build-clang -j $(JOBS)

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

format:
	find src tests bench fuzz -name '*.cc' -o -name '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR) build-bench build-fuzz build-clang
