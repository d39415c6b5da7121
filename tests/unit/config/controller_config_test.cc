#include "config/controller_config.h"
#include "config/agent_config.h"

#include <gtest/gtest.h>

#include "tests/unit/config/temp_files.h"

namespace tenure::config {
namespace {

using testing::TempDir;

const char* kMinimal = R"(
node_id: c1
data_dir: /var/lib/tenure/c1
listen: 127.0.0.1:7001
)";

const char* kPeers = R"(
node_id: c1
data_dir: /d
listen: 127.0.0.1:7001
peers:
  - {id: c1, address: 127.0.0.1:7001}
  - {id: c2, address: 127.0.0.1:7002}
)";

// Parses `yaml` (named c.yaml) and expects exactly `message` with `code`.
void expect_error(const std::string& yaml, ConfigErrorCode code, const std::string& message) {
  auto r = parse_controller_config(yaml, "c.yaml");
  ASSERT_FALSE(r.ok()) << "accepted:\n" << yaml;
  EXPECT_EQ(r.error().message, message) << yaml;
  EXPECT_EQ(to_string(r.code()), std::string(to_string(code))) << r.error().message;
  EXPECT_EQ(r.error().message.find('\n'), std::string::npos) << "not one line: " << r.error().message;
}

std::string with(const std::string& extra) { return std::string(kMinimal) + extra; }

TEST(ControllerConfigTest, MinimalConfigGetsDefaults) {
  auto r = parse_controller_config(kMinimal);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const ControllerConfig& c = r.value();
  EXPECT_EQ(c.node_id, "c1");
  EXPECT_EQ(c.data_dir, "/var/lib/tenure/c1");
  EXPECT_EQ(c.listen.str(), "127.0.0.1:7001");
  EXPECT_TRUE(c.peers.empty());
  EXPECT_EQ(c.raft.heartbeat_interval_ms, 100u);
  EXPECT_EQ(c.raft.election_timeout_ms, 1000u);
  EXPECT_EQ(c.raft.snapshot_threshold_entries, 100000u);
  EXPECT_TRUE(c.raft.lease_reads);
  EXPECT_EQ(c.worker_lease_ms, 3000u);
  EXPECT_TRUE(c.auth.admin_token.empty());
  EXPECT_TRUE(c.auth.agent_token.empty());
  EXPECT_TRUE(c.auth.peer_token.empty());
  EXPECT_FALSE(c.tls_enabled());
  EXPECT_EQ(c.placement.max_concurrent_moves, 64u);
  EXPECT_EQ(c.placement.join_delay_ms, 0u);
  EXPECT_EQ(c.limits.max_watch_streams, 4096u);
  EXPECT_EQ(c.limits.max_connections, 10000u);
  EXPECT_EQ(c.source, "<inline>");
}

TEST(ControllerConfigTest, FullConfigFromFile) {
  TempDir dir;
  std::string cert = dir.write("cert.pem", "cert");
  std::string key = dir.write("key.pem", "key");
  std::string ca = dir.write("ca.pem", "ca");
  std::string path = dir.write("c2.yaml", R"(
node_id: c2
data_dir: /var/lib/tenure/c2
listen: 0.0.0.0:7002
peers:
  - {id: c1, address: 127.0.0.1:7001}
  - id: c2
    address: "127.0.0.1:7002"
  - {id: c3, address: "[::1]:7003"}
raft:
  heartbeat_interval_ms: 50
  election_timeout_ms: 500
  snapshot_threshold_entries: 123456789012
  lease_reads: false
worker_lease_ms: 4000
auth: {admin_token: adm, agent_token: agt, peer_token: per}
tls: {cert_file: )" + cert + ", key_file: " + key + ", ca_file: " + ca + R"(}
placement:
  max_concurrent_moves: 8
  join_delay_ms: 2500
)");
  auto r = load_controller_config(path);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const ControllerConfig& c = r.value();
  EXPECT_EQ(c.node_id, "c2");
  EXPECT_EQ(c.listen.host, "0.0.0.0");
  EXPECT_EQ(c.listen.port, 7002);
  ASSERT_EQ(c.peers.size(), 3u);
  EXPECT_EQ(c.peers[0].id, "c1");
  EXPECT_EQ(c.peers[0].address, "127.0.0.1:7001");
  EXPECT_EQ(c.peers[1].address, "127.0.0.1:7002");
  EXPECT_EQ(c.peers[2].address, "[::1]:7003");
  EXPECT_EQ(c.raft.heartbeat_interval_ms, 50u);
  EXPECT_EQ(c.raft.election_timeout_ms, 500u);
  EXPECT_EQ(c.raft.snapshot_threshold_entries, 123456789012u);
  EXPECT_FALSE(c.raft.lease_reads);
  EXPECT_EQ(c.worker_lease_ms, 4000u);
  EXPECT_EQ(c.auth.admin_token, "adm");
  EXPECT_EQ(c.auth.agent_token, "agt");
  EXPECT_EQ(c.auth.peer_token, "per");
  EXPECT_TRUE(c.tls_enabled());
  EXPECT_EQ(c.tls.cert_file, cert);
  EXPECT_EQ(c.tls.key_file, key);
  EXPECT_EQ(c.tls.ca_file, ca);
  EXPECT_EQ(c.placement.max_concurrent_moves, 8u);
  EXPECT_EQ(c.placement.join_delay_ms, 2500u);
  EXPECT_EQ(c.source, path);
}

