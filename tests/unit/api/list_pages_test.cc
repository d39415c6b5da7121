// Paged lists (api/list_pages.h): the continue token, page boundaries,
// filters, changes between pages, and the page bodies.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <set>

#include <nlohmann/json.hpp>

#include "api/list_pages.h"

namespace tenure::api {
namespace {

using controlplane::Command;
using controlplane::CreateShards;
using controlplane::DeleteShard;
using controlplane::Epoch;
using controlplane::Placement;
using controlplane::RegisterWorker;
using controlplane::Revision;
using controlplane::ShardId;
using controlplane::StateMachine;
using controlplane::WorkerId;
using nlohmann::json;

std::string id_of(int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "s-%05d", i);
  return buf;
}

void create(StateMachine& sm, int from, int to) {
  std::vector<ShardId> ids;
  for (int i = from; i < to; ++i) ids.emplace_back(id_of(i));
  ASSERT_EQ(sm.apply(Command{"", 1, CreateShards{ids}}).code, controlplane::ApplyCode::kOk);
}

void assign(StateMachine& sm, const std::string& worker, int from, int to, int step) {
  sm.apply(Command{"", 1, RegisterWorker{WorkerId(worker), "127.0.0.1:1", "z", 1}});
  std::vector<Placement> p;
  for (int i = from; i < to; i += step) p.push_back({ShardId(id_of(i)), WorkerId(worker), Epoch(0)});
  auto r = sm.apply(Command{"", 1, controlplane::AssignShards{p, controlplane::ChangeReason::kCreated}});
  ASSERT_EQ(r.code, controlplane::ApplyCode::kOk);
  ASSERT_EQ(r.changed, p.size());
}

net::HttpRequest request(std::map<std::string, std::string> query) {
  net::HttpRequest req;
  req.method = "GET";
  req.query = std::move(query);
  return req;
}

PageQuery query(const std::string& list, const std::string& filter, std::map<std::string, std::string> q) {
  PageQuery out;
  auto err = parse_page_query(request(std::move(q)), list, filter, out);
  EXPECT_FALSE(err.has_value()) << (err ? err->body : "");
  return out;
}

/// Every id of every page, following continue tokens as a client does.
std::vector<std::string> list_all(const StateMachine& sm, const std::string& filter, size_t limit,
                                  size_t* pages = nullptr) {
  std::vector<std::string> ids;
  std::map<std::string, std::string> q{{"limit", std::to_string(limit)}};
  for (size_t n = 1;; ++n) {
    auto page = collect_shards(sm, query("shards", filter, q));
    EXPECT_LE(page.rows.size(), limit);
    for (const auto& r : page.rows) ids.push_back(r.id.str());
    auto token = page.next_token();
    if (!token) {
      if (pages) *pages = n;
      return ids;
    }
    q["continue"] = *token;
  }
}

std::string error_field(const std::optional<net::HttpResponse>& r) {
  if (!r) return "";
  EXPECT_EQ(r->status, 400);
  auto j = json::parse(r->body);
  EXPECT_EQ(j["error"], "bad_request");
  return j["message"].get<std::string>();
}

TEST(PageTokenTest, RoundTrips) {
  PageToken t{"shards", "w-1", "s-00042", 123456789012345ull};
  auto text = encode_token(t);
  EXPECT_EQ(text.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
            std::string::npos);
  auto back = decode_token(text);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, t);
  PageToken w{"workers", "", "w.9", 0};
  EXPECT_EQ(decode_token(encode_token(w)), w);
}

