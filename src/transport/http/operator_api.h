// The operator API, /api/v1 (docs/api/operator.md): devices, sites, artifacts, rollouts and
// API tokens, for the `drover` CLI, the dashboard and scripts. Every request carries
// "Authorization: Bearer <API token>"; the token's role decides what it may do: a viewer
// reads, an operator also changes the fleet, an admin also manages tokens. Authentication
// comes before everything else (401), then the role (403), then the request itself.
#pragma once

#include "fleet/artifact_service.h"
#include "fleet/device_auth.h"
#include "fleet/device_service.h"
#include "fleet/operator_tokens.h"
#include "fleet/prediction.h"
#include "fleet/site_service.h"
#include "rollout/engine.h"
#include "rollout/event_log.h"
#include "rollout/queries.h"
#include "transport/http/router.h"

namespace drover::http {

struct OperatorServices {
  OperatorTokens& tokens;
  DeviceService& devices;
  DeviceAuth& auth;
  ArtifactService& artifacts;
  SiteService& sites;
  RolloutQueries& rollouts;  // what is read about rollouts, and plan previews
  RolloutEngine& engine;     // what changes them
};

void add_operator_api(Router& router, OperatorServices services);

// GET /api/v1/fleet/summary (viewer): the fleet at a glance (DeviceService::summary),
// counted at most once per kSummaryMaxAge (the answer's "at" says when).
inline constexpr Duration kSummaryMaxAge = seconds(2);
void add_fleet_summary(Router& router, OperatorServices services, Clock& clock);

// GET /api/v1/rollouts/{id}/events?after=SEQ&limit=N (viewer): the rollout's recent events
// from `events`, for polling what is new.
void add_rollout_events(Router& router, OperatorServices services, const RolloutEventLog& events);

// GET /api/v1/rollouts/{id}/timeline?points=N&stratum=KEY (viewer): the rollout's devices
// offered, updated, failed and reverted at N times (default 120) from its start to its end
// or now (RolloutQueries::timeline), for the console's chart.
void add_rollout_timeline(Router& router, OperatorServices services, Clock& clock);

// POST /api/v1/rollouts/predict?horizon=&install_time=&reboot_time=&bandwidth= (viewer): the
// digital twin's prediction of the plan in the body on the live fleet, by `predict` (given by
// the program that links the twin). The plan is checked as a create would first; one
// prediction runs at a time (429 with Retry-After for another meanwhile), on a worker thread.
// A fleet of more than `max_devices` in service is refused (400) before it is copied.
void add_rollout_prediction(Router& router, OperatorServices services, Clock& clock,
                            RolloutPredictor predict, size_t max_devices = kMaxPredictedDevices);

// The artifact upload's entry in ServerOptions::large_bodies: bodies up to `max_bytes` within
// `timeout`, spooled to the artifact service's incoming directory, and admitted on the head
// before a byte of the body is read — a token with the operator role (else 401/403), a
// declared Content-Length (else 411), room on the disk for it (else 507).
ServerOptions::LargeBody artifact_upload_body(OperatorServices services, size_t max_bytes,
                                              Duration timeout);

}  // namespace drover::http