TEST(ControllerConfigTest, Limits) {
  auto r = parse_controller_config(with("limits: {max_watch_streams: 3, max_connections: 100}\n"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().limits.max_watch_streams, 3u);
  EXPECT_EQ(r.value().limits.max_connections, 100u);
  auto zero = parse_controller_config(with("limits: {max_watch_streams: 0}\n"), "c.yaml");
  ASSERT_FALSE(zero.ok());
  EXPECT_NE(zero.error().message.find("limits.max_watch_streams"), std::string::npos) << zero.error().message;
  auto few = parse_controller_config(with("limits: {max_connections: 15}\n"), "c.yaml");
  ASSERT_FALSE(few.ok());
  EXPECT_NE(few.error().message.find("limits.max_connections"), std::string::npos) << few.error().message;
  expect_error(with("limits: {max_streams: 1}\n"), ConfigErrorCode::kUnknownKey,
               "config c.yaml: unknown key \"limits.max_streams\"");
}

TEST(ControllerConfigTest, EmptyOptionalBlocksKeepDefaults) {
  auto r = parse_controller_config(with("peers:\nraft:\nauth: {}\nplacement: {}\n"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r.value().peers.empty());
  EXPECT_EQ(r.value().raft.election_timeout_ms, 1000u);
}

TEST(ControllerConfigTest, PeersWithoutThisNodeMeanJoiningAGroup) {
  auto ok = parse_controller_config(kPeers);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok.value().peers.size(), 2u);
  // A member being added lists the existing ones, not itself (it must not bootstrap).
  auto joiner = parse_controller_config(with("peers: [{id: c2, address: 'h:1'}, {id: c3, address: 'h:2'}]\n"));
  ASSERT_TRUE(joiner.ok()) << joiner.error().message;
  EXPECT_EQ(joiner.value().peers.size(), 2u);
}

TEST(ControllerConfigTest, PeersRequiredErrorNamesTheKey) {
  auto r = parse_controller_config(kMinimal, "/etc/tenure/c1.yaml");
  ASSERT_TRUE(r.ok());
  ConfigError e = peers_required_error(r.value());
  EXPECT_EQ(e.code, ConfigErrorCode::kMissingKey);
  EXPECT_EQ(e.message,
            "config /etc/tenure/c1.yaml: missing required key \"peers\" (required on first start: data_dir "
            "/var/lib/tenure/c1 holds no state)");
}

TEST(ControllerConfigTest, UnreadableFile) {
  TempDir dir;
  auto missing = load_controller_config(dir.path() + "/nope.yaml");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.code(), ConfigErrorCode::kUnreadableFile);
  EXPECT_EQ(missing.error().message,
            "config " + dir.path() + "/nope.yaml: cannot read file: No such file or directory");
  auto directory = load_controller_config(dir.path());
  ASSERT_FALSE(directory.ok());
  EXPECT_EQ(directory.code(), ConfigErrorCode::kUnreadableFile);
  EXPECT_EQ(directory.error().message, "config " + dir.path() + ": cannot read file: is a directory");
}

