# Cross-compiling drover-agent for 64-bit ARM boards (Debian arm64): Debian's cross compiler
# (crossbuild-essential-arm64) and the arm64 libraries installed beside the host's
# (multiarch: libssl-dev:arm64 and the rest, scripts/install-deps.sh --arm64). Used by
# make agent-arm64 with DROVER_AGENT_ONLY.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# Libraries and their CMake packages from /usr/lib/aarch64-linux-gnu, never the host's.
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_IGNORE_PATH /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu
    /usr/lib/x86_64-linux-gnu/cmake /usr/include/x86_64-linux-gnu)
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
# Programs the build runs (none so far) would run under qemu-user.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64)
