#include "fleet/site_service.h"

namespace drover {

Result<std::vector<Site>> SiteService::list() { return store_.list_sites(); }

Result<Site> SiteService::put(Site site) {
  DROVER_TRY(validate(site));
  WriteBatch batch;
  batch.sites.push_back(site);
  DROVER_TRY(store_.apply(batch));
  engine_.site_changed(site);
  return site;
}

}  // namespace drover
