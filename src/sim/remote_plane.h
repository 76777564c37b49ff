// A control plane elsewhere (`drover sim --network --server URL`): what the simulator asks of
// a running `drover serve`, through its operator API (docs/api/operator.md) with an operator
// token — sites, artifacts and devices set up, the rollout created and started, its progress
// read back in the engine's own terms.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"
#include "model/artifact.h"
#include "model/device.h"
#include "model/rollout.h"
#include "model/site.h"
#include "rollout/engine.h"

namespace drover::http {
class HttpClient;
}

namespace drover::sim {

class RemoteControlPlane {
 public:
  // kInvalidArgument for a bad URL or TLS file; nothing is sent yet.
  static Result<std::unique_ptr<RemoteControlPlane>> create(const std::string& server,
                                                            const std::string& token,
                                                            const std::string& ca_file);
  ~RemoteControlPlane();

  // kOk when the server does not know the device; kAlreadyExists when it does (a fleet from
  // an earlier run is there). kUnauthenticated / kPermissionDenied for the token.
  Status check_absent(std::string_view device_id);
  Status put_site(const Site& site);
  // The artifact with `content`; the server computes size and sha256.
  Result<Artifact> upload(const Artifact& meta, std::string_view content);
  // Registers the device (type, revision, site, connectivity).
  Status register_device(const Device& device);
  // Creates and starts the rollout; returns its id.
  Result<std::string> start_rollout(const RolloutPlan& plan);
  // The rollout's record and progress, as the engine reports them. kNotFound when the
  // server no longer has its progress loaded.
  Result<RolloutProgress> progress(const std::string& rollout_id);

 private:
  explicit RemoteControlPlane(std::unique_ptr<http::HttpClient> client, std::string token);
  // The request, with the token; the answer's body when its status is `expect` (or `also`),
  // otherwise an error carrying the server's message.
  Result<std::string> call(std::string_view method, const std::string& target,
                           std::string_view body, int expect, int also = 0,
                           std::string_view content_type = "application/json");

  std::unique_ptr<http::HttpClient> client_;
  std::string token_;
};

// What check_done needs: the progress summed up as the engine's summary() would.
RolloutSummary summarize(const RolloutProgress& p);

}  // namespace drover::sim
