// SiteService: the fleet's sites — where devices are, their time zone and maintenance
// windows. A site written here is stored, and the rollout engine's offers follow its windows
// from then on.
#pragma once

#include <vector>

#include "base/result.h"
#include "model/site.h"
#include "rollout/engine.h"
#include "store/store.h"

namespace drover {

class SiteService {
 public:
  SiteService(Store& store, RolloutEngine& engine) : store_(store), engine_(engine) {}

  Result<std::vector<Site>> list();
  // Creates the site or replaces it whole. kInvalidArgument: the site is not valid (an
  // unknown time zone, a window that is not one); nothing is written then.
  Result<Site> put(Site site);

 private:
  Store& store_;
  RolloutEngine& engine_;
};

}  // namespace drover
