#include "config/agent_config.h"

#include <gtest/gtest.h>

#include "tests/unit/config/temp_files.h"

namespace tenure::config {
namespace {

using testing::TempDir;

const char* kMinimal = R"(
worker_id: w1
listen: 127.0.0.1:8101
controllers: [127.0.0.1:7001, 127.0.0.1:7002, 127.0.0.1:7003]
data_dir: /var/lib/tenure/w1
)";

std::string with(const std::string& extra) { return std::string(kMinimal) + extra; }

void expect_error(const std::string& yaml, ConfigErrorCode code, const std::string& message) {
  auto r = parse_agent_config(yaml, "a.yaml");
  ASSERT_FALSE(r.ok()) << "accepted:\n" << yaml;
  EXPECT_EQ(r.error().message, message) << yaml;
  EXPECT_EQ(to_string(r.code()), std::string(to_string(code))) << r.error().message;
  EXPECT_EQ(r.error().message.find('\n'), std::string::npos) << "not one line: " << r.error().message;
}

TEST(AgentConfigTest, MinimalConfigGetsDefaults) {
  auto r = parse_agent_config(kMinimal);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const AgentConfig& c = r.value();
  EXPECT_EQ(c.worker_id, "w1");
  EXPECT_EQ(c.listen.str(), "127.0.0.1:8101");
  EXPECT_EQ(c.advertise, "127.0.0.1:8101");  // defaults to listen
  EXPECT_EQ(c.controllers, (std::vector<std::string>{"127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"}));
  EXPECT_EQ(c.data_dir, "/var/lib/tenure/w1");
  EXPECT_EQ(c.zone, "");
  EXPECT_EQ(c.capacity, 1.0);
  EXPECT_EQ(c.heartbeat_interval_ms, 500u);
  EXPECT_EQ(c.auth.agent_token, "");
  EXPECT_FALSE(c.tls_enabled());
}

TEST(AgentConfigTest, FullConfigFromFile) {
  TempDir dir;
  std::string ca = dir.write("ca.pem", "ca");
  std::string path = dir.write("w2.yaml", R"(
worker_id: w2
listen: 0.0.0.0:8102
advertise: w2.example:8102
controllers:
  - 10.0.0.1:7001
  - "[fd00::2]:7001"
data_dir: /var/lib/tenure/w2
zone: z1
capacity: 2.5
heartbeat_interval_ms: 250
auth: {agent_token: secret}
tls: {ca_file: )" + ca + "}\n");
  auto r = load_agent_config(path);
  ASSERT_TRUE(r.ok()) << r.error().message;
  const AgentConfig& c = r.value();
  EXPECT_EQ(c.worker_id, "w2");
  EXPECT_EQ(c.listen.str(), "0.0.0.0:8102");
  EXPECT_EQ(c.advertise, "w2.example:8102");
  EXPECT_EQ(c.controllers, (std::vector<std::string>{"10.0.0.1:7001", "[fd00::2]:7001"}));
  EXPECT_EQ(c.zone, "z1");
  EXPECT_EQ(c.capacity, 2.5);
  EXPECT_EQ(c.heartbeat_interval_ms, 250u);
  EXPECT_EQ(c.auth.agent_token, "secret");
  EXPECT_FALSE(c.tls_enabled());  // a CA alone: trusts controllers, serves plain HTTP
  EXPECT_EQ(c.tls.ca_file, ca);
  EXPECT_EQ(c.source, path);
}

TEST(AgentConfigTest, IntegerCapacityIsANumber) {
  auto r = parse_agent_config(with("capacity: 3\n"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().capacity, 3.0);
}

TEST(AgentConfigTest, UnreadableFile) {
  auto r = load_agent_config("/nonexistent/tenure/agent.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), ConfigErrorCode::kUnreadableFile);
  EXPECT_EQ(r.error().message, "config /nonexistent/tenure/agent.yaml: cannot read file: No such file or directory");
}

TEST(AgentConfigTest, InvalidYaml) {
  expect_error("worker_id: w1\n  listen: x\n", ConfigErrorCode::kInvalidYaml,
               "config a.yaml: invalid YAML at line 2, column 9: illegal map value");
}

TEST(AgentConfigTest, UnknownKeys) {
  expect_error(with("weight: 2\n"), ConfigErrorCode::kUnknownKey, "config a.yaml: unknown key \"weight\"");
  expect_error(with("auth: {admin_token: x}\n"), ConfigErrorCode::kUnknownKey,
               "config a.yaml: unknown key \"auth.admin_token\"");
  expect_error(with("tls: {ca: x}\n"), ConfigErrorCode::kUnknownKey, "config a.yaml: unknown key \"tls.ca\"");
}

TEST(AgentConfigTest, MissingRequiredKeys) {
  expect_error("listen: h:1\ncontrollers: [h:2]\ndata_dir: /d\n", ConfigErrorCode::kMissingKey,
               "config a.yaml: missing required key \"worker_id\"");
  expect_error("worker_id: w1\ncontrollers: [h:2]\ndata_dir: /d\n", ConfigErrorCode::kMissingKey,
               "config a.yaml: missing required key \"listen\"");
  expect_error("worker_id: w1\nlisten: h:1\ndata_dir: /d\n", ConfigErrorCode::kMissingKey,
               "config a.yaml: missing required key \"controllers\"");
  expect_error("worker_id: w1\nlisten: h:1\ncontrollers: [h:2]\n", ConfigErrorCode::kMissingKey,
               "config a.yaml: missing required key \"data_dir\"");
}

TEST(AgentConfigTest, WrongTypes) {
  expect_error("worker_id: w1\nlisten: h:1\ncontrollers: h:2\ndata_dir: /d\n", ConfigErrorCode::kWrongType,
               "config a.yaml: controllers: expected a list, got \"h:2\"");
  expect_error("worker_id: w1\nlisten: h:1\ncontrollers: {a: h:2}\ndata_dir: /d\n", ConfigErrorCode::kWrongType,
               "config a.yaml: controllers: expected a list, got a map");
  expect_error("worker_id: w1\nlisten: h:1\ncontrollers: [[h:2]]\ndata_dir: /d\n", ConfigErrorCode::kWrongType,
               "config a.yaml: controllers[0]: expected host:port, got a list");
  expect_error(with("capacity: big\n"), ConfigErrorCode::kWrongType,
               "config a.yaml: capacity: expected a number, got \"big\"");
  expect_error(with("capacity: .inf\n"), ConfigErrorCode::kWrongType,
               "config a.yaml: capacity: expected a number, got \".inf\"");
  expect_error(with("capacity: '2'\n"), ConfigErrorCode::kWrongType,
               "config a.yaml: capacity: expected a number, got the quoted string \"2\"");
  expect_error(with("heartbeat_interval_ms: -1\n"), ConfigErrorCode::kWrongType,
               "config a.yaml: heartbeat_interval_ms: expected an unsigned integer, got \"-1\"");
}

TEST(AgentConfigTest, InvalidValues) {
  expect_error(with("capacity: 0\n"), ConfigErrorCode::kInvalidValue,
               "config a.yaml: capacity: must be a number > 0, got 0");
  expect_error(with("capacity: -2\n"), ConfigErrorCode::kInvalidValue,
               "config a.yaml: capacity: must be a number > 0, got -2");
  expect_error(with("heartbeat_interval_ms: 0\n"), ConfigErrorCode::kInvalidValue,
               "config a.yaml: heartbeat_interval_ms: must be in 1..4294967295, got 0");
  expect_error("worker_id: w1\nlisten: h:1\ncontrollers: []\ndata_dir: /d\n", ConfigErrorCode::kInvalidValue,
               "config a.yaml: controllers: must list at least one controller address");
  expect_error("worker_id: w1\nlisten: h:1\ncontrollers: [h:2, nope]\ndata_dir: /d\n", ConfigErrorCode::kInvalidValue,
               "config a.yaml: controllers[1]: expected host:port, no port, got \"nope\"");
  expect_error(with("advertise: h:0\n"), ConfigErrorCode::kInvalidValue,
               "config a.yaml: advertise: expected host:port, port must be 1..65535, got \"h:0\"");
  expect_error("worker_id: 'w 1'\nlisten: h:1\ncontrollers: [h:2]\ndata_dir: /d\n", ConfigErrorCode::kInvalidValue,
               "config a.yaml: worker_id: must match [A-Za-z0-9._-]{1,64}, got the quoted string \"w 1\"");
  expect_error(with("zone: ''\n"), ConfigErrorCode::kInvalidValue, "config a.yaml: zone: must not be empty");
}

TEST(AgentConfigTest, TlsCertAndKeyTogether) {
  TempDir dir;
  std::string cert = dir.write("cert.pem", "c");
  std::string key = dir.write("key.pem", "k");
  expect_error(with("tls: {cert_file: " + cert + "}\n"), ConfigErrorCode::kMissingKey,
               "config a.yaml: tls: cert_file and key_file go together: missing required key \"tls.key_file\"");
  auto ok = parse_agent_config(with("tls: {cert_file: " + cert + ", key_file: " + key + "}\n"));
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_TRUE(ok.value().tls_enabled());
}

TEST(AgentConfigTest, AppIsTheProgramToTell) {
  auto r = parse_agent_config(with("app: {url: \"http://127.0.0.1:9000/w1\", drain_timeout_ms: 800}\n"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().app.url, "http://127.0.0.1:9000/w1");
  EXPECT_EQ(r.value().app.drain_timeout_ms, 800u);
  EXPECT_EQ(r.value().app.prepare_timeout_ms, 5000u);
  EXPECT_EQ(parse_agent_config(kMinimal).value().app.url, "") << "no program unless configured";
  EXPECT_EQ(r.value().app.token, "") << "no token unless configured";
  auto t = parse_agent_config(with("app: {url: \"http://h:1\", token: s3cret}\n"));
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t.value().app.token, "s3cret");
}

TEST(AgentConfigTest, AppErrorsNameTheirKey) {
  struct Case {
    const char* yaml;
    const char* key;
  };
  for (const Case& c : {Case{"app: {url: \"ftp://x:1\"}\n", "app.url"}, Case{"app: {url: \"http://nohost\"}\n", "app.url"},
                        Case{"app: {drain_timeout_ms: 5}\n", "app.url"},
                        Case{"app: {url: \"http://h:1\", drain_timeout_ms: 0}\n", "app.drain_timeout_ms"},
                        Case{"app: {url: \"http://h:1\", prepare_timeout_ms: -3}\n", "app.prepare_timeout_ms"},
                        Case{"app: {url: \"http://h:1\", retries: 3}\n", "app.retries"},
                        Case{"app: {url: \"http://h:1\", token: a, token_file: /nonexistent}\n", "app.token"},
                        Case{"app: {url: \"http://h:1\", token_file: /nonexistent/app.token}\n", "app.token_file"}}) {
    auto r = parse_agent_config(with(c.yaml), "a.yaml");
    ASSERT_FALSE(r.ok()) << "accepted: " << c.yaml;
    EXPECT_NE(r.error().message.find(c.key), std::string::npos) << c.yaml << " -> " << r.error().message;
    EXPECT_EQ(r.error().message.find('\n'), std::string::npos);
  }
}

}  // namespace
}  // namespace tenure::config
