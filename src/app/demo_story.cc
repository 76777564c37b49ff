#include "app/demo_scenario.h"

namespace drover::app {
const char* const kDemoStory =
    "a security patch (firmware 4.2.1) goes to 15,000 building controllers in 200 buildings across "
    "four "
    "time zones, each building updating only inside its night-time maintenance window. The 4.2.1 "
    "build does "
    "not boot on hardware revision rev-c. Nobody drives between sites: the rollout engine canaries "
    "every "
    "stratum, halts rev-c when its canary fails, sends any rev-c device that committed it back to "
    "4.2.0, and "
    "carries the other revisions to completion.";
}  // namespace drover::app
