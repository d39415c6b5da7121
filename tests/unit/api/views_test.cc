// The hand-serialized answers must be byte for byte what nlohmann gives for
// the same objects: clients (and tests) see no difference.
#include <gtest/gtest.h>

#include "api/json_body.h"
#include "api/views.h"
#include "net/http_types.h"

namespace tenure::api {
namespace {

using controlplane::ApplyResult;
using controlplane::Epoch;
using controlplane::Revision;
using controlplane::Shard;
using controlplane::ShardId;
using controlplane::ShardState;
using controlplane::WorkerId;

std::string via_nlohmann(const ShardId& id, const Shard& s, Revision rev, const controlplane::Handoff* h = nullptr) {
  auto j = shard_json(id, s, h);
  j["revision"] = rev.value();
  return json_response(200, j).body;
}

TEST(ViewsTest, ShardBodyMatchesNlohmann) {
  Shard unassigned;
  EXPECT_EQ(shard_body(ShardId("s-0"), unassigned, nullptr, Revision(0)),
            via_nlohmann(ShardId("s-0"), unassigned, Revision(0)));
  Shard owned;
  const WorkerId owner("w.1_a-B");  // the state's owner index holds it
  owned.worker = controlplane::OwnerRef(&owner);
  owned.epoch = Epoch(18446744073709551615ull);
  owned.state = ShardState::kHandoff;
  controlplane::Handoff move;
  move.phase = controlplane::HandoffPhase::kPreparing;
  EXPECT_EQ(shard_body(ShardId("x_y.z-9"), owned, &move, Revision(123456789)),
            via_nlohmann(ShardId("x_y.z-9"), owned, Revision(123456789), &move));
  EXPECT_NE(shard_body(ShardId("x_y.z-9"), owned, &move, Revision(1)).find("\"phase\":\"preparing\""), std::string::npos);
  owned.state = ShardState::kActive;
  EXPECT_EQ(shard_body(ShardId("a"), owned, nullptr, Revision(7)), via_nlohmann(ShardId("a"), owned, Revision(7)));
  EXPECT_EQ(shard_body(ShardId("a"), owned, nullptr, Revision(7)),
            "{\"epoch\":18446744073709551615,\"id\":\"a\",\"revision\":7,\"state\":\"active\",\"worker\":\"w.1_a-B\"}\n");
}

TEST(ViewsTest, CreatedBodyMatchesNlohmann) {
  for (size_t created = 0; created < 3; ++created) {
    for (size_t existing = 0; existing < 3; ++existing) {
      ApplyResult r;
      r.revision = Revision(40 + created + existing);
      nlohmann::json c = nlohmann::json::array(), e = nlohmann::json::array();
      for (size_t i = 0; i < created; ++i) {
        r.created.emplace_back("c" + std::to_string(i));
        c.push_back("c" + std::to_string(i));
      }
      for (size_t i = 0; i < existing; ++i) {
        r.existing.emplace_back("e" + std::to_string(i));
        e.push_back("e" + std::to_string(i));
      }
      auto expected = json_response(201, {{"created", c}, {"existing", e}, {"revision", r.revision.value()}}).body;
      EXPECT_EQ(created_body(r), expected) << created << " " << existing;
    }
  }
}

TEST(ViewsTest, StringEscapingMatchesNlohmann) {
  std::string all_ascii;
  for (int c = 1; c < 0x80; ++c) all_ascii.push_back(static_cast<char>(c));
  for (std::string s : {std::string(), std::string("plain"), std::string("q\"b\\s/"), std::string("\b\f\n\r\t"),
                        std::string(1, '\0'), std::string("\x1f\x7f"), all_ascii, std::string("caf\xc3\xa9")}) {
    std::string out;
    append_json_string(out, s);
    EXPECT_EQ(out, nlohmann::json(s).dump()) << s;
  }
}

TEST(ViewsTest, InvalidUtf8IsReplacedNeverThrown) {
  // Since 09836ca (issue 8 §3) foreign bytes are replaced (net::json_text),
  // as every JSON dump that may see them is: an answer never throws.
  std::string out;
  EXPECT_NO_THROW(append_json_string(out, "bad\xff"));
  EXPECT_EQ(out, net::json_text(nlohmann::json(std::string("bad\xff"))));
  EXPECT_EQ(out, "\"bad\xef\xbf\xbd\"");  // U+FFFD
}

}  // namespace
}  // namespace tenure::api