TEST(PageTokenTest, RefusesWhatThisServerDidNotIssue) {
  auto good = encode_token({"shards", "", "s-1", 5});
  EXPECT_FALSE(decode_token(""));
  EXPECT_FALSE(decode_token("not base64!"));
  EXPECT_FALSE(decode_token(good + "A"));             // a lone 6-bit group
  EXPECT_FALSE(decode_token(good.substr(0, good.size() - 3)));  // truncated: not JSON
  EXPECT_FALSE(decode_token(std::string(kMaxTokenChars + 4, 'A')));
  auto b64 = [](const std::string& raw) {  // base64url without padding, by hand
    static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    uint32_t acc = 0;
    int bits = 0;
    for (unsigned char c : raw) {
      acc = (acc << 8) | c;
      bits += 8;
      while (bits >= 6) out.push_back(k[(acc >> (bits -= 6)) & 0x3f]);
    }
    if (bits) out.push_back(k[(acc << (6 - bits)) & 0x3f]);
    return out;
  };
  EXPECT_TRUE(decode_token(b64(R"({"a":"s-1","f":"","l":"shards","r":5,"v":1})")));
  EXPECT_FALSE(decode_token(b64(R"({"v":1,"l":"shards","f":"","a":"s-1","r":5})")));  // not our spelling
  EXPECT_FALSE(decode_token(b64(R"({"a": "s-1","f":"","l":"shards","r":5,"v":1})")));
  EXPECT_FALSE(decode_token(b64(std::string(R"({"a":"s-1","f":"","l":"shards","r":5,"v":1})") + '\0')));
  EXPECT_FALSE(decode_token(b64(R"({"a":"s-1","f":"","l":"shards","r":5,"v":2})")));
  EXPECT_FALSE(decode_token(b64(R"({"a":"s-1","f":"","l":"pods","r":5,"v":1})")));
  EXPECT_FALSE(decode_token(b64(R"({"a":"bad id","f":"","l":"shards","r":5,"v":1})")));
  EXPECT_FALSE(decode_token(b64(R"({"a":"","f":"","l":"shards","r":5,"v":1})")));
  EXPECT_FALSE(decode_token(b64(R"({"a":"s-1","f":"","l":"shards","r":-5,"v":1})")));
  EXPECT_FALSE(decode_token(b64(R"({"a":"s-1","f":"","l":"shards","r":"5","v":1})")));
  EXPECT_FALSE(decode_token(b64(R"({"a":"s-1","f":"","l":"shards","v":1})")));
  EXPECT_FALSE(decode_token(b64(R"({"a":"s-1","f":"","l":"shards","r":5,"v":1,"x":0})")));
  EXPECT_FALSE(decode_token(b64(R"({"a":"w2","f":"w1","l":"workers","r":5,"v":1})")));  // workers take no filter
  EXPECT_FALSE(decode_token(b64(R"([1,2,3,4,5])")));
  EXPECT_FALSE(decode_token(b64("\xff\xfe{}")));
}

TEST(PageQueryTest, LimitDefaultsAndBounds) {
  EXPECT_EQ(query("shards", "", {}).limit, kDefaultPageLimit);
  EXPECT_EQ(query("shards", "", {{"limit", "1"}}).limit, 1u);
  EXPECT_EQ(query("shards", "", {{"limit", std::to_string(kMaxPageLimit)}}).limit, kMaxPageLimit);
  for (const char* bad : {"0", "10001", "-1", "", "abc", "1.5", "99999999999999999999", " 5", "+5"}) {
    PageQuery q;
    auto msg = error_field(parse_page_query(request({{"limit", bad}}), "shards", "", q));
    EXPECT_NE(msg.find("\"limit\""), std::string::npos) << bad << ": " << msg;
  }
}

TEST(PageQueryTest, ContinueMustComeFromTheSameListAndFilter) {
  PageQuery q;
  EXPECT_NE(error_field(parse_page_query(request({{"continue", "garbage"}}), "shards", "", q)).find("\"continue\""),
            std::string::npos);
  auto workers_token = encode_token({"workers", "", "w1", 1});
  EXPECT_NE(error_field(parse_page_query(request({{"continue", workers_token}}), "shards", "", q)).find("another list"),
            std::string::npos);
  auto filtered = encode_token({"shards", "w1", "s-1", 1});
  EXPECT_NE(error_field(parse_page_query(request({{"continue", filtered}}), "shards", "", q)).find("filter"),
            std::string::npos);
  EXPECT_NE(error_field(parse_page_query(request({{"continue", filtered}}), "shards", "w2", q)).find("filter"),
            std::string::npos);
  EXPECT_FALSE(parse_page_query(request({{"continue", filtered}}), "shards", "w1", q).has_value());
  ASSERT_TRUE(q.after.has_value());
  EXPECT_EQ(*q.after, "s-1");
}

