// What `drover --version` and `drover-agent --version` print: the project's version, the
// commit it was built from ("-dirty" when the tree had changes) and the build type.
#pragma once

#include <string>

namespace drover::app {

extern const char* const kVersion;
extern const char* const kCommit;
extern const char* const kBuildType;

// "<program> <version> (commit <commit>, <build type>)"
inline std::string version_text(const char* program) {
  return std::string(program) + " " + kVersion + " (commit " + kCommit + ", " + kBuildType + ")";
}

}  // namespace drover::app
