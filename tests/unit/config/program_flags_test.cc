// config/program_flags.h: the command line of tenure-controller and
// tenure-agent. Every refusal names the flag or word it refused.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "config/program_flags.h"

namespace tenure::config {
namespace {

using Action = ProgramFlags::Action;

Result<ProgramFlags, FlagErrc> parse(std::vector<const char*> args) {
  args.insert(args.begin(), "tenure-test");
  return parse_program_flags(static_cast<int>(args.size()), args.data());
}

TEST(ProgramFlags, ConfigInBothSpellings) {
  auto a = parse({"--config", "c.yaml"});
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a.value().action, Action::kRun);
  EXPECT_EQ(a.value().config_path, "c.yaml");
  auto b = parse({"--config=dir/c.yaml"});
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b.value().config_path, "dir/c.yaml");
  // The = spelling takes any path, one starting with '-' too.
  auto c = parse({"--config=-odd.yaml"});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c.value().config_path, "-odd.yaml");
}

TEST(ProgramFlags, CheckConfigBeforeOrAfter) {
  for (auto args : {std::vector<const char*>{"--check-config", "--config", "c.yaml"},
                    std::vector<const char*>{"--config", "c.yaml", "--check-config"}}) {
    auto r = parse(args);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r.value().action, Action::kCheckConfig);
    EXPECT_EQ(r.value().config_path, "c.yaml");
  }
}

TEST(ProgramFlags, HelpAndVersionNeedNoConfig) {
  for (const char* h : {"--help", "-h"}) {
    auto r = parse({h});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.value().action, Action::kHelp);
  }
  auto v = parse({"--version"});
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v.value().action, Action::kVersion);
  // Reached first, they win over what follows; a bad word before them does not.
  EXPECT_EQ(parse({"--config", "c.yaml", "--help", "--bogus"}).value().action, Action::kHelp);
  EXPECT_EQ(parse({"--bogus", "--help"}).code(), FlagErrc::kUnknownFlag);
  EXPECT_FALSE(version().empty());
}

void expect_refused(std::vector<const char*> args, FlagErrc code, const std::string& named) {
  auto r = parse(args);
  ASSERT_FALSE(r.ok()) << named;
  EXPECT_EQ(r.code(), code) << r.error().message;
  EXPECT_NE(r.error().message.find(named), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message.find('\n'), std::string::npos) << "one line: " << r.error().message;
}

TEST(ProgramFlags, RefusalsNameTheProblem) {
  expect_refused({}, FlagErrc::kMissingConfig, "missing --config FILE");
  expect_refused({"--check-config"}, FlagErrc::kMissingConfig, "missing --config FILE");
  expect_refused({"--config"}, FlagErrc::kMissingValue, "--config needs a FILE");
  expect_refused({"--config="}, FlagErrc::kMissingValue, "--config needs a FILE");
  expect_refused({"--config", "--check-config"}, FlagErrc::kMissingValue, "--config needs a FILE");
  expect_refused({"--bogus"}, FlagErrc::kUnknownFlag, "unknown flag \"--bogus\"");
  expect_refused({"--config", "c.yaml", "-x"}, FlagErrc::kUnknownFlag, "\"-x\"");
  expect_refused({"--configs=c.yaml"}, FlagErrc::kUnknownFlag, "\"--configs=c.yaml\"");
  expect_refused({"--config", "a.yaml", "extra"}, FlagErrc::kUnexpectedArgument, "unexpected argument \"extra\"");
  expect_refused({"c.yaml"}, FlagErrc::kUnexpectedArgument, "\"c.yaml\"");
  expect_refused({"--config", "a.yaml", "--config=b.yaml"}, FlagErrc::kRepeated, "\"a.yaml\" and \"b.yaml\"");
}

TEST(ProgramFlags, FinishEarlyPrintsAndExits) {
  const std::string usage = "usage: tenure-test --config FILE\n";
  testing::internal::CaptureStderr();
  EXPECT_EQ(finish_early("tenure-test", usage, parse({"--bogus"})), 2);
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "tenure-test: unknown flag \"--bogus\" (see --help)\n");
  testing::internal::CaptureStdout();
  EXPECT_EQ(finish_early("tenure-test", usage, parse({"--help"})), 0);
  EXPECT_EQ(testing::internal::GetCapturedStdout(), usage);
  testing::internal::CaptureStdout();
  EXPECT_EQ(finish_early("tenure-test", usage, parse({"--version"})), 0);
  EXPECT_EQ(testing::internal::GetCapturedStdout(), "tenure-test " + std::string(version()) + "\n");
  EXPECT_EQ(finish_early("tenure-test", usage, parse({"--config", "c.yaml"})), std::nullopt);
  EXPECT_EQ(finish_early("tenure-test", usage, parse({"--config", "c.yaml", "--check-config"})), std::nullopt);
}

}  // namespace
}  // namespace tenure::config
