#include "base/json_reader.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace drover {
namespace {

// A small document type exercising every reader accessor the way the model codecs do.
struct Job {
  std::string name;
  std::string owner;
  double weight = 0;
  uint64_t retries = 0;
  bool enabled = false;
  std::vector<std::string> labels;
  Duration timeout{0};
  Duration backoff{0};
  uint64_t size = 0;
  std::vector<std::string> step_names;
  std::string target_host;
};

Job read_job(const JsonReader& r) {
  r.allow_only({"name", "owner", "weight", "retries", "enabled", "labels", "timeout", "backoff",
                "size", "steps", "target"});
  Job j;
  j.name = r.str("name");
  j.owner = r.str_or("owner", "nobody");
  j.weight = r.number_or("weight", 1.0);
  j.retries = r.uint_or("retries", 3, 10);
  j.enabled = r.boolean_or("enabled", true);
  j.labels = r.strings_or_empty("labels");
  j.timeout = r.duration("timeout");
  j.backoff = r.duration_or("backoff", seconds(5));
  j.size = r.has("size") ? r.bytes("size") : 0;
  for (const auto& s : r.array("steps")) {
    s.allow_only({"name"});
    j.step_names.push_back(s.str("name"));
  }
  if (r.has("target")) {
    const JsonReader t = r.child("target");
    t.allow_only({"host"});
    j.target_host = t.str("host");
  }
  return j;
}

Result<Job> parse_job(std::string_view text) {
  return parse_json_document<Job>(text, "job", [](const JsonReader& r) { return read_job(r); });
}

// The error message of a parse that must fail with kInvalidArgument.
std::string error_of(std::string_view text) {
  auto r = parse_job(text);
  EXPECT_FALSE(r.ok()) << text;
  if (r.ok()) return {};
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  return r.error().message;
}

TEST(JsonReader, ReadsEveryFieldAndDefaults) {
  auto full = parse_job(R"({"name": "nightly", "owner": "ops", "weight": 2.5, "retries": 7,
      "enabled": false, "labels": ["a", "b"], "timeout": "15m", "backoff": 30, "size": "48MB",
      "steps": [{"name": "fetch"}, {"name": "apply"}], "target": {"host": "h1"}})");
  ASSERT_TRUE(full.ok()) << full.error().to_string();
  EXPECT_EQ(full->name, "nightly");
  EXPECT_EQ(full->owner, "ops");
  EXPECT_EQ(full->weight, 2.5);
  EXPECT_EQ(full->retries, 7u);
  EXPECT_FALSE(full->enabled);
  EXPECT_EQ(full->labels, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(full->timeout, minutes(15));
  EXPECT_EQ(full->backoff, seconds(30));
  EXPECT_EQ(full->size, 48'000'000u);
  EXPECT_EQ(full->step_names, (std::vector<std::string>{"fetch", "apply"}));
  EXPECT_EQ(full->target_host, "h1");

  auto minimal = parse_job(R"({"name": "n", "timeout": 0})");
  ASSERT_TRUE(minimal.ok()) << minimal.error().to_string();
  EXPECT_EQ(minimal->owner, "nobody");
  EXPECT_EQ(minimal->weight, 1.0);
  EXPECT_EQ(minimal->retries, 3u);
  EXPECT_TRUE(minimal->enabled);
  EXPECT_TRUE(minimal->labels.empty());
  EXPECT_EQ(minimal->timeout, Duration(0));
  EXPECT_EQ(minimal->backoff, seconds(5));
  EXPECT_TRUE(minimal->step_names.empty());
}

TEST(JsonReader, UnknownFieldNamesThePath) {
  const std::string top = error_of(R"({"name": "n", "timeout": "1m", "colour": "red"})");
  EXPECT_NE(top.find("job.colour: unknown field"), std::string::npos) << top;
  EXPECT_NE(top.find("expected one of: name, owner"), std::string::npos) << top;

  const std::string nested = error_of(
      R"({"name": "n", "timeout": "1m", "steps": [{"name": "a"}, {"name": "b", "nmae": 1}]})");
  EXPECT_NE(nested.find("job.steps[1].nmae: unknown field"), std::string::npos) << nested;

  const std::string child = error_of(R"({"name": "n", "timeout": "1m", "target": {"hots": "x"}})");
  EXPECT_NE(child.find("job.target.hots: unknown field"), std::string::npos) << child;
}

TEST(JsonReader, WrongTypeNamesThePath) {
  EXPECT_NE(error_of(R"({"name": 5, "timeout": "1m"})").find("job.name: must be a string"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"name": "n", "timeout": "1m", "weight": "heavy"})")
                .find("job.weight: must be a number"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"name": "n", "timeout": "1m", "enabled": 1})")
                .find("job.enabled: must be true or false"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"name": "n", "timeout": "1m", "labels": ["a", 2]})")
                .find("job.labels: must be an array of strings"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"name": "n", "timeout": "1m", "steps": {"name": "a"}})")
                .find("job.steps: must be an array"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"name": "n", "timeout": "1m", "steps": [3]})")
                .find("job.steps[0]: must be an object"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"name": "n", "timeout": "1m", "target": "h1"})")
                .find("job.target: must be an object"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"name": "n", "timeout": true})").find("job.timeout: must be a duration"),
            std::string::npos);
  EXPECT_NE(error_of(R"([1, 2])").find("job: must be an object"), std::string::npos);
}

