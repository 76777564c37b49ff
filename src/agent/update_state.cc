#include "agent/update_state.h"

#include <nlohmann/json.hpp>

#include "base/json_reader.h"

namespace drover::agent {

std::string encode(const UpdateRecord& r) {
  nlohmann::json windows = nlohmann::json::array();
  for (const TimeRange& w : r.windows) {
    windows.push_back({w.from.time_since_epoch().count(), w.until.time_since_epoch().count()});
  }
  nlohmann::json j = {{"step", to_string(r.step)},
                      {"rollout_id", r.rollout_id},
                      {"component", r.component},
                      {"version", r.version},
                      {"size", r.size},
                      {"sha256", r.sha256},
                      {"from_version", r.from_version},
                      {"bytes_done", r.bytes_done},
                      {"revert", r.revert},
                      {"slot", r.slot},
                      {"deadline_ms", r.deadline_ms},
                      {"windows", windows},
                      {"waiting", r.waiting},
                      {"report", r.report ? protocol::to_string(*r.report) : ""},
                      {"message", r.message},
                      {"entries", r.entries}};
  // Only when set: an agent from before switch-backs (booted by one) still reads the file.
  if (r.switch_back) j["switch_back"] = true;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

Result<UpdateRecord> decode_update_record(std::string_view text) {
  auto r = parse_json_document<UpdateRecord>(text, "update state", [](const JsonReader& j) {
    j.allow_only({"step", "rollout_id", "component", "version", "size", "sha256", "from_version",
                  "bytes_done", "revert", "switch_back", "slot", "deadline_ms", "windows",
                  "waiting", "report", "message", "entries"});
    UpdateRecord out;
    out.step = j.take("step", parse_update_step(j.str("step")));
    out.rollout_id = j.str_or("rollout_id", "");
    out.component = j.str_or("component", "");
    out.version = j.str_or("version", "");
    out.size = j.uint_or("size", 0, UINT64_MAX);
    out.sha256 = j.str_or("sha256", "");
    out.from_version = j.str_or("from_version", "");
    out.bytes_done = j.uint_or("bytes_done", 0, UINT64_MAX);
    out.revert = j.boolean_or("revert", false);
    out.switch_back = j.boolean_or("switch_back", false);
    out.slot = j.str_or("slot", "");
    if (!out.slot.empty() && out.slot != "A" && out.slot != "B") j.fail("slot", "must be A or B");
    out.deadline_ms = static_cast<int64_t>(j.uint_or("deadline_ms", 0, INT64_MAX));
    if (j.has("windows")) {
      const auto& ws = j.raw().at("windows");
      if (!ws.is_array() || ws.size() > kMaxWindows) {
        j.fail("windows", "must be a list of at most " + std::to_string(kMaxWindows) + " pairs");
      }
      for (const auto& w : ws) {
        if (!w.is_array() || w.size() != 2 || !w[0].is_number_unsigned() ||
            !w[1].is_number_unsigned() || w[0].get<uint64_t>() >= w[1].get<uint64_t>() ||
            w[1].get<uint64_t>() > (uint64_t{1} << 52)) {
          j.fail("windows", "each must be [from_ms, until_ms] with from < until");
        }
        out.windows.push_back(
            {Timestamp(Duration(w[0].get<int64_t>())), Timestamp(Duration(w[1].get<int64_t>()))});
      }
    }
    out.waiting = j.boolean_or("waiting", false);
    if (const std::string report = j.str_or("report", ""); !report.empty()) {
      auto parsed = protocol::parse_report(report);
      if (!parsed.ok() || !protocol::is_outcome(*parsed))
        j.fail("report", "unknown outcome '" + report + "'");
      else
        out.report = *parsed;
    }
    out.message = j.str_or("message", "");
    out.entries = static_cast<uint32_t>(j.uint_or("entries", 0));
    if (out.bytes_done > out.size) j.fail("bytes_done", "more than the artifact's size");
    return out;
  });
  if (!r.ok()) return Error{ErrorCode::kCorruption, r.error().message};
  return r;
}

Result<UpdateRecord> UpdateStateFile::load() {
  auto text = fs_.read(path_);
  if (!text.ok()) {
    if (text.error().code == ErrorCode::kNotFound) return UpdateRecord{};
    return text.error();
  }
  return decode_update_record(*text);
}

Status UpdateStateFile::save(const UpdateRecord& r) {
  return write_atomically(fs_, path_, encode(r));
}

Result<UpdateRecord> UpdateStateFile::advance(const UpdateRecord& current, UpdateEvent event,
                                              const std::function<void(UpdateRecord&)>& change) {
  auto step = next_step(current.step, event);
  if (!step.ok()) return step.error();
  UpdateRecord next = current;
  next.step = *step;
  next.entries = 1;  // a restart that re-enters the step counts up from here
  if (change) change(next);
  DROVER_TRY(save(next));
  return next;
}

}  // namespace drover::agent
