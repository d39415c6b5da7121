// Decoding the controller's answers and watch lines (api/ is the other side).
#include <gtest/gtest.h>

#include "dataplane_agent/messages.h"

namespace tenure::agent {
namespace {

TEST(Messages, LeaseAnswer) {
  auto p = parse_lease_answer(
      R"({"worker":"w1","lease_ms":3000,"revision":12,"revoked":[{"shard":"s-1","epoch":4}]})");
  ASSERT_TRUE(p.value) << p.error;
  EXPECT_EQ(p.value->lease_ms, 3000u);
  EXPECT_EQ(p.value->revision, Revision(12));
  ASSERT_EQ(p.value->revoked.size(), 1u);
  EXPECT_EQ(p.value->revoked[0], (ShardEpoch{ShardId("s-1"), Epoch(4)}));
  EXPECT_FALSE(parse_lease_answer(R"({"lease_ms":0,"revision":1})").value);
  EXPECT_FALSE(parse_lease_answer(R"({"lease_ms":"3000","revision":1})").value);
  EXPECT_FALSE(parse_lease_answer(R"({"lease_ms":3000,"revision":1,"revoked":[{"shard":"bad id","epoch":1}]})").value);
  EXPECT_FALSE(parse_lease_answer("not json").value);
}

TEST(Messages, ShardList) {
  auto p = parse_shard_list(
      R"({"revision":9,"shards":[{"id":"a","worker":"w1","epoch":2,"state":"active"},{"id":"b","worker":"w1","epoch":1,"state":"handoff"}]})");
  ASSERT_TRUE(p.value) << p.error;
  EXPECT_EQ(p.value->revision, Revision(9));
  ASSERT_EQ(p.value->shards.size(), 2u);
  EXPECT_EQ(p.value->shards[1].state, "handoff");
  EXPECT_FALSE(parse_shard_list(R"({"revision":9})").value);
}

TEST(Messages, WatchLines) {
  auto g = parse_watch_line(R"({"revision":5,"type":"grant","shard":"s","worker":"w1","epoch":2,"at_ms":1700})");
  ASSERT_TRUE(g.value) << g.error;
  EXPECT_EQ(g.value->kind, WatchEvent::Kind::kGrant);
  EXPECT_EQ(g.value->at_ms, 1700);
  auto d = parse_watch_line(R"({"revision":6,"type":"shard_deleted","shard":"s","worker":null,"epoch":3,"at_ms":1})");
  ASSERT_TRUE(d.value) << d.error;
  EXPECT_TRUE(d.value->worker.empty());
  auto w = parse_watch_line(
      R"({"revision":7,"type":"worker","shard":null,"worker":"w1","epoch":0,"at_ms":1,"state":"dead"})");
  ASSERT_TRUE(w.value) << w.error;
  EXPECT_EQ(w.value->state, "dead");
  auto p = parse_watch_line(R"({"type":"progress","revision":8})");
  ASSERT_TRUE(p.value);
  EXPECT_EQ(p.value->kind, WatchEvent::Kind::kProgress);
  auto e = parse_watch_line(R"({"error":"too_slow","message":"x","revision":3})");
  ASSERT_TRUE(e.value);
  EXPECT_EQ(e.value->kind, WatchEvent::Kind::kError);
  EXPECT_EQ(e.value->error, "too_slow");
  EXPECT_FALSE(parse_watch_line(R"({"revision":5,"type":"grant","worker":"w1","epoch":2})").value);
  EXPECT_FALSE(parse_watch_line("[1]").value);
  auto prep = parse_watch_line(R"({"revision":9,"type":"prepare","shard":"s","worker":"w1","epoch":4})");
  ASSERT_TRUE(prep.value);
  EXPECT_EQ(prep.value->kind, WatchEvent::Kind::kPrepare);
  EXPECT_EQ(prep.value->epoch, Epoch(4));
}

TEST(Messages, Bodies) {
  EXPECT_EQ(release_body({{ShardId("a"), Epoch(2)}}), R"({"shards":[{"epoch":2,"shard":"a"}]})");
  EXPECT_EQ(register_body("h:1", "", 1.5, false), R"({"address":"h:1","capacity":1.5})");
  EXPECT_EQ(register_body("h:1", "z", 1, true), R"({"address":"h:1","capacity":1.0,"prepares":true,"zone":"z"})");
  EXPECT_EQ(error_code_of(R"({"error":"worker_dead","message":"m"})"), "worker_dead");
  EXPECT_EQ(error_code_of("nope"), "");
}

}  // namespace
}  // namespace tenure::agent
