#include "telemetry/remote_write.h"

#include <snappy.h>

#include <bit>
#include <charconv>
#include <map>

#include "base/units.h"
#include "transport/http/client.h"

namespace drover::telemetry {
namespace {

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

// A length-delimited field (wire type 2).
void put_bytes(std::string& out, int field, std::string_view bytes) {
  put_varint(out, static_cast<uint64_t>(field) << 3 | 2);
  put_varint(out, bytes.size());
  out.append(bytes);
}

std::string cursor_text(const LogPosition& p) {
  return std::to_string(p.segment) + " " + std::to_string(p.offset) + "\n";
}

Result<LogPosition> parse_cursor(std::string_view text, const std::string& path) {
  LogPosition p;
  const char* at = text.data();
  const char* end = text.data() + text.size();
  auto a = std::from_chars(at, end, p.segment);
  if (a.ec != std::errc() || a.ptr == end || *a.ptr != ' ') {
    return Error{ErrorCode::kCorruption, path + ": not a log position"};
  }
  auto b = std::from_chars(a.ptr + 1, end, p.offset);
  if (b.ec != std::errc() || b.ptr == end || *b.ptr != '\n' || b.ptr + 1 != end) {
    return Error{ErrorCode::kCorruption, path + ": not a log position"};
  }
  return p;
}

}  // namespace

std::string encode_write_request(
    const std::vector<std::pair<Labels, std::vector<Sample>>>& series) {
  std::string out;
  std::string ts;
  std::string item;
  for (const auto& [labels, samples] : series) {
    ts.clear();
    for (const auto& [name, value] : labels) {
      item.clear();
      put_bytes(item, 1, name);
      put_bytes(item, 2, value);
      put_bytes(ts, 1, item);  // TimeSeries.labels
    }
    for (const Sample& s : samples) {
      item.clear();
      item.push_back(0x09);  // Sample.value: fixed64
      const auto bits = std::bit_cast<uint64_t>(s.value);
      for (int i = 0; i < 8; ++i) item.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));
      item.push_back(0x10);  // Sample.timestamp: varint (int64, two's complement)
      put_varint(item, static_cast<uint64_t>(s.t_ms));
      put_bytes(ts, 2, item);  // TimeSeries.samples
    }
    put_bytes(out, 1, ts);  // WriteRequest.timeseries
  }
  return out;
}

Result<std::optional<LogPosition>> RemoteWriter::saved_position(FileSystem& fs,
                                                                const std::string& cursor_path) {
  auto text = fs.read(cursor_path);
  if (!text.ok()) {
    if (text.error().code == ErrorCode::kNotFound) return std::optional<LogPosition>();
    return text.error();
  }
  auto p = parse_cursor(*text, cursor_path);
  if (!p.ok()) return p.error();
  return std::optional<LogPosition>(*p);
}

RemoteWriter::RemoteWriter(TimeSeriesStore& store, FileSystem& fs, Clock& clock,
                           RemoteWriteOptions options, LabelsFn labels_of, LogFn log)
    : store_(store),
      fs_(fs),
      clock_(clock),
      options_(std::move(options)),
      labels_of_(std::move(labels_of)),
      log_(std::move(log)) {}

RemoteWriter::~RemoteWriter() { stop(); }

Status RemoteWriter::start() {
  const size_t scheme = options_.url.find("://");
  const size_t slash =
      scheme == std::string::npos ? std::string::npos : options_.url.find('/', scheme + 3);
  if (slash == std::string::npos) {
    return invalid_argument("remote write URL '" + options_.url +
                            "' needs a path, e.g. http://host:8428/api/v1/write");
  }
  base_url_ = options_.url.substr(0, slash);
  path_ = options_.url.substr(slash);
  if (auto client = http::HttpClient::create(base_url_); !client.ok()) return client.error();
  auto saved = saved_position(fs_, options_.cursor_path);
  if (!saved.ok()) return saved.error();
  const LogPosition from = saved->value_or(LogPosition{});
  store_.hold_log(from);
  {
    MutexLock lock(mu_);
    stats_.position = from;
  }
  {
    MutexLock lock(wake_->mu);
    wake_->stop = false;
  }
  thread_ = std::thread([this] { run(); });
  return ok_status();
}