TEST(ControllerConfigTest, InvalidYaml) {
  expect_error("node_id: c1\nlisten: [1, 2\ndata_dir: x\n", ConfigErrorCode::kInvalidYaml,
               "config c.yaml: invalid YAML at line 3, column 9: end of sequence flow not found");
  expect_error(std::string(kMinimal) + "---\nnode_id: c2\n", ConfigErrorCode::kInvalidYaml,
               "config c.yaml: expected one YAML document, got 2");
  auto r = parse_controller_config("a: *nope\n", "c.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), ConfigErrorCode::kInvalidYaml);
}

TEST(ControllerConfigTest, UnknownKeysAnywhere) {
  expect_error(with("heartbeat_ms: 5\n"), ConfigErrorCode::kUnknownKey, "config c.yaml: unknown key \"heartbeat_ms\"");
  expect_error(with("raft: {heartbeat_ms: 5}\n"), ConfigErrorCode::kUnknownKey,
               "config c.yaml: unknown key \"raft.heartbeat_ms\"");
  expect_error(with("peers: [{id: c1, address: 'h:1', port: 2}]\n"), ConfigErrorCode::kUnknownKey,
               "config c.yaml: unknown key \"peers[0].port\"");
  expect_error(with("auth: {token: x}\n"), ConfigErrorCode::kUnknownKey, "config c.yaml: unknown key \"auth.token\"");
  expect_error(with("tls: {cert: x}\n"), ConfigErrorCode::kUnknownKey, "config c.yaml: unknown key \"tls.cert\"");
  expect_error(with("placement: {moves: 1}\n"), ConfigErrorCode::kUnknownKey,
               "config c.yaml: unknown key \"placement.moves\"");
  // A typo in a required key is reported as the typo, not as the missing key.
  expect_error("node-id: c1\ndata_dir: /d\nlisten: h:1\n", ConfigErrorCode::kUnknownKey,
               "config c.yaml: unknown key \"node-id\"");
}

TEST(ControllerConfigTest, DuplicateKeys) {
  expect_error(with("worker_lease_ms: 1\nworker_lease_ms: 2\n"), ConfigErrorCode::kUnknownKey,
               "config c.yaml: duplicate key \"worker_lease_ms\"");
  expect_error(with("raft: {election_timeout_ms: 900, election_timeout_ms: 800}\n"), ConfigErrorCode::kUnknownKey,
               "config c.yaml: duplicate key \"raft.election_timeout_ms\"");
}

TEST(ControllerConfigTest, MissingRequiredKeys) {
  expect_error("data_dir: /d\nlisten: h:1\n", ConfigErrorCode::kMissingKey,
               "config c.yaml: missing required key \"node_id\"");
  expect_error("node_id: c1\nlisten: h:1\n", ConfigErrorCode::kMissingKey,
               "config c.yaml: missing required key \"data_dir\"");
  expect_error("node_id: c1\ndata_dir: /d\n", ConfigErrorCode::kMissingKey,
               "config c.yaml: missing required key \"listen\"");
  expect_error(with("peers: [{id: c1, address: 'h:1'}, {id: c2}]\n"), ConfigErrorCode::kMissingKey,
               "config c.yaml: missing required key \"peers[1].address\"");
  expect_error(with("peers: [{address: 'h:1'}]\n"), ConfigErrorCode::kMissingKey,
               "config c.yaml: missing required key \"peers[0].id\"");
  expect_error("", ConfigErrorCode::kMissingKey, "config c.yaml: missing required key \"node_id\"");
}

TEST(ControllerConfigTest, WrongTypes) {
  expect_error(with("raft: {election_timeout_ms: fast}\n"), ConfigErrorCode::kWrongType,
               "config c.yaml: raft.election_timeout_ms: expected an unsigned integer, got \"fast\"");
  expect_error(with("worker_lease_ms: -5\n"), ConfigErrorCode::kWrongType,
               "config c.yaml: worker_lease_ms: expected an unsigned integer, got \"-5\"");
  expect_error(with("worker_lease_ms: 1.5\n"), ConfigErrorCode::kWrongType,
               "config c.yaml: worker_lease_ms: expected an unsigned integer, got \"1.5\"");
  expect_error(with("worker_lease_ms: \"100\"\n"), ConfigErrorCode::kWrongType,
               "config c.yaml: worker_lease_ms: expected an unsigned integer, got the quoted string \"100\"");
  expect_error(with("worker_lease_ms: [1]\n"), ConfigErrorCode::kWrongType,
               "config c.yaml: worker_lease_ms: expected an unsigned integer, got a list");
  expect_error(with("worker_lease_ms:\n"), ConfigErrorCode::kWrongType,
               "config c.yaml: worker_lease_ms: expected an unsigned integer, got null");
  expect_error(with("peers: {id: c1, address: 'h:1'}\n"), ConfigErrorCode::kWrongType,
               "config c.yaml: peers: expected a list, got a map");
  expect_error(with("peers: [c1]\n"), ConfigErrorCode::kWrongType,
               "config c.yaml: peers[0]: expected a map, got \"c1\"");
  expect_error(with("raft: [1, 2]\n"), ConfigErrorCode::kWrongType, "config c.yaml: raft: expected a map, got a list");
  expect_error(with("auth: secret\n"), ConfigErrorCode::kWrongType,
               "config c.yaml: auth: expected a map, got \"secret\"");
  expect_error("node_id: {a: 1}\ndata_dir: /d\nlisten: h:1\n", ConfigErrorCode::kWrongType,
               "config c.yaml: node_id: expected a string, got a map");
  expect_error("- node_id: c1\n", ConfigErrorCode::kWrongType,
               "config c.yaml: top level: expected a map, got a list");
  expect_error(with("{a: 1}: 2\n"), ConfigErrorCode::kWrongType,
               "config c.yaml: top level: keys must be strings, got a map");
}

TEST(ControllerConfigTest, OutOfRangeNumbers) {
  expect_error(with("worker_lease_ms: 0\n"), ConfigErrorCode::kInvalidValue,
               "config c.yaml: worker_lease_ms: must be in 1..4294967295, got 0");
  expect_error(with("raft: {heartbeat_interval_ms: 4294967296}\n"), ConfigErrorCode::kInvalidValue,
               "config c.yaml: raft.heartbeat_interval_ms: must be in 1..4294967295, got 4294967296");
  expect_error(with("raft: {snapshot_threshold_entries: 99999999999999999999}\n"), ConfigErrorCode::kInvalidValue,
               "config c.yaml: raft.snapshot_threshold_entries: must be in 1..18446744073709551615, got "
               "99999999999999999999");
  expect_error(with("placement: {max_concurrent_moves: 0}\n"), ConfigErrorCode::kInvalidValue,
               "config c.yaml: placement.max_concurrent_moves: must be in 1..4294967295, got 0");
}

TEST(ControllerConfigTest, LeaseReadsIsAPlainBoolean) {
  for (const char* bad : {"yes", "1", "\"true\"", "[true]"}) {
    auto r = parse_controller_config(with(std::string("raft: {lease_reads: ") + bad + "}\n"));
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, ConfigErrorCode::kWrongType) << bad;
    EXPECT_NE(r.error().message.find("raft.lease_reads: expected true or false, got "), std::string::npos)
        << r.error().message;
  }
  EXPECT_TRUE(parse_controller_config(with("raft: {lease_reads: true}\n")).value().raft.lease_reads);
}

