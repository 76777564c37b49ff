// The telemetry twin (docs/telemetry.md, "On the twin"): a small fleet of device models —
// building controllers, soil probes that sleep between reports, trucks with twenty metrics
// at 1 Hz — on a virtual clock, each reporting through the real agent's telemetry
// (TelemetryAgent: the profile's rules, the store-and-forward queue, batches in CBOR and
// zstd) into the real TelemetryService and embedded store, and judged by the real freshness
// contracts. Only the HTTP hop is left out (the batch bytes go to the service's ingest as the
// route would give them). The remediation rules `drover serve` runs (health/remediator.h) run
// every minute, and a controller takes the remote commands its check-in answers carry.
// Stories it tells: a probe asleep by design is fresh; a controller whose collector hung but
// that still checks in is found and fixed remotely (its alert opens, a restart of the
// collector is queued, runs at its next check-in, the data comes back and the alert resolves
// itself); another whose hang a restart does not cure is stale, its alert open and the reboot
// waiting for the restart's verification; one that died is offline; one whose link dropped
// for two hours loses nothing; one with a memory leak is forecast to run out days ahead; a
// truck's bytes on the wire with the profile's one-minute aggregates against raw and against
// JSON.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/result.h"
#include "model/alert.h"
#include "model/command.h"

namespace drover::sim {

struct TelemetryTwinOptions {
  uint64_t seed = 1;
  Duration horizon = hours(5) + minutes(30);
  uint32_t controllers = 12;  // at least 5: the first five carry the stories (a sixth one more)
  uint32_t probes = 6;        // at least 1
  uint32_t trucks = 2;        // at least 1
  // The telemetry store's directory; empty: a fresh one (in /dev/shm when there is one),
  // removed at the end.
  std::string dir;
};

struct TelemetryKind {
  std::string kind;  // controller, probe, truck
  uint32_t devices = 0;
  uint64_t samples_measured = 0;  // what the device models produced
  uint64_t samples_sent = 0;      // what the agents' batches carried (after aggregation)
  uint64_t batches = 0;
  uint64_t wire_bytes = 0;  // the batches' bodies, CBOR + zstd
};

struct TelemetryStory {
  std::string device;
  std::string freshness;  // as the service judges it at the end
  std::string text;       // one line for a person
};

struct TelemetryTwinReport {
  Duration horizon{0};
  std::vector<TelemetryKind> kinds;
  uint64_t samples_stored = 0;                // the store's count at the end
  std::map<std::string, uint32_t> freshness;  // state -> devices
  std::vector<TelemetryStory> stories;
  // Per truck and hour on the wire: the profile's 1-minute min/max/mean; the same samples
  // raw (CBOR + zstd, one batch a minute); and raw as JSON.
  double truck_aggregated_bytes_per_hour = 0;
  double truck_raw_bytes_per_hour = 0;
  double truck_json_bytes_per_hour = 0;
  uint64_t dropped = 0;  // samples any device dropped (should be none)
  // Remediation as drover serve runs it: every alert as it stands at the end, and every
  // remote command queued for one.
  std::vector<Alert> alerts;
  std::vector<Command> commands;
  // Device health as drover serve judges it (health::HealthView): devices healthy, degraded,
  // critical and unknown; those not healthy, lowest score first, with their first reason.
  std::array<size_t, 4> health{};
  struct AtRisk {
    std::string device;
    std::string status;
    int score = 0;
    std::string reason;
  };
  std::vector<AtRisk> at_risk;
  // Controllers whose available memory is forecast to run out within 30 days (device
  // health's forecast over what the store has of the run), soonest first.
  struct Forecast {
    std::string device;
    Duration expected{0};  // from the end of the run
    Duration earliest{0};
    double latest_s = 0;  // +inf: it may never
    double slope_per_hour = 0;
  };
  std::vector<Forecast> forecasts;
};

// Runs the twin. kInvalidArgument for a fleet too small for its stories; kIo for a store
// that cannot be opened.
Result<TelemetryTwinReport> run_telemetry_twin(const TelemetryTwinOptions& options);

// The report for a person: the demo's telemetry chapter.
std::string describe(const TelemetryTwinReport& report);

}  // namespace drover::sim
