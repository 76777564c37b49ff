#include "agent/statsd.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "agent/decimal.h"
#include "base/file_system.h"

namespace drover::agent {
namespace {

constexpr size_t kMaxNameBytes = 100;  // leaves room for a suffix within the 128 of a metric
constexpr double kMinSampleRate = 1e-4;
constexpr double kMaxValue = 1e15;              // sums of such stay finite and exact enough
constexpr size_t kMaxDatagramsPerDrain = 1024;  // a flooding program cannot stall the agent

bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// Any printable name onto the rule: other characters become '_', a leading digit gets one.
std::string metric_name(std::string_view raw) {
  std::string out;
  if (!raw.empty() && raw.front() >= '0' && raw.front() <= '9') out += '_';
  for (char c : raw) out += name_char(c) || c == ':' ? c : '_';
  return out;
}

std::string label_name(std::string_view raw) {
  std::string out;
  if (!raw.empty() && raw.front() >= '0' && raw.front() <= '9') out += '_';
  for (char c : raw) out += name_char(c) ? c : '_';
  while (out.size() >= 2 && out[0] == '_' && out[1] == '_') out.erase(0, 1);
  return out;
}

bool parse_number(std::string_view s, double& out) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (!s.empty() && s.front() == '+') return false;  // one sign at most
  return parse_decimal(s, out);
}

}  // namespace

Result<StatsdLine> parse_statsd_line(std::string_view line) {
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
  const size_t colon = line.find(':');
  const size_t bar = line.find('|');
  if (colon == std::string_view::npos || bar == std::string_view::npos || bar < colon)
    return invalid_argument("a statsd line is name:value|type");
  StatsdLine out;
  const std::string_view raw_name = line.substr(0, colon);
  if (raw_name.empty() || raw_name.size() > kMaxNameBytes)
    return invalid_argument("a statsd metric name has 1 to 100 characters");
  for (char c : raw_name) {
    if (static_cast<unsigned char>(c) <= ' ' || static_cast<unsigned char>(c) >= 0x7f)
      return invalid_argument("a statsd metric name is printable ASCII without spaces");
  }
  out.name = metric_name(raw_name);
  std::string_view value = line.substr(colon + 1, bar - colon - 1);
  std::string_view rest = line.substr(bar + 1);
  const size_t next = rest.find('|');
  const std::string_view type = rest.substr(0, next);
  rest = next == std::string_view::npos ? std::string_view() : rest.substr(next + 1);
  if (type == "c") {
    out.type = StatsdType::kCounter;
  } else if (type == "g") {
    out.type = StatsdType::kGauge;
    out.relative = !value.empty() && (value.front() == '+' || value.front() == '-');
  } else if (type == "ms" || type == "h" || type == "d") {
    out.type = StatsdType::kTiming;
  } else {
    return invalid_argument("a statsd type is c, g, ms, h or d");
  }
  if (!parse_number(value, out.value) || std::fabs(out.value) > kMaxValue)
    return invalid_argument("a statsd value is a number of magnitude at most 1e15");
  while (!rest.empty()) {
    const size_t cut = rest.find('|');
    const std::string_view field = rest.substr(0, cut);
    rest = cut == std::string_view::npos ? std::string_view() : rest.substr(cut + 1);
    if (field.size() > 1 && field.front() == '@') {
      if (!parse_number(field.substr(1), out.sample_rate) || out.sample_rate < kMinSampleRate ||
          out.sample_rate > 1) {
        return invalid_argument("a statsd sample rate is in [0.0001, 1]");
      }
    } else if (field.size() > 1 && field.front() == '#') {
      std::string_view tags = field.substr(1);
      while (!tags.empty()) {
        const size_t comma = tags.find(',');
        const std::string_view tag = tags.substr(0, comma);
        tags = comma == std::string_view::npos ? std::string_view() : tags.substr(comma + 1);
        if (tag.empty()) continue;
        const size_t sep = tag.find(':');
        std::string name = label_name(tag.substr(0, sep));
        std::string text(sep == std::string_view::npos ? "" : tag.substr(sep + 1));
        if (!protocol::is_valid_label_name(name) || name == "agg")
          return invalid_argument("a statsd tag's name is not a label name");
        if (!protocol::is_valid_label_value(text))
          return invalid_argument("a statsd tag's value is printable, at most 128 bytes");
        out.labels.emplace_back(std::move(name), std::move(text));
      }
    } else {
      return invalid_argument("a statsd field after the type is @rate or #tags");
    }
  }
  std::sort(out.labels.begin(), out.labels.end());
  out.labels.erase(std::unique(out.labels.begin(), out.labels.end(),
                               [](const auto& a, const auto& b) { return a.first == b.first; }),
                   out.labels.end());
  if (out.labels.size() > protocol::kMaxSeriesLabels - 1)  // `agg` may be added
    return invalid_argument("a statsd line has more than 7 tags");
  return out;
}