TEST(ControllerConfigTest, HeartbeatMustBeShorterThanElectionTimeout) {
  expect_error(with("raft: {heartbeat_interval_ms: 1000}\n"), ConfigErrorCode::kInvalidValue,
               "config c.yaml: raft.heartbeat_interval_ms: must be less than raft.election_timeout_ms (1000 >= "
               "1000)");
  EXPECT_TRUE(parse_controller_config(with("raft: {heartbeat_interval_ms: 999}\n")).ok());
}

TEST(ControllerConfigTest, BadIdsAndAddresses) {
  expect_error("node_id: c 1\ndata_dir: /d\nlisten: h:1\n", ConfigErrorCode::kInvalidValue,
               "config c.yaml: node_id: must match [A-Za-z0-9._-]{1,64}, got \"c 1\"");
  expect_error("node_id: " + std::string(65, 'a') + "\ndata_dir: /d\nlisten: h:1\n", ConfigErrorCode::kInvalidValue,
               "config c.yaml: node_id: must match [A-Za-z0-9._-]{1,64}, got \"" + std::string(60, 'a') + "...\"");
  EXPECT_TRUE(parse_controller_config("node_id: " + std::string(64, 'a') + "\ndata_dir: /d\nlisten: h:1\n").ok());
  expect_error("node_id: c1\ndata_dir: /d\nlisten: 127.0.0.1\n", ConfigErrorCode::kInvalidValue,
               "config c.yaml: listen: expected host:port, no port, got \"127.0.0.1\"");
  expect_error("node_id: c1\ndata_dir: /d\nlisten: h:0\n", ConfigErrorCode::kInvalidValue,
               "config c.yaml: listen: expected host:port, port must be 1..65535, got \"h:0\"");
  expect_error(with("peers: [{id: c1, address: 'h:1'}, {id: 'c/2', address: 'h:2'}]\n"),
               ConfigErrorCode::kInvalidValue,
               "config c.yaml: peers[1].id: must match [A-Za-z0-9._-]{1,64}, got the quoted string \"c/2\"");
  expect_error(with("peers: [{id: c1, address: 'h:99999'}]\n"), ConfigErrorCode::kInvalidValue,
               "config c.yaml: peers[0].address: expected host:port, port must be 1..65535, got the quoted string "
               "\"h:99999\"");
  expect_error(with("peers: [{id: c1, address: 'h:1'}, {id: c1, address: 'h:2'}]\n"), ConfigErrorCode::kInvalidValue,
               "config c.yaml: peers[1].id: duplicate peer id \"c1\"");
  expect_error("node_id: c1\ndata_dir: ''\nlisten: h:1\n", ConfigErrorCode::kInvalidValue,
               "config c.yaml: data_dir: must not be empty");
  expect_error(with("auth: {admin_token: ''}\n"), ConfigErrorCode::kInvalidValue,
               "config c.yaml: auth.admin_token: must not be empty");
}

