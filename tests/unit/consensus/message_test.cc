// Membership-change encoding (it is replicated and must decode identically on
// every member, forever) and the pure configuration arithmetic.
#include "consensus/message.h"

#include <gtest/gtest.h>

#include "consensus/raft_config.h"

namespace tenure::consensus {
namespace {

TEST(ConfChangeEncoding, RoundTripsEveryTypeAndOddPayloads) {
  const std::string binary("a\0b\xff\x01", 5);
  const std::vector<ConfChange> cases = {
      {ConfChangeType::kAddLearner, NodeId("c4"), "10.0.0.4:7000"},
      {ConfChangeType::kAddVoter, NodeId("c4"), ""},
      {ConfChangeType::kRemoveNode, NodeId("c1"), "why"},
      {ConfChangeType::kAddVoter, NodeId(binary), binary},
      {ConfChangeType::kAddLearner, NodeId(std::string(300, 'n')), std::string(70000, 'x')},
  };
  for (const auto& cc : cases) {
    std::string enc = encode_conf_change(cc);
    auto dec = decode_conf_change(enc);
    ASSERT_TRUE(dec.has_value());
    EXPECT_EQ(*dec, cc);
  }
}

TEST(ConfChangeEncoding, IsStable) {
  // The bytes are in every member's log: changing them breaks old logs.
  std::string enc = encode_conf_change({ConfChangeType::kAddVoter, NodeId("ab"), "x"});
  EXPECT_EQ(enc, std::string("\x01\x02\x00\x00\x00" "ab" "\x01\x00\x00\x00" "x", 12));
}

TEST(ConfChangeEncoding, RejectsGarbage) {
  const std::string good = encode_conf_change({ConfChangeType::kAddVoter, NodeId("node"), "ctx"});
  EXPECT_FALSE(decode_conf_change("").has_value());
  EXPECT_FALSE(decode_conf_change("hello world").has_value());
  // Unknown type byte.
  std::string bad_type = good;
  bad_type[0] = 3;
  EXPECT_FALSE(decode_conf_change(bad_type).has_value());
  bad_type[0] = static_cast<char>(0xff);
  EXPECT_FALSE(decode_conf_change(bad_type).has_value());
  // Every truncation of a valid encoding is refused.
  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_FALSE(decode_conf_change(good.substr(0, n)).has_value()) << "prefix " << n;
  }
  // Trailing bytes are refused.
  EXPECT_FALSE(decode_conf_change(good + "z").has_value());
  // A length prefix pointing past the end (also near 2^32) is refused, not read.
  std::string huge = good;
  huge[1] = huge[2] = huge[3] = huge[4] = static_cast<char>(0xff);
  EXPECT_FALSE(decode_conf_change(huge).has_value());
}

ConfState conf(std::set<std::string> voters, std::set<std::string> learners = {}) {
  ConfState c;
  for (const auto& v : voters) c.voters.insert(NodeId(v));
  for (const auto& l : learners) c.learners.insert(NodeId(l));
  return c;
}

TEST(ApplyConfChange, AddsPromotesDemotesAndRemoves) {
  ConfState c = conf({"a", "b", "c"});
  c = apply_conf_change(c, {ConfChangeType::kAddLearner, NodeId("d"), ""});
  EXPECT_EQ(c, conf({"a", "b", "c"}, {"d"}));
  EXPECT_TRUE(c.contains(NodeId("d")));
  // Promotion moves the member from learners to voters.
  c = apply_conf_change(c, {ConfChangeType::kAddVoter, NodeId("d"), ""});
  EXPECT_EQ(c, conf({"a", "b", "c", "d"}));
  // Demotion moves it back.
  c = apply_conf_change(c, {ConfChangeType::kAddLearner, NodeId("a"), ""});
  EXPECT_EQ(c, conf({"b", "c", "d"}, {"a"}));
  // Removal takes it out of both sets.
  c = apply_conf_change(c, {ConfChangeType::kRemoveNode, NodeId("a"), ""});
  EXPECT_EQ(c, conf({"b", "c", "d"}));
  EXPECT_FALSE(c.contains(NodeId("a")));
  c = apply_conf_change(c, {ConfChangeType::kRemoveNode, NodeId("c"), ""});
  EXPECT_EQ(c, conf({"b", "d"}));
}

TEST(ApplyConfChange, RepeatsAndUnknownsAreNoOps) {
  ConfState c = conf({"a", "b"}, {"l"});
  EXPECT_EQ(apply_conf_change(c, {ConfChangeType::kAddVoter, NodeId("a"), ""}), c);
  EXPECT_EQ(apply_conf_change(c, {ConfChangeType::kAddLearner, NodeId("l"), ""}), c);
  EXPECT_EQ(apply_conf_change(c, {ConfChangeType::kRemoveNode, NodeId("zz"), ""}), c);
}

TEST(PlantedBugs, EveryNameSwitchesOnExactlyItsKnob) {
  for (const auto& name : planted_bug_names()) {
    TestingKnobs k;
    EXPECT_FALSE(k.any());
    ASSERT_TRUE(enable_planted_bug(k, name)) << name;
    EXPECT_TRUE(k.any()) << name;
    int on = k.commit_old_term_by_counting + k.vote_without_log_check + k.ack_append_before_persist +
             k.read_index_without_quorum + k.forget_vote_on_persist + k.keep_acks_of_replaced_entries +
             k.lease_outlives_votes;
    EXPECT_EQ(on, 1) << name;
  }
  TestingKnobs k;
  EXPECT_FALSE(enable_planted_bug(k, "no-such-bug"));
  EXPECT_FALSE(k.any());
  EXPECT_GE(planted_bug_names().size(), 4u);
}

TEST(MessageType, EveryTypeHasAName) {
  for (int t = 0; t <= static_cast<int>(MessageType::kReadIndexResponse); ++t) {
    EXPECT_STRNE(to_string(static_cast<MessageType>(t)), "?") << t;
  }
}

}  // namespace
}  // namespace tenure::consensus
