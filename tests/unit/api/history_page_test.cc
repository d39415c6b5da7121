// The pages of GET /raft/history (api/history_backfill.h) are peer input: a
// member fills its history from them, so anything malformed, out of range
// or past the gap refuses the whole page rather than storing part of it.
#include "api/history_backfill.h"

#include <gtest/gtest.h>

namespace tenure::api {
namespace {

using controlplane::ChangeReason;
using controlplane::HistoryRecord;
using controlplane::Revision;
using controlplane::ShardId;
using controlplane::WorkerId;
using member::HistoryStore;

HistoryStore::Page sample() {
  HistoryStore::Page page;
  HistoryRecord h;
  h.revision = Revision(7);
  h.epoch = controlplane::Epoch(3);
  h.from = WorkerId("w1");
  h.to = WorkerId("w2");
  h.reason = ChangeReason::kDrain;
  h.at_ms = 1765000000000;
  h.prepare_ms = 12;
  h.drain_ms = 40;
  h.prepared = true;
  h.drain_timed_out = true;
  page.records.emplace_back(ShardId("s-1"), h);
  h.revision = Revision(9);
  h.from = WorkerId();
  h.reason = ChangeReason::kCreated;
  h.prepared = h.drain_timed_out = false;
  page.records.emplace_back(ShardId("s-2"), h);
  page.more = true;
  page.gap_through = Revision(4);
  return page;
}

TEST(HistoryPage, RoundTrips) {
  auto page = sample();
  auto back = decode_history_page(encode_history_page(page), Revision(10));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->records, page.records);
  EXPECT_TRUE(back->more);
  EXPECT_EQ(back->gap_through, Revision(4));
}

TEST(HistoryPage, AnythingOffRefusesTheWholePage) {
  std::string good = encode_history_page(sample());
  EXPECT_FALSE(decode_history_page(good, Revision(8)));  // a record past the gap it was asked for
  auto replace = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return s.replace(at, from.size(), to);
  };
  for (const std::string& bad : {
           std::string("not json"), std::string("[]"), std::string("{}"),
           replace("\"more\":true", "\"more\":1"),
           replace("\"s-1\"", "\"s 1\""),            // not an id
           replace("\"w2\"", "\"" + std::string(65, 'w') + "\""),  // a worker id too long
           replace(",2,1765000000000", ",99,1765000000000"),  // no such reason
           replace(",12,40,", ",4294967296,40,"),    // more than 32 bits
           replace(",40,6]", ",40,8]"),              // unknown flags
           replace("[\"s-1\",7,", "[\"s-1\",0,"),    // revision 0
           replace("[\"s-1\",7,", "[\"s-1\",-7,"),
           replace("[\"s-1\",7,", "[\"s-1\",7.5,"),
           replace("[\"s-1\",7,3,", "[\"s-1\",7,"),  // a field short
       }) {
    EXPECT_FALSE(decode_history_page(bad, Revision(10))) << bad;
  }
}

}  // namespace
}  // namespace tenure::api