TEST(ControllerConfigTest, ControlCharactersStayOnOneLine) {
  expect_error("node_id: \"c\\n1\"\ndata_dir: /d\nlisten: h:1\n", ConfigErrorCode::kInvalidValue,
               "config c.yaml: node_id: must match [A-Za-z0-9._-]{1,64}, got the quoted string \"c\\x0a1\"");
}

TEST(ControllerConfigTest, TlsFilesComeTogetherAndMustBeReadable) {
  TempDir dir;
  std::string cert = dir.write("cert.pem", "c");
  std::string key = dir.write("key.pem", "k");
  expect_error(with("tls: {cert_file: " + cert + "}\n"), ConfigErrorCode::kMissingKey,
               "config c.yaml: tls: cert_file and key_file go together: missing required key \"tls.key_file\"");
  expect_error(with("tls: {key_file: " + key + "}\n"), ConfigErrorCode::kMissingKey,
               "config c.yaml: tls: cert_file and key_file go together: missing required key \"tls.cert_file\"");
  expect_error(with("tls: {cert_file: " + cert + ", key_file: " + dir.path() + "/missing.pem}\n"),
               ConfigErrorCode::kInvalidValue,
               "config c.yaml: tls.key_file: cannot read \"" + dir.path() +
                   "/missing.pem\": No such file or directory");
  expect_error(with("tls: {cert_file: " + dir.path() + ", key_file: " + key + "}\n"), ConfigErrorCode::kInvalidValue,
               "config c.yaml: tls.cert_file: cannot read \"" + dir.path() + "\": is a directory");
  expect_error(with("tls: {ca_file: " + cert + "}\n"), ConfigErrorCode::kMissingKey,
               "config c.yaml: tls.ca_file: requires tls.cert_file and tls.key_file");
  auto ok = parse_controller_config(with("tls: {cert_file: " + cert + ", key_file: " + key + "}\n"));
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_TRUE(ok.value().tls_enabled());
  EXPECT_TRUE(ok.value().tls.ca_file.empty());
}

// Found by the config fuzz target: yaml-cpp's message for a bad character
// shows the character as it is, here a newline, and the message was two
// lines. Control characters in a message are now written \xNN.
TEST(ControllerConfigTest, YamlErrorMessagesStayOnOneLine) {
  const std::string input("node_id: c\0\ndata_dir: d\nli\x8d\x8b\x9a\x91w2\xce\xd7" "3.0.0.1:7001\n", 47);
  auto r = parse_controller_config(input, "c.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.find_first_of("\r\n"), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message.rfind("config c.yaml: invalid YAML at line ", 0), 0u) << r.error().message;
  auto agent = parse_agent_config(input, "a.yaml");
  ASSERT_FALSE(agent.ok());
  EXPECT_EQ(agent.error().message.find_first_of("\r\n"), std::string::npos) << agent.error().message;
}

// Found by the config fuzz target: a config of just "," made yaml-cpp 0.7's
// LoadAll add empty documents forever (memory grew until the process was
// killed; yaml-cpp issue 1040). Now an error naming where the parser stopped.
TEST(ControllerConfigTest, StrayCommaIsAnErrorNotAHang) {
  for (const std::string text : {",", " ,", "- a\n,", "[a],", "{a: 1},", "--- ,", "node_id: c1\n---\n,"}) {
    auto r = parse_controller_config(text, "c.yaml");
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.code(), ConfigErrorCode::kInvalidYaml) << text;
    EXPECT_EQ(r.error().message.rfind("config c.yaml: invalid YAML at line ", 0), 0u) << r.error().message;
    EXPECT_FALSE(parse_agent_config(text, "a.yaml").ok()) << text;
  }
  expect_error(",", ConfigErrorCode::kInvalidYaml, "config c.yaml: invalid YAML at line 1, column 1: unexpected character");
  // Several documents are still counted.
  expect_error("a: 1\n---\nb: 2\n---\n", ConfigErrorCode::kInvalidYaml,
               "config c.yaml: expected one YAML document, got 3");
}

}  // namespace
}  // namespace tenure::config
