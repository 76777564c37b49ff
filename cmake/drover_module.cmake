# drover_module(NAME SOURCES ... DEPS ...): one static library per source folder.
function(drover_module name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(drover_${name} STATIC ${ARG_SOURCES})
  target_include_directories(drover_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(drover_${name} PUBLIC ${ARG_DEPS} PRIVATE drover_warnings)
endfunction()

# drover_test(NAME SOURCES ... DEPS ...): one gtest binary per module. Property tests get a
# fixed RapidCheck seed so every run checks the same cases.
function(drover_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main drover_warnings)
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60
    PROPERTIES ENVIRONMENT "RC_PARAMS=seed=20261126 max_success=400")
endfunction()