TEST(ShardPagesTest, EveryShardOnceInIdOrderAcrossPageBoundaries) {
  StateMachine sm;
  create(sm, 0, 2500);
  for (size_t limit : {1ul, 7ul, 1000ul, 2499ul, 2500ul, 2501ul, 10000ul}) {
    size_t pages = 0;
    auto ids = list_all(sm, "", limit, &pages);
    ASSERT_EQ(ids.size(), 2500u) << "limit " << limit;
    for (int i = 0; i < 2500; ++i) ASSERT_EQ(ids[i], id_of(i)) << "limit " << limit;
    // No empty last page: a page that ends at the last shard says so.
    EXPECT_EQ(pages, (2500 + limit - 1) / limit) << "limit " << limit;
  }
  StateMachine empty;
  auto page = collect_shards(empty, query("shards", "", {}));
  EXPECT_TRUE(page.rows.empty());
  EXPECT_FALSE(page.next_token());
}

TEST(ShardPagesTest, WorkerFilterPagesThroughThatWorkersShardsOnly) {
  StateMachine sm;
  create(sm, 0, 3000);
  assign(sm, "w1", 0, 3000, 3);  // 1000 shards: s-00000, s-00003, ...
  assign(sm, "w2", 1, 3000, 3);
  auto ids = list_all(sm, "w1", 64);
  ASSERT_EQ(ids.size(), 1000u);
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(ids[i], id_of(static_cast<int>(i) * 3));
  auto page = collect_shards(sm, query("shards", "w1", {{"limit", "2"}}));
  ASSERT_EQ(page.rows.size(), 2u);
  EXPECT_EQ(page.rows[0].worker.str(), "w1");
  EXPECT_EQ(page.rows[0].epoch.value(), 1u);
  EXPECT_EQ(page.rows[0].state, controlplane::ShardState::kActive);
  EXPECT_TRUE(list_all(sm, "nobody", 10).empty());
}

TEST(ShardPagesTest, ChangesBetweenPagesResumeAfterTheLastKey) {
  StateMachine sm;
  create(sm, 0, 100);
  std::map<std::string, std::string> q{{"limit", "40"}};
  auto p1 = collect_shards(sm, query("shards", "", q));
  ASSERT_EQ(p1.rows.back().id.str(), id_of(39));
  // Between pages: the page's last shard and a later one go, one appears
  // before the cursor and one after it.
  sm.apply(Command{"", 1, DeleteShard{ShardId(id_of(39))}});
  sm.apply(Command{"", 1, DeleteShard{ShardId(id_of(70))}});
  sm.apply(Command{"", 1, CreateShards{{ShardId("s-00010x"), ShardId("s-00050x")}}});
  q["continue"] = *p1.next_token();
  auto p2 = collect_shards(sm, query("shards", "", q));
  EXPECT_GT(p2.revision, p1.revision);  // each page carries its own revision
  std::vector<std::string> seen;
  for (const auto& r : p1.rows) seen.push_back(r.id.str());
  for (const auto& r : p2.rows) seen.push_back(r.id.str());
  q["continue"] = *p2.next_token();
  auto p3 = collect_shards(sm, query("shards", "", q));
  EXPECT_FALSE(p3.next_token());
  for (const auto& r : p3.rows) seen.push_back(r.id.str());
  std::set<std::string> unique(seen.begin(), seen.end());
  EXPECT_EQ(unique.size(), seen.size()) << "a shard was listed twice";
  for (int i = 0; i < 100; ++i) {
    if (i == 39 || i == 70) continue;
    EXPECT_EQ(unique.count(id_of(i)), 1u) << "shard present throughout not seen: " << id_of(i);
  }
  EXPECT_EQ(unique.count(id_of(70)), 0u);       // deleted before its page
  EXPECT_EQ(unique.count("s-00050x"), 1u);      // created after the cursor: seen
  EXPECT_EQ(unique.count("s-00010x"), 0u);      // created before the cursor: not
}

