// Signed update metadata and targets over HTTP(S): the agent's MetadataFetcher
// (security/tuf_client.h). One keep-alive connection per origin (scheme, host and port),
// reused across files; a body is read only as far as the client's sink takes it, so a
// server that sends without end costs at most the file's limit.
//
// Thread-compatible.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "security/tuf_client.h"
#include "transport/http/client.h"

namespace drover::agent {

class HttpMetadataFetcher final : public security::tuf::MetadataFetcher {
 public:
  explicit HttpMetadataFetcher(http::ClientOptions options = {}) : options_(std::move(options)) {}

  // kNotFound for HTTP 403 and 404, the sink's first error (reading stops there),
  // kInvalidArgument for a URL that is not http(s), kIo for the network and any other
  // status.
  Status fetch_to(const std::string& url, const Sink& sink) override;

 private:
  http::ClientOptions options_;
  std::map<std::string, std::unique_ptr<http::HttpClient>> clients_;  // by origin
};

}  // namespace drover::agent
