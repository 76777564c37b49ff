// The `drover` CLI verbs that talk to a running server over the operator API:
//   drover device ls|show|history|add|set|set-site|tag|untag|accept|reject|unreject|
//                 decommission (remote_device.cc)
//   drover site ls|put
//   drover artifact upload|ls|show|rm
//   drover rollout create|ls|status|start|pause|resume|abort|rollback
//   drover token ls|revoke
//   drover audit ls|show|checkpoint|verify (remote_audit.cc)
//   drover enrollment-token create|ls|revoke (remote_enrollment.cc)
//   drover profile ls|show|set, drover telemetry latest|range|freshness (remote_telemetry.cc)
// Each takes --server URL (or DROVER_SERVER; default http://127.0.0.1:8480), --token T (or
// DROVER_TOKEN) and --json (the API's JSON instead of a table).
#pragma once

#include <memory>

#include "app/cli.h"

namespace CLI {
class App;
}

namespace drover::app {

class RemoteCommands {
 public:
  // Adds the verbs under `app` and under its existing `rollout` and `token` subcommands.
  RemoteCommands(CLI::App& app, CLI::App& rollout, CLI::App& token);
  ~RemoteCommands();
  RemoteCommands(const RemoteCommands&) = delete;
  RemoteCommands& operator=(const RemoteCommands&) = delete;

  // After parsing: whether one of these verbs was given, and then its exit code.
  bool parsed() const;
  // Runs it; `globals` stand in for the flags it was not given.
  int run(const GlobalFlags& globals);

  struct State;  // defined in remote_state.h, shared by the verbs

 private:
  std::unique_ptr<State> s_;
};

}  // namespace drover::app