TEST(ShardPagesTest, BodyIsTheContractsJsonWithContinueOnlyWhileMoreRemain) {
  StateMachine sm;
  create(sm, 0, 3);
  assign(sm, "w1", 0, 1, 1);
  auto p1 = collect_shards(sm, query("shards", "", {{"limit", "2"}}));
  auto j = json::parse(shards_body(p1));
  EXPECT_EQ(j["revision"], sm.revision().value());
  ASSERT_TRUE(j["continue"].is_string());
  EXPECT_EQ(j["shards"], json::parse(R"([{"epoch":1,"id":"s-00000","state":"active","worker":"w1"},
                                          {"epoch":0,"id":"s-00001","state":"unassigned","worker":null}])"));
  // Byte for byte what nlohmann gives for the same object.
  EXPECT_EQ(shards_body(p1), j.dump() + "\n");
  auto p2 = collect_shards(sm, query("shards", "", {{"limit", "2"}, {"continue", j["continue"]}}));
  auto j2 = json::parse(shards_body(p2));
  EXPECT_TRUE(j2["continue"].is_null());
  ASSERT_EQ(j2["shards"].size(), 1u);
  EXPECT_EQ(j2["shards"][0]["id"], "s-00002");
}

/// Every id of every page of a prefixed listing, following continue tokens.
std::vector<std::string> list_prefixed(const StateMachine& sm, const std::string& filter, const std::string& prefix,
                                       size_t limit, size_t* pages = nullptr) {
  std::vector<std::string> ids;
  net::HttpRequest req = request({{"limit", std::to_string(limit)}});
  for (size_t n = 1;; ++n) {
    PageQuery q;
    auto err = parse_page_query(req, "shards", filter, q, prefix);
    EXPECT_FALSE(err.has_value()) << (err ? err->body : "");
    auto page = collect_shards(sm, q);
    EXPECT_LE(page.rows.size(), limit);
    for (const auto& r : page.rows) ids.push_back(r.id.str());
    auto token = page.next_token();
    if (!token) {
      if (pages) *pages = n;
      return ids;
    }
    req.query["continue"] = *token;
  }
}

TEST(ShardPagesTest, PrefixPagesThroughMatchingIdsOnly) {
  StateMachine sm;
  create(sm, 0, 2500);
  ASSERT_EQ(sm.apply(Command{"", 1, CreateShards{{ShardId("s-01200x"), ShardId("s-0"), ShardId("t-1")}}}).code,
            controlplane::ApplyCode::kOk);
  for (size_t limit : {1ul, 7ul, 100ul, 101ul, 102ul, 10000ul}) {
    size_t pages = 0;
    auto ids = list_prefixed(sm, "", "s-012", limit, &pages);
    ASSERT_EQ(ids.size(), 101u) << "limit " << limit;  // s-01200 .. s-01299 and s-01200x
    EXPECT_EQ(ids[0], "s-01200");
    EXPECT_EQ(ids[1], "s-01200x");
    EXPECT_EQ(ids[100], "s-01299");
    EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
    EXPECT_EQ(pages, (101 + limit - 1) / limit) << "no empty last page, limit " << limit;
  }
  EXPECT_EQ(list_prefixed(sm, "", "s-01200", 10), (std::vector<std::string>{"s-01200", "s-01200x"}));
  EXPECT_EQ(list_prefixed(sm, "", "t", 10), (std::vector<std::string>{"t-1"}));
  EXPECT_TRUE(list_prefixed(sm, "", "x", 10).empty());
  EXPECT_TRUE(list_prefixed(sm, "", "zzz", 10).empty());
  EXPECT_TRUE(list_prefixed(sm, "", "s-012000", 10).empty());
  EXPECT_EQ(list_prefixed(sm, "", "s-", 10000).size(), 2502u);
  // With a worker filter: that worker's shards with the prefix.
  assign(sm, "w1", 0, 2500, 3);
  auto mine = list_prefixed(sm, "w1", "s-012", 4);
  ASSERT_EQ(mine.size(), 34u);  // 1200, 1203, ..., 1299
  for (size_t i = 0; i < mine.size(); ++i) EXPECT_EQ(mine[i], id_of(1200 + 3 * static_cast<int>(i)));
}

