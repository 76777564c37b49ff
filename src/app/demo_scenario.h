// The demo scenario (scenarios/demo.json), compiled into the binary so `drover demo` runs
// anywhere.
#pragma once

namespace drover::app {
extern const char* const kDemoScenario;
extern const char* const kDemoStory;
}  // namespace drover::app
