// Durable answers (transport/http/durable.h): a request's answer goes out only once its
// writes are durable, the I/O thread serves other connections meanwhile, answers that may
// reveal other requests' changes wait for those too, and a failed commit answers 503.
#include "transport/http/durable.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>

#include "../common/gated_store.h"
#include "../common/raw_http_client.h"

namespace drover::http {
namespace {

using drover::testing::body_of;
using drover::testing::GatedStore;
using drover::testing::RawClient;
using drover::testing::status_of;
using namespace std::chrono_literals;

// POST /write/{id} writes a device; GET /read answers without writing; POST /look writes
// nothing (an answer that may reveal others' changes); POST /quiet writes nothing and says
// it reveals nothing.
struct World {
  GatedStore* gated = nullptr;
  std::unique_ptr<GroupCommitStore> store;
  std::unique_ptr<HttpServer> server;

  World() {
    auto owned = std::make_unique<GatedStore>();
    gated = owned.get();
    store = std::make_unique<GroupCommitStore>(std::move(owned));
    ServerOptions o;
    o.threads = 1;  // one I/O thread: a blocked handler would hold every connection
    auto started = HttpServer::start(o, with_durable_answers(*store, [this](const Request& r) {
                                       const std::string path(r.path());
                                       if (path.starts_with("/offload/")) return offloaded(path);
                                       if (path.starts_with("/write/")) {
                                         WriteBatch b;
                                         b.devices.emplace_back();
                                         b.devices.back().id = path.substr(7);
                                         b.devices.back().device_type = "ctl";
                                         if (Status st = store->apply(b); !st.ok())
                                           return Response::error(503, "io", "failed");
                                         return Response::json(200, "{\"written\":true}");
                                       }
                                       if (path == "/quiet")
                                         CommitScope::current()->own_writes_only();
                                       return Response::json(200, "{}");
                                     }));
    EXPECT_TRUE(started.ok());
    server = std::move(*started);
  }
  // POST /offload/{id}: made on a worker, once let go (let_work_go), writing device {id};
  // /offload/boom throws there.
  Response offloaded(const std::string& path) {
    Response on_worker;
    on_worker.offload = [this, id = path.substr(9)] {
      work_gate.wait();
      if (id == "boom") throw std::runtime_error("the work failed");
      WriteBatch b;
      b.devices.emplace_back();
      b.devices.back().id = id;
      b.devices.back().device_type = "ctl";
      if (Status st = store->apply(b); !st.ok()) return Response::error(503, "io", "failed");
      return Response::json(200, "{\"offloaded\":true}");
    };
    return on_worker;
  }
  void let_work_go() {
    if (!work_released.exchange(true)) release_work.set_value();
  }
  std::promise<void> release_work;
  std::shared_future<void> work_gate = release_work.get_future().share();
  std::atomic<bool> work_released{false};

  ~World() {
    let_work_go();
    gated->open();
    server->stop();
    store.reset();
  }
};

std::string post(const std::string& target) {
  return "POST " + target + " HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n";
}
std::string get(const std::string& target) {
  return "GET " + target + " HTTP/1.1\r\nHost: t\r\n\r\n";
}

TEST(DurableAnswers, AWriteIsAnsweredOnlyOnceDurableAndTheThreadServesOthersMeanwhile) {
  World w;
  RawClient writer(w.server->port());
  ASSERT_TRUE(writer.send(post("/write/d1")));
  w.gated->await_entered(1);  // the commit has started and is held
  // Not answered while the commit is held...
  EXPECT_EQ(writer.response(150ms), "");
  // ...yet the one I/O thread answers another connection at once.
  RawClient reader(w.server->port());
  ASSERT_TRUE(reader.send(get("/read")));
  EXPECT_EQ(status_of(reader.response()), 200);
  w.gated->open();
  const std::string answer = writer.response();
  EXPECT_EQ(status_of(answer), 200);
  EXPECT_EQ(body_of(answer), "{\"written\":true}");
  EXPECT_TRUE(w.store->durable(1));
}

TEST(DurableAnswers, AnAnswerThatMayRevealOthersChangesWaitsForThem) {
  World w;
  RawClient writer(w.server->port());
  ASSERT_TRUE(writer.send(post("/write/d1")));
  w.gated->await_entered(1);
  // /look wrote nothing, but may have seen d1: it waits for it.
  RawClient looker(w.server->port());
  ASSERT_TRUE(looker.send(post("/look")));
  EXPECT_EQ(looker.response(150ms), "");
  // /quiet says it reveals nothing: it goes at once, as does a read.
  RawClient quiet(w.server->port());
  ASSERT_TRUE(quiet.send(post("/quiet")));
  EXPECT_EQ(status_of(quiet.response()), 200);
  w.gated->open();
  EXPECT_EQ(status_of(looker.response()), 200);
  EXPECT_EQ(status_of(writer.response()), 200);
}

TEST(DurableAnswers, AFailedCommitIsAnswered503AndLaterWritesFailAtOnce) {
  World w;
  RawClient writer(w.server->port());
  ASSERT_TRUE(writer.send(post("/write/d1")));
  w.gated->await_entered(1);
  w.gated->fail_next();
  w.gated->open();
  const std::string answer = writer.response();
  EXPECT_EQ(status_of(answer), 503) << answer;
  EXPECT_NE(body_of(answer).find("could not be stored"), std::string::npos) << answer;
  RawClient again(w.server->port());
  ASSERT_TRUE(again.send(post("/write/d2")));
  EXPECT_EQ(status_of(again.response()), 503);
}

// An answer made on a worker (Response::offload): the one I/O thread serves others while the
// work runs, the answer still waits for the work's write to be durable, and what the work
// throws is answered 500 naming the request.
TEST(DurableAnswers, OffloadedWorkLeavesTheIoThreadFreeAndItsAnswerWaitsForItsWrite) {
  World w;
  RawClient slow(w.server->port());
  ASSERT_TRUE(slow.send(post("/offload/d7")));
  RawClient reader(w.server->port());
  ASSERT_TRUE(reader.send(get("/read")));
  EXPECT_EQ(status_of(reader.response()), 200);  // the work is still held on its worker
  EXPECT_EQ(slow.response(100ms), "");
  w.let_work_go();
  w.gated->await_entered(1);  // its write is being committed, and held
  EXPECT_EQ(slow.response(150ms), "");
  w.gated->open();
  const std::string answer = slow.response();
  EXPECT_EQ(status_of(answer), 200) << answer;
  EXPECT_EQ(body_of(answer), "{\"offloaded\":true}");
  EXPECT_TRUE(w.store->durable(1));
  RawClient boom(w.server->port());
  ASSERT_TRUE(boom.send(post("/offload/boom")));
  const std::string failed = boom.response();
  EXPECT_EQ(status_of(failed), 500) << failed;
  EXPECT_EQ(body_of(failed).find("the work failed"), std::string::npos) << failed;
  EXPECT_NE(failed.find("X-Request-Id: r"), std::string::npos) << failed;
}

}  // namespace
}  // namespace drover::http