void RemoteWriter::stop() {
  {
    MutexLock lock(wake_->mu);
    wake_->stop = true;
  }
  wake_->cv.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool RemoteWriter::stopping() const {
  MutexLock lock(wake_->mu);
  return wake_->stop;
}

RemoteWriteStats RemoteWriter::stats() const {
  MutexLock lock(mu_);
  return stats_;
}

void RemoteWriter::wait(Duration d) {
  const Clock::TimerId timer = clock_.schedule_after(d, [wake = wake_] {
    {
      MutexLock lock(wake->mu);
      wake->woken = true;
    }
    wake->cv.notify_all();
  });
  {
    Wake& w = *wake_;
    MutexLock lock(w.mu);
    w.cv.wait(w.mu, [&w]() REQUIRES(w.mu) { return w.woken || w.stop; });
    w.woken = false;
  }
  clock_.cancel(timer);
}

bool RemoteWriter::deliver(const std::string& body, uint64_t samples) {
  http::Headers headers = {{"Content-Type", "application/x-protobuf"},
                           {"Content-Encoding", "snappy"},
                           {"X-Prometheus-Remote-Write-Version", "0.1.0"}};
  for (const auto& h : options_.headers) headers.push_back(h);
  Duration backoff = options_.min_backoff;
  std::unique_ptr<http::HttpClient> client;
  for (;;) {
    if (stopping()) return false;
    std::string error;
    if (!client) {
      auto made = http::HttpClient::create(base_url_);
      if (made.ok()) {
        client = std::move(*made);
      } else {
        error = made.error().to_string();
      }
    }
    if (client) {
      auto r = client->request("POST", path_, body, headers);
      if (!r.ok()) {
        error = r.error().to_string();
        client.reset();
      } else if (r->status >= 200 && r->status < 300) {
        MutexLock lock(mu_);
        stats_.samples_sent += samples;
        ++stats_.requests_sent;
        return true;
      } else if (r->status != 429 && r->status < 500) {
        const std::string why = "remote write refused " + std::to_string(samples) +
                                " samples for good: HTTP " + std::to_string(r->status) + " " +
                                r->body.substr(0, 200);
        {
          MutexLock lock(mu_);
          stats_.samples_dropped += samples;
          stats_.last_error = why;
        }
        if (log_) log_("error", why);
        return true;
      } else {
        error = "HTTP " + std::to_string(r->status) + " " + r->body.substr(0, 200);
      }
    }
    {
      MutexLock lock(mu_);
      ++stats_.requests_failed;
      stats_.last_error = error;
    }
    if (log_)
      log_("warn", "remote write failed, retrying in " + format_duration(backoff) + ": " + error);
    wait(backoff);
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

void RemoteWriter::run() {
  LogPosition cursor;
  {
    MutexLock lock(mu_);
    cursor = stats_.position;
  }
  std::map<std::string, Labels> label_cache;
  Duration backoff = options_.min_backoff;
  for (;;) {
    if (stopping()) return;
    auto read = store_.read_log(cursor, size_t{4} << 20);
    if (!read.ok()) {
      if (log_)
        log_("error", "remote write cannot read the telemetry log: " + read.error().to_string());
      {
        MutexLock lock(mu_);
        stats_.last_error = read.error().to_string();
      }
      wait(backoff);
      backoff = std::min(backoff * 2, options_.max_backoff);
      continue;
    }
    backoff = options_.min_backoff;
    if (read->skipped) {
      if (log_) {
        log_("error", "remote write: telemetry log from segment " + std::to_string(cursor.segment) +
                          " was let go before it was sent (the hold's cap); going on at segment " +
                          std::to_string(read->next.segment));
      }
      MutexLock lock(mu_);
      ++stats_.segments_skipped;
    }
    if (read->series.empty()) {
      if (read->next != cursor) {
        cursor = read->next;
        continue;
      }
      wait(options_.poll);
      continue;
    }
    // Samples of one series in one request entry, in log order (which is time order).
    std::vector<std::pair<Labels, std::vector<Sample>>> pending;
    std::map<std::string, size_t> index;
    uint64_t in_request = 0;
    uint64_t dropped = 0;
    auto flush = [&]() -> bool {
      if (pending.empty()) return true;
      std::string proto = encode_write_request(pending);
      std::string body;
      snappy::Compress(proto.data(), proto.size(), &body);
      bool ok = deliver(body, in_request);
      pending.clear();
      index.clear();
      in_request = 0;
      return ok;
    };
    for (SeriesSamples& ss : read->series) {
      auto cached = label_cache.find(ss.key);
      if (cached == label_cache.end())
        cached = label_cache.emplace(ss.key, labels_of_(ss.key)).first;
      if (cached->second.empty()) {
        dropped += ss.samples.size();
        continue;
      }
      auto [at, fresh] = index.try_emplace(ss.key, pending.size());
      if (fresh) pending.emplace_back(cached->second, std::vector<Sample>{});
      auto& samples = pending[at->second].second;
      samples.insert(samples.end(), ss.samples.begin(), ss.samples.end());
      in_request += ss.samples.size();
      if (in_request >= options_.max_samples_per_request && !flush()) return;
    }
    if (!flush()) return;
    if (label_cache.size() > 100'000) label_cache.clear();  // devices move between sites
    cursor = read->next;
    Status saved = write_atomically(fs_, options_.cursor_path, cursor_text(cursor));
    store_.hold_log(cursor);
    MutexLock lock(mu_);
    stats_.position = cursor;
    stats_.samples_dropped += dropped;
    if (!saved.ok()) stats_.last_error = "cannot save the position: " + saved.error().to_string();
  }
}

}  // namespace drover::telemetry