void StatsdAggregator::add_datagram(std::string_view datagram) {
  while (!datagram.empty()) {
    const size_t nl = datagram.find('\n');
    const std::string_view line = datagram.substr(0, nl);
    datagram = nl == std::string_view::npos ? std::string_view() : datagram.substr(nl + 1);
    if (line.empty()) continue;
    auto parsed = parse_statsd_line(line);
    if (!parsed.ok()) {
      ++rejected_;
      continue;
    }
    add(*parsed);
  }
}

void StatsdAggregator::add(const StatsdLine& line) {
  auto key = std::make_pair(line.name, line.labels);
  auto it = series_.find(key);
  if (it == series_.end()) {
    // A timing is four label sets of its metric: the server takes 100 per metric.
    size_t& sets = label_sets_[line.name];
    const size_t weight = line.type == StatsdType::kTiming ? 4 : 1;
    if (series_.size() >= limits_.max_series || (sets + 1) * weight > limits_.max_label_sets) {
      ++rejected_;
      return;
    }
    ++sets;
    it = series_.emplace(std::move(key), Series{line.type}).first;
  } else if (it->second.type != line.type) {
    ++rejected_;  // one name, one type
    return;
  }
  Series& s = it->second;
  s.fresh = true;
  switch (line.type) {
    case StatsdType::kCounter:
      s.total += line.value / line.sample_rate;
      break;
    case StatsdType::kGauge:
      s.gauge = line.relative && s.gauge_set ? s.gauge + line.value : line.value;
      s.gauge_set = true;
      break;
    case StatsdType::kTiming:
      if (s.count == 0) {
        s.min = s.max = line.value;
      } else {
        s.min = std::min(s.min, line.value);
        s.max = std::max(s.max, line.value);
      }
      // A sampled timing stands for 1/rate timings of its value.
      {
        // 1/rate timings, rounded (a rate is at least 1e-4: at most 10,000 of them).
        const double inverse = 1 / line.sample_rate;
        auto times = static_cast<uint64_t>(inverse);
        if (inverse - static_cast<double>(times) >= 0.5) ++times;
        s.count += times;
        s.sum += line.value * static_cast<double>(times);
      }
      break;
  }
}

std::vector<protocol::TelemetrySeries> StatsdAggregator::flush(int64_t t_ms) {
  std::vector<protocol::TelemetrySeries> out;
  auto with_agg = [](std::vector<std::pair<std::string, std::string>> labels, const char* agg) {
    labels.emplace_back("agg", agg);
    std::sort(labels.begin(), labels.end());
    return labels;
  };
  for (auto& [key, s] : series_) {
    const auto& [name, labels] = key;
    switch (s.type) {
      case StatsdType::kCounter:
        out.push_back({name + "_total", labels, {{t_ms, s.total}}});
        break;
      case StatsdType::kGauge:
        if (s.fresh) out.push_back({name, labels, {{t_ms, s.gauge}}});
        break;
      case StatsdType::kTiming:
        if (s.count > 0) {
          out.push_back({name, with_agg(labels, "count"), {{t_ms, static_cast<double>(s.count)}}});
          out.push_back({name, with_agg(labels, "max"), {{t_ms, s.max}}});
          out.push_back(
              {name, with_agg(labels, "mean"), {{t_ms, s.sum / static_cast<double>(s.count)}}});
          out.push_back({name, with_agg(labels, "min"), {{t_ms, s.min}}});
        }
        s.count = 0;
        s.sum = 0;
        break;
    }
    s.fresh = false;
  }
  return out;
}

Result<StatsdSocket> StatsdSocket::bind(const std::string& path) {
  sockaddr_un address{};
  if (path.empty() || path.size() >= sizeof address.sun_path)
    return invalid_argument("the statsd socket path must be 1 to 107 bytes: " + path);
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return io_error("creating the statsd socket: " + errno_text(errno));
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.data(), path.size());
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    const int e = errno;
    ::close(fd);
    return io_error("binding the statsd socket " + path + ": " + errno_text(e));
  }
  ::chmod(path.c_str(), 0660);
  return StatsdSocket(fd, path);
}

StatsdSocket::StatsdSocket(StatsdSocket&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)) {}

StatsdSocket::~StatsdSocket() {
  if (fd_ < 0) return;
  ::close(fd_);
  ::unlink(path_.c_str());
}

size_t StatsdSocket::drain(StatsdAggregator& into) {
  std::array<char, 8192> buffer{};
  size_t n = 0;
  while (n < kMaxDatagramsPerDrain) {
    // MSG_TRUNC: the datagram's real length, so one cut short is refused, not half-read.
    const ssize_t got = ::recv(fd_, buffer.data(), buffer.size(), MSG_DONTWAIT | MSG_TRUNC);
    if (got < 0) {
      if (errno == EINTR) continue;
      return n;  // EAGAIN: nothing more waits
    }
    ++n;
    if (static_cast<size_t>(got) > buffer.size()) {
      into.reject();
      continue;
    }
    into.add_datagram(std::string_view(buffer.data(), static_cast<size_t>(got)));
  }
  return n;
}

}  // namespace drover::agent