TEST(PageQueryTest, ContinueMustComeFromTheSamePrefix) {
  StateMachine sm;
  create(sm, 0, 300);
  PageQuery q;
  ASSERT_FALSE(parse_page_query(request({{"limit", "5"}}), "shards", "", q, "s-001"));
  auto prefixed = *collect_shards(sm, q).next_token();
  ASSERT_FALSE(parse_page_query(request({{"limit", "5"}}), "shards", "", q));
  auto plain = *collect_shards(sm, q).next_token();
  auto refused = [&](const std::string& token, const std::string& prefix) {
    PageQuery out;
    return error_field(parse_page_query(request({{"continue", token}}), "shards", "", out, prefix));
  };
  EXPECT_NE(refused(prefixed, "").find("prefix \"s-001\""), std::string::npos);
  EXPECT_NE(refused(prefixed, "s-002").find("\"continue\""), std::string::npos);
  EXPECT_NE(refused(plain, "s-001").find("prefix \"\""), std::string::npos);
  EXPECT_EQ(refused(prefixed, "s-001"), "");
  // The prefix is part of the token: a round trip keeps it, a forged one is refused.
  PageToken t{"shards", "", "s-00104", 9, "s-001"};
  EXPECT_EQ(decode_token(encode_token(t)), t);
  EXPECT_FALSE(decode_token(encode_token({"shards", "", "s-00204", 9, "s-001"})));  // after lacks the prefix
  EXPECT_FALSE(decode_token(encode_token({"workers", "", "w1", 9, "w"})));          // workers take no prefix
  EXPECT_FALSE(decode_token(encode_token({"shards", "", "s-1", 9, "s 1"})));         // not id characters
  // Tokens of unprefixed lists are spelled as before the prefix existed.
  EXPECT_EQ(encode_token({"shards", "", "s-1", 5}), encode_token({"shards", "", "s-1", 5, ""}));
  EXPECT_TRUE(valid_id_prefix("s-"));
  EXPECT_FALSE(valid_id_prefix(""));
  EXPECT_FALSE(valid_id_prefix(std::string(129, 'a')));
  EXPECT_FALSE(valid_id_prefix("s/1"));
}

TEST(WorkerPagesTest, PagesWorkersWithTheirShardCounts) {
  StateMachine sm;
  create(sm, 0, 10);
  for (int w = 0; w < 25; ++w) sm.apply(Command{"", 1, RegisterWorker{WorkerId("w" + std::to_string(100 + w)), "a:1", "z", 1}});
  assign(sm, "w105", 0, 10, 1);
  std::map<std::string, std::string> q{{"limit", "10"}};
  std::vector<json> rows;
  for (;;) {
    auto page = collect_workers(sm, query("workers", "", q));
    auto j = json::parse(workers_body(page));
    for (auto& r : j["workers"]) rows.push_back(r);
    if (j["continue"].is_null()) break;
    q["continue"] = j["continue"];
  }
  ASSERT_EQ(rows.size(), 25u);
  EXPECT_EQ(rows[0]["id"], "w100");
  EXPECT_EQ(rows[5]["shards"], 10);
  EXPECT_EQ(rows[24]["id"], "w124");
}

TEST(EventsWindowTest, ScansAtMostTheWindowAndReportsWhereItStopped) {
  StateMachine sm;
  create(sm, 0, 10);
  assign(sm, "w1", 0, 10, 2);  // events: worker w1, then 5 grants
  assign(sm, "w2", 1, 10, 2);  // worker w2, then 5 grants
  Revision start = sm.compacted_revision();
  Revision to;
  auto all = sm.events_window(start, WorkerId(), 1000, to);
  ASSERT_EQ(all.size(), 12u);
  EXPECT_EQ(to, sm.revision());
  auto first = sm.events_window(start, WorkerId(), 4, to);
  ASSERT_EQ(first.size(), 4u);
  EXPECT_EQ(to, first.back().revision);
  // Filtered: w2's events lie past the first window; the window still ends.
  auto none = sm.events_window(start, WorkerId("w2"), 6, to);
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(to, all[5].revision);
  auto rest = sm.events_window(to, WorkerId("w2"), 6, to);
  EXPECT_EQ(rest.size(), 6u);
  EXPECT_EQ(to, sm.revision());
  // Nothing left, or a revision beyond the state: the position never goes back.
  EXPECT_TRUE(sm.events_window(sm.revision(), WorkerId(), 4, to).empty());
  EXPECT_EQ(to, sm.revision());
  EXPECT_TRUE(sm.events_window(Revision(sm.revision().value() + 5), WorkerId(), 4, to).empty());
  EXPECT_EQ(to.value(), sm.revision().value() + 5);
}

}  // namespace
}  // namespace tenure::api
