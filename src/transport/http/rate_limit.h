// Per-source rate limits for the unauthenticated device endpoints (enrollment without a token,
// login): a token bucket per client address, on the injected Clock. A source over its rate
// is answered 429 with Retry-After, before any work is done for it.
//
// The table of sources is bounded (max_sources): when it is full, sources whose buckets are
// full again (idle ones) are forgotten; a flood of distinct addresses that fills it with busy
// buckets is refused as one source ("" — everyone else) until it drains.
//
// Thread-safety: all methods may be called from several threads.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/clock.h"
#include "base/mutex.h"

namespace drover::http {

struct RateLimit {
  double per_second = 1;  // sustained
  double burst = 10;      // at once, after a quiet spell
  size_t max_sources = 100'000;
};

class SourceRateLimiter {
 public:
  SourceRateLimiter(Clock& clock, RateLimit limit) : clock_(clock), limit_(limit) {}

  // Takes one request's token for `source`. Ok: go on. Otherwise the wait until the next
  // token (> 0).
  Duration take(std::string_view source);

 private:
  struct Bucket {
    double tokens = 0;
    Timestamp at{};
  };
  double refill(Bucket& b, Timestamp now) const;

  Clock& clock_;
  const RateLimit limit_;
  Mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_ GUARDED_BY(mu_);
  Timestamp last_sweep_ GUARDED_BY(mu_){};
};

// The address part of Request::remote ("192.0.2.7:5144" -> "192.0.2.7", "[::1]:80" -> "::1").
std::string_view source_address(std::string_view remote);
// What one source is for the limits: an IPv4 address itself (also when written IPv4-mapped,
// "::ffff:192.0.2.7"), an IPv6 address's /64 ("2001:db8:0:1::/64"), since one subscriber is
// routinely given a whole /64 and could otherwise spread over 2^64 sources. Anything that is
// not an address is its own source.
std::string source_key(std::string_view address);
// 127.0.0.0/8 and ::1: this machine (a local reverse proxy, the simulator, the benchmarks).
bool is_loopback(std::string_view address);

}  // namespace drover::http
