// The controller's access rules (api/access.h) and the token mechanism
// under them (net/auth.h), without a server.
#include "api/access.h"

#include <gtest/gtest.h>

namespace tenure::api {
namespace {

net::HttpRequest with_auth(const std::string& value) {
  net::HttpRequest r;
  r.headers["authorization"] = value;
  return r;
}

TEST(BearerTokenTest, SchemeIsCaseInsensitive) {
  EXPECT_EQ(net::bearer_token(with_auth("Bearer abc")), "abc");
  EXPECT_EQ(net::bearer_token(with_auth("bearer abc")), "abc");
  EXPECT_EQ(net::bearer_token(with_auth("BEARER   abc ")), "abc");
  EXPECT_FALSE(net::bearer_token(with_auth("Basic abc")));
  EXPECT_FALSE(net::bearer_token(with_auth("Bearer")));
  EXPECT_FALSE(net::bearer_token(with_auth("Bearer ")));
  EXPECT_FALSE(net::bearer_token(with_auth("Bearerabc")));
  EXPECT_FALSE(net::bearer_token(net::HttpRequest{}));
}

TEST(SecretDigestTest, MatchesOnlyTheWholeSecret) {
  net::SecretDigest d("s3cret");
  EXPECT_TRUE(d.matches(net::sha256("s3cret")));
  EXPECT_FALSE(d.matches(net::sha256("s3cre")));
  EXPECT_FALSE(d.matches(net::sha256("s3cret ")));
  EXPECT_FALSE(d.matches(net::sha256("")));
  EXPECT_FALSE(net::SecretDigest().matches(net::sha256("")));  // unset matches nothing, not even ""
  EXPECT_EQ(net::sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(net::sha256_hex("abc", 4), "ba7816bf");
}

TEST(TokenSetTest, RolesOfTokens) {
  TokenSet t("Xq1", "Yq2", "Zq3", "");
  EXPECT_TRUE(t.enabled());
  EXPECT_FALSE(t.reads_closed());
  EXPECT_EQ(t.role_of("Xq1"), Role::kAdmin);
  EXPECT_EQ(t.role_of("Yq2"), Role::kAgent);
  EXPECT_EQ(t.role_of("Zq3"), Role::kPeer);
  EXPECT_EQ(t.role_of("Xq"), Role::kNone);
  EXPECT_EQ(t.role_of(""), Role::kNone);
  EXPECT_FALSE(TokenSet().enabled());
}

// Every access level x every kind of credential: the status it gets.
TEST(CheckTokenTest, Matrix) {
  const TokenSet open;
  const TokenSet tokens("Xq1", "Yq2", "Zq3", "");
  const TokenSet closed("Xq1", "Yq2", "Zq3", "Wq4");
  struct Case {
    const TokenSet* set;
    Access access;
    std::optional<std::string_view> token;
    int status;  // 0: allowed
  };
  const Case cases[] = {
      {&open, Access::kAdmin, std::nullopt, 0},       {&open, Access::kPeer, "x", 0},
      {&tokens, Access::kPublic, std::nullopt, 0},    {&closed, Access::kPublic, "x", 0},
      {&tokens, Access::kOpen, std::nullopt, 0},      {&tokens, Access::kOpen, "nope", 0},
      {&closed, Access::kOpen, std::nullopt, 401},    {&closed, Access::kOpen, "nope", 401},
      {&closed, Access::kOpen, "Wq4", 0},              {&closed, Access::kOpen, "Zq3", 0},
      {&closed, Access::kOpen, "Yq2", 0},             {&closed, Access::kOpen, "Xq1", 0},
      {&tokens, Access::kAdmin, std::nullopt, 401},   {&tokens, Access::kAdmin, "nope", 401},
      {&tokens, Access::kAdmin, "Xq1", 0},            {&tokens, Access::kAdmin, "Yq2", 403},
      {&tokens, Access::kAdmin, "Zq3", 403},          {&closed, Access::kAdmin, "Wq4", 403},
      {&tokens, Access::kAgent, std::nullopt, 401},   {&tokens, Access::kAgent, "Yq2", 0},
      {&tokens, Access::kAgent, "Xq1", 0},            {&tokens, Access::kAgent, "Zq3", 403},
      {&tokens, Access::kPeer, std::nullopt, 401},    {&tokens, Access::kPeer, "Zq3", 0},
      {&tokens, Access::kPeer, "Xq1", 403},           {&tokens, Access::kPeer, "Yq2", 403},
  };
  for (const auto& c : cases) {
    Role role;
    auto d = check_token(c.access, *c.set, c.token, role);
    SCOPED_TRACE(std::string(c.token.value_or("<none>")) + " access=" + std::to_string(static_cast<int>(c.access)));
    EXPECT_EQ(d ? d->status : 0, c.status);
    if (d) {
      EXPECT_EQ(d->code, d->status == 401 ? "unauthorized" : "forbidden");
      if (c.token) {
        EXPECT_EQ(d->message.find(std::string(*c.token)), std::string::npos) << d->message;
      }
    }
  }
}

TEST(CertIdentityTest, UrisFirstThenCommonName) {
  net::ClientCertificate c;
  c.common_name = "fallback";
  c.uris = {"spiffe://x/y", "tenure://worker/w1", "tenure://admin/ops"};
  EXPECT_EQ(cert_identity(&c).str(), "worker/w1");
  c.uris = {"tenure://bogus/x", "tenure://controller/c2"};
  EXPECT_EQ(cert_identity(&c).str(), "controller/c2");
  c.uris = {"tenure://worker/bad name"};
  EXPECT_EQ(cert_identity(&c).str(), "name/fallback");
  c.uris.clear();
  c.common_name = "has space";
  EXPECT_EQ(cert_identity(&c).kind, CertKind::kNone);
  EXPECT_EQ(cert_identity(nullptr).kind, CertKind::kNone);
  EXPECT_EQ(CertIdentity::parse("admin/ops").str(), "admin/ops");
  EXPECT_EQ(CertIdentity::parse("root/x").kind, CertKind::kNone);
  EXPECT_EQ(CertIdentity::parse("worker/").kind, CertKind::kNone);
}

TEST(CheckCertificateTest, IdentitiesAreBound) {
  const CertIdentity c1{CertKind::kController, "c1"}, w1{CertKind::kWorker, "w1"}, ops{CertKind::kAdmin, "ops"},
      cn_w1{CertKind::kName, "w1"}, none{};
  EXPECT_FALSE(check_certificate(Access::kOpen, none, ""));
  EXPECT_FALSE(check_certificate(Access::kPeer, c1, ""));
  EXPECT_EQ(check_certificate(Access::kPeer, w1, "")->status, 403);
  EXPECT_EQ(check_certificate(Access::kPeer, ops, "")->status, 403);
  EXPECT_FALSE(check_certificate(Access::kAgent, w1, "w1"));
  EXPECT_FALSE(check_certificate(Access::kAgent, cn_w1, "w1"));
  EXPECT_FALSE(check_certificate(Access::kAgent, ops, "w2"));
  EXPECT_EQ(check_certificate(Access::kAgent, w1, "w2")->reason, "certificate");
  EXPECT_EQ(check_certificate(Access::kAgent, cn_w1, "w2")->status, 403);
  EXPECT_EQ(check_certificate(Access::kAgent, c1, "c1")->status, 403);
  EXPECT_FALSE(check_certificate(Access::kAdmin, ops, ""));
  EXPECT_EQ(check_certificate(Access::kAdmin, w1, "")->status, 403);
  EXPECT_EQ(check_certificate(Access::kAdmin, c1, "")->status, 403);
  EXPECT_EQ(check_certificate(Access::kAdmin, none, "")->status, 403);
}

}  // namespace
}  // namespace tenure::api
