# One warnings target shared by every Drover target. Each flag says why it is on.
add_library(drover_warnings INTERFACE)
target_compile_options(drover_warnings INTERFACE
  -Wall                 # the common set of likely bugs
  -Wextra               # unused parameters, missing initialisers, sign mix-ups in comparisons
  -Werror               # a warning is a bug we have not fixed yet: the build stops
  -Wshadow              # a local hiding a member or outer variable has bitten us in state machines
  -Wnon-virtual-dtor    # interfaces (Store, Clock) are deleted through base pointers
  -Wold-style-cast      # casts must say what they do (static_cast, reinterpret_cast)
  -Woverloaded-virtual  # a derived overload hiding the interface's method is a silent bug
  -Wimplicit-fallthrough # every switch case in the state tables ends deliberately
  -Wpedantic            # stay within ISO C++20, both compilers agree on the language
)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  target_compile_options(drover_warnings INTERFACE
    -Wno-restrict       # GCC 12 at -O3 reports impossible overlaps inside std::string's
                        # operator+ (GCC bug 105329); clang still checks our own memcpy use
  )
endif()
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  target_compile_options(drover_warnings INTERFACE
    -Wthread-safety       # checks the GUARDED_BY / REQUIRES lock annotations (base/mutex.h)
    -Wthread-safety-beta  # and the lock order written with ACQUIRED_BEFORE / ACQUIRED_AFTER
  )
endif()