TEST(JsonReader, IntegerBounds) {
  EXPECT_NE(error_of(R"({"name": "n", "timeout": "1m", "retries": -1})")
                .find("job.retries: must be a non-negative integer"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"name": "n", "timeout": "1m", "retries": 1.5})")
                .find("job.retries: must be a non-negative integer"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"name": "n", "timeout": "1m", "retries": 11})")
                .find("job.retries: must be at most 10"),
            std::string::npos);
  EXPECT_EQ(parse_job(R"({"name": "n", "timeout": "1m", "retries": 10})").value().retries, 10u);
}

TEST(JsonReader, MissingRequiredField) {
  EXPECT_NE(error_of(R"({"timeout": "1m"})").find("job.name: is required"), std::string::npos);
  EXPECT_NE(error_of(R"({"name": "n"})").find("job.timeout: is required"), std::string::npos);
  EXPECT_NE(error_of(R"({"name": "n", "timeout": "1m", "steps": [{}]})")
                .find("job.steps[0].name: is required"),
            std::string::npos);
}

TEST(JsonReader, DurationAsNumberOrText) {
  EXPECT_EQ(parse_job(R"({"name": "n", "timeout": 90})").value().timeout, seconds(90));
  EXPECT_EQ(parse_job(R"({"name": "n", "timeout": 1.5})").value().timeout, Duration(1500));
  EXPECT_EQ(parse_job(R"({"name": "n", "timeout": "1h30m"})").value().timeout, minutes(90));
  EXPECT_EQ(parse_job(R"({"name": "n", "timeout": "250ms"})").value().timeout, Duration(250));

  EXPECT_NE(error_of(R"({"name": "n", "timeout": -1})")
                .find("job.timeout: must be a non-negative number"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"name": "n", "timeout": 1e13})").find("job.timeout"), std::string::npos);
  const std::string bad_text = error_of(R"({"name": "n", "timeout": "5x"})");
  EXPECT_NE(bad_text.find("job.timeout: bad duration '5x'"), std::string::npos) << bad_text;
}

TEST(JsonReader, BytesAsNumberOrText) {
  EXPECT_EQ(parse_job(R"({"name": "n", "timeout": 0, "size": 1024})").value().size, 1024u);
  EXPECT_EQ(parse_job(R"({"name": "n", "timeout": 0, "size": "1KiB"})").value().size, 1024u);
  EXPECT_NE(error_of(R"({"name": "n", "timeout": 0, "size": -5})").find("job.size: must be a size"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"name": "n", "timeout": 0, "size": "5XB"})").find("job.size: bad size"),
            std::string::npos);
}

