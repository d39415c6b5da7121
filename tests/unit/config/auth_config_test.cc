// The auth blocks of both configs (CONTRACT.md "Security"): tokens are all
// or nothing, each may come from a file read at load time, and no error
// message shows a secret.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "config/agent_config.h"
#include "config/controller_config.h"
#include "tests/unit/config/temp_files.h"

namespace tenure::config {
namespace {

using testing::TempDir;

const std::string kBase = "node_id: c1\ndata_dir: /d\nlisten: 127.0.0.1:7001\n";
const std::string kAgentBase = "worker_id: w1\nlisten: 127.0.0.1:8101\ncontrollers: [127.0.0.1:7001]\ndata_dir: /d\n";

std::string error_of(const std::string& yaml) {
  auto r = parse_controller_config(yaml, "c.yaml");
  EXPECT_FALSE(r.ok()) << "accepted:\n" << yaml;
  return r.ok() ? "" : r.error().message;
}

TEST(AuthConfigTest, AllThreeTokensOrNone) {
  auto none = parse_controller_config(kBase);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none.value().auth.enabled());
  auto all = parse_controller_config(kBase + "auth: {admin_token: a1, agent_token: a2, peer_token: p3}\n");
  ASSERT_TRUE(all.ok()) << all.error().message;
  EXPECT_TRUE(all.value().auth.enabled());
  EXPECT_EQ(all.value().auth.read_token, "");

  EXPECT_EQ(error_of(kBase + "auth: {admin_token: a1}\n"),
            "config c.yaml: auth: missing required keys \"auth.agent_token\", \"auth.peer_token\" (admin_token, "
            "agent_token and peer_token are all or nothing; each may be given as *_token_file)");
  EXPECT_EQ(error_of(kBase + "auth: {admin_token: a1, peer_token: p3}\n"),
            "config c.yaml: auth: missing required key \"auth.agent_token\" (admin_token, agent_token and "
            "peer_token are all or nothing; each may be given as *_token_file)");
  // read_token alone is no less partial.
  EXPECT_NE(error_of(kBase + "auth: {read_token: r}\n").find("\"auth.admin_token\", \"auth.agent_token\", \"auth.peer_token\""),
            std::string::npos);
  auto code = parse_controller_config(kBase + "auth: {peer_token: p3}\n", "c.yaml");
  ASSERT_FALSE(code.ok());
  EXPECT_EQ(code.code(), ConfigErrorCode::kMissingKey);
}

TEST(AuthConfigTest, ReadTokenWithTheOthers) {
  auto r = parse_controller_config(kBase + "auth: {admin_token: a1, agent_token: a2, peer_token: p3, read_token: r4}\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().auth.read_token, "r4");
}

TEST(AuthConfigTest, TokensMustDifferAndNeverShowInErrors) {
  std::string msg = error_of(kBase + "auth: {admin_token: same-secret, agent_token: same-secret, peer_token: p3}\n");
  EXPECT_EQ(msg, "config c.yaml: auth.agent_token: must differ from auth.admin_token");
  msg = error_of(kBase + "auth: {admin_token: 'has space', agent_token: a2, peer_token: p3}\n");
  EXPECT_EQ(msg, "config c.yaml: auth.admin_token: must be 1 to 4096 visible ASCII characters, no spaces");
  EXPECT_EQ(msg.find("has space"), std::string::npos);
}

TEST(AuthConfigTest, TokenFilesAreReadAndTrimmedOfOneNewline) {
  TempDir dir;
  std::string admin = dir.write("admin", "admin-secret\n");
  std::string agent = dir.write("agent", "agent-secret\r\n");
  std::string peer = dir.write("peer", "peer-secret");
  auto r = parse_controller_config(kBase + "auth: {admin_token_file: " + admin + ", agent_token_file: " + agent +
                                   ", peer_token_file: " + peer + "}\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().auth.admin_token, "admin-secret");
  EXPECT_EQ(r.value().auth.agent_token, "agent-secret");
  EXPECT_EQ(r.value().auth.peer_token, "peer-secret");
}

TEST(AuthConfigTest, TokenFileErrors) {
  TempDir dir;
  std::string empty = dir.write("empty", "\n");
  std::string two = dir.write("two", "secret-one\n\n");
  EXPECT_EQ(error_of(kBase + "auth: {admin_token_file: " + dir.path() + "/missing, agent_token: a, peer_token: p}\n"),
            "config c.yaml: auth.admin_token_file: cannot read \"" + dir.path() + "/missing\": No such file or directory");
  EXPECT_EQ(error_of(kBase + "auth: {admin_token_file: " + empty + ", agent_token: a, peer_token: p}\n"),
            "config c.yaml: auth.admin_token_file: \"" + empty +
                "\" must hold 1 to 4096 visible ASCII characters, no spaces (one trailing newline is allowed)");
  std::string msg = error_of(kBase + "auth: {admin_token_file: " + two + ", agent_token: a, peer_token: p}\n");
  EXPECT_NE(msg.find("must hold"), std::string::npos);
  EXPECT_EQ(msg.find("secret-one"), std::string::npos) << msg;
  EXPECT_EQ(error_of(kBase + "auth: {admin_token: x, admin_token_file: " + empty + ", agent_token: a, peer_token: p}\n"),
            "config c.yaml: auth.admin_token: give either auth.admin_token or auth.admin_token_file, not both");
  if (::geteuid() != 0) {  // root reads anything
    std::string locked = dir.write("locked", "s");
    ::chmod(locked.c_str(), 0);
    EXPECT_NE(error_of(kBase + "auth: {admin_token_file: " + locked + ", agent_token: a, peer_token: p}\n")
                  .find("Permission denied"),
              std::string::npos);
  }
}

TEST(AuthConfigTest, AgentTokens) {
  TempDir dir;
  std::string client = dir.write("client", "client-secret\n");
  auto r = parse_agent_config(kAgentBase + "auth: {agent_token: agt, client_token_file: " + client + "}\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().auth.agent_token, "agt");
  EXPECT_EQ(r.value().auth.client_token, "client-secret");
  auto bad = parse_agent_config(kAgentBase + "auth: {client_token: a, client_token_file: " + client + "}\n", "a.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message,
            "config a.yaml: auth.client_token: give either auth.client_token or auth.client_token_file, not both");
}

// The config fuzz target's property (every message one line) also holds for
// a token file's name, which may hold any character: it is shown escaped.
TEST(AuthConfigTest, TokenFileNameWithANewlineIsShownOnOneLine) {
  EXPECT_EQ(error_of(kBase + "auth: {admin_token_file: \"no\\nsuch\", agent_token: a, peer_token: p}\n"),
            "config c.yaml: auth.admin_token_file: cannot read \"no\\x0asuch\": No such file or directory");
}

}  // namespace
}  // namespace tenure::config
