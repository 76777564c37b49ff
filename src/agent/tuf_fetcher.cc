#include "agent/tuf_fetcher.h"

namespace drover::agent {

Status HttpMetadataFetcher::fetch_to(const std::string& url, const Sink& sink) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return invalid_argument("not an http(s) URL: " + url);
  const size_t path_start = url.find('/', scheme_end + 3);
  if (path_start == std::string::npos) return invalid_argument("no path in " + url);
  const std::string origin = url.substr(0, path_start);
  auto& client = clients_[origin];
  if (!client) {
    auto made = http::HttpClient::create(origin, options_);
    if (!made.ok()) {
      clients_.erase(origin);
      return made.error();
    }
    client = std::move(*made);
  }
  auto answer = client->get_to(url.substr(path_start), {}, sink);
  if (!answer.ok()) {
    client->close();  // a transfer cut short leaves the connection mid-body
    return answer.error();
  }
  if (answer->status == 403 || answer->status == 404)
    return not_found("HTTP " + std::to_string(answer->status));
  if (answer->status < 200 || answer->status > 299)
    return io_error("HTTP " + std::to_string(answer->status));
  return ok_status();
}

}  // namespace drover::agent
