#include "transport/http/rate_limit.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cmath>

namespace drover::http {

double SourceRateLimiter::refill(Bucket& b, Timestamp now) const {
  const double seconds_passed = std::chrono::duration<double>(now - b.at).count();
  b.tokens = std::min(limit_.burst, b.tokens + std::max(0.0, seconds_passed) * limit_.per_second);
  b.at = now;
  return b.tokens;
}

Duration SourceRateLimiter::take(std::string_view source) {
  const Timestamp now = clock_.now();
  MutexLock lock(mu_);
  auto it = buckets_.find(std::string(source));
  if (it == buckets_.end()) {
    // Forgetting idle sources scans the table: at most once a second, so a flood of new
    // addresses cannot make every request pay for a scan.
    if (buckets_.size() >= limit_.max_sources && now - last_sweep_ >= seconds(1)) {
      last_sweep_ = now;
      for (auto b = buckets_.begin(); b != buckets_.end();) {
        b = refill(b->second, now) >= limit_.burst ? buckets_.erase(b) : std::next(b);
      }
    }
    // Still full of busy sources: the newcomers share one bucket.
    const std::string key = buckets_.size() >= limit_.max_sources ? "" : std::string(source);
    it = buckets_.try_emplace(key, Bucket{limit_.burst, now}).first;
  }
  Bucket& b = it->second;
  if (refill(b, now) >= 1) {
    b.tokens -= 1;
    return Duration(0);
  }
  const double wait_s = (1 - b.tokens) / limit_.per_second;
  return std::max(Duration(1), Duration(static_cast<int64_t>(std::ceil(wait_s * 1000))));
}

std::string_view source_address(std::string_view remote) {
  if (remote.starts_with('[')) {
    const size_t close = remote.find(']');
    return close == std::string_view::npos ? remote : remote.substr(1, close - 1);
  }
  const size_t colon = remote.rfind(':');
  if (colon == std::string_view::npos || remote.find(':') != colon) return remote;  // bare v6
  return remote.substr(0, colon);
}

std::string source_key(std::string_view address) {
  if (address.find(':') == std::string_view::npos || address.size() >= INET6_ADDRSTRLEN)
    return std::string(address);
  std::string text(address);
  std::array<unsigned char, 16> bytes{};
  if (inet_pton(AF_INET6, text.c_str(), bytes.data()) != 1) return text;
  static constexpr std::array<unsigned char, 12> kMapped{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::equal(kMapped.begin(), kMapped.end(), bytes.begin())) {
    std::array<char, INET_ADDRSTRLEN> v4{};
    inet_ntop(AF_INET, bytes.data() + 12, v4.data(), v4.size());
    return v4.data();
  }
  std::fill(bytes.begin() + 8, bytes.end(), 0);
  std::array<char, INET6_ADDRSTRLEN> v6{};
  inet_ntop(AF_INET6, bytes.data(), v6.data(), v6.size());
  return std::string(v6.data()) + "/64";
}

bool is_loopback(std::string_view address) {
  return address.starts_with("127.") || address == "::1" || address.starts_with("::ffff:127.");
}

}  // namespace drover::http