TEST(JsonReader, CommentsAreAccepted) {
  auto r = parse_job(R"(// a nightly job
      {
        /* the name */ "name": "n",
        "timeout": "1m"  // trailing comment
      })");
  ASSERT_TRUE(r.ok()) << r.error().to_string();
  EXPECT_EQ(r->timeout, minutes(1));
}

TEST(JsonReader, SyntaxErrorIsAnInvalidArgumentNotAThrow) {
  for (const char* text : {"", "{", R"({"name": "n",})", R"({"name": 'n'})", "{} {}", "nul",
                           R"({"name": "n", "timeout": "1m"} trailing)", "\xff\xfe"}) {
    Result<Job> r = invalid_argument("not run");
    EXPECT_NO_THROW(r = parse_job(text)) << text;
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message.find("job: not valid JSON"), std::string::npos)
        << r.error().message;
  }
}

// Regression: nlohmann reports a number too large for a double as out_of_range, not
// parse_error, and it escaped parse_json_document as an exception (found by fuzz/fuzz_codec).
TEST(JsonReader, NumberOverflowIsAnInvalidArgumentNotAThrow) {
  for (const char* text :
       {R"({"name": "n", "timeout": 1e999})", R"({"name": "n", "timeout": -1E400})",
        R"({"name": 7777777777777E777})"}) {
    Result<Job> r = invalid_argument("not run");
    EXPECT_NO_THROW(r = parse_job(text)) << text;
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message.find("job: not valid JSON"), std::string::npos)
        << r.error().message;
    EXPECT_NE(r.error().message.find("number overflow"), std::string::npos) << r.error().message;
  }
}

TEST(JsonReader, FailAndTakeBuildPaths) {
  const nlohmann::json j = nlohmann::json::parse(R"({"a": {"b": 1}})");
  const JsonReader root(j, "doc");
  const JsonReader a = root.child("a");
  EXPECT_EQ(a.path(), "doc.a");
  EXPECT_TRUE(a.has("b"));
  EXPECT_FALSE(a.has("c"));
  try {
    a.take("b", Result<int>(invalid_argument("too small")));
    FAIL() << "take() of an error must throw";
  } catch (const JsonError& e) {
    EXPECT_EQ(e.message, "doc.a.b: too small");
  }
  EXPECT_EQ(a.take("b", Result<int>(42)), 42);

  // An empty root path gives bare keys.
  const JsonReader bare(j, "");
  try {
    bare.fail("x", "why");
    FAIL() << "fail() must throw";
  } catch (const JsonError& e) {
    EXPECT_EQ(e.message, "x: why");
  }
}

// A key twice in one object is refused wherever it is (parsers disagree on which one wins,
// so a body checked by one reader could mean something else to another); the same key in
// different objects is fine.
TEST(JsonReader, ADuplicateKeyIsRefusedAtAnyDepth) {
  for (const char* text : {
           R"({"a": 1, "a": 2})",
           R"({"a": 1, "b": {"c": 1, "c": 1}})",
           R"({"list": [{"x": 1}, {"y": 1, "y": 2}]})",
           R"([[{"k": "v", "k": "v"}]])",
           R"({"a": {"b": 1}, "c": 2, "a": {"b": 1}})",
       }) {
    auto r = parse_strict_json(text, "body");
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << text;
    EXPECT_NE(r.error().message.find("appears twice"), std::string::npos) << r.error().message;
  }
  for (const char* text : {
           R"({"a": {"a": {"a": 1}}, "b": [{"a": 1}, {"a": 2}]})",
           R"([{"x": 1}, {"x": 1}])",
           R"({"A": 1, "a": 1})",
           R"({})",
       }) {
    auto r = parse_strict_json(text, "body");
    EXPECT_TRUE(r.ok()) << text << ": " << r.error().to_string();
  }
  auto doc = parse_json_document<int>(R"({"n": 1, "n": 2})", "job",
                                      [](const JsonReader& r) { return 0 * r.raw().size(); });
  ASSERT_FALSE(doc.ok());
  EXPECT_NE(doc.error().message.find("job: the key 'n' appears twice"), std::string::npos);
}

}  // namespace
}  // namespace drover
