#include "storage/sqlite.h"

#include <gtest/gtest.h>

#include "tests/unit/storage/temp_dir.h"

namespace tenure::storage {
namespace {

using testing::TempDir;

std::unique_ptr<Database> open_db(const TempDir& dir) {
  auto db = Database::open(dir.sub("t.db"));
  EXPECT_TRUE(db.ok()) << db.error().message;
  EXPECT_TRUE(db.value()->exec("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)").ok());
  return std::move(db.value());
}

int64_t count(Database& db) {
  auto st = db.cached("SELECT COUNT(*) FROM t");
  EXPECT_TRUE(st.ok());
  auto row = st.value()->step();
  EXPECT_TRUE(row.ok() && row.value());
  return st.value()->column_int64(0);
}

TEST(SqliteTest, BindStepAndColumns) {
  TempDir dir;
  auto db = open_db(dir);
  {
    auto ins = db->cached("INSERT INTO t (k, v) VALUES (?1, ?2)");
    ASSERT_TRUE(ins.ok());
    ASSERT_TRUE(ins.value()->bind_int64(1, -5).ok());
    ASSERT_TRUE(ins.value()->bind_blob(2, std::string("a\0b", 3)).ok());
    ASSERT_TRUE(ins.value()->run().ok());
  }
  auto sel = db->prepare("SELECT k, v, NULL FROM t");
  ASSERT_TRUE(sel.ok());
  auto row = sel.value().step();
  ASSERT_TRUE(row.ok() && row.value());
  EXPECT_EQ(sel.value().column_int64(0), -5);
  EXPECT_EQ(sel.value().column_blob(1), std::string("a\0b", 3));
  EXPECT_TRUE(sel.value().column_is_null(2));
  auto done = sel.value().step();
  ASSERT_TRUE(done.ok());
  EXPECT_FALSE(done.value());
}

TEST(SqliteTest, ErrorsAreValues) {
  TempDir dir;
  auto db = open_db(dir);
  auto bad = db->prepare("SELEC nonsense");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.code(), SqliteErrorCode::kError);
  EXPECT_NE(bad.error().message.find("syntax error"), std::string::npos) << bad.error().message;

  ASSERT_TRUE(db->exec("INSERT INTO t (k) VALUES (1)").ok());
  auto dup = db->exec("INSERT INTO t (k) VALUES (1)");
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.code(), SqliteErrorCode::kConstraint);
  EXPECT_NE(dup.error().message.find("code=1555"), std::string::npos) << dup.error().message;

  auto cant = Database::open(dir.sub("no/such/dir/x.db"));
  ASSERT_FALSE(cant.ok());
  EXPECT_EQ(cant.code(), SqliteErrorCode::kCantOpen);
}

TEST(SqliteTest, TransactionRollsBackUnlessCommitted) {
  TempDir dir;
  auto db = open_db(dir);
  {
    auto tx = Transaction::begin(*db);
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE(db->exec("INSERT INTO t (k) VALUES (1)").ok());
  }  // rolled back
  EXPECT_EQ(count(*db), 0);
  {
    auto tx = Transaction::begin(*db);
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE(db->exec("INSERT INTO t (k) VALUES (2)").ok());
    ASSERT_TRUE(tx.value().commit().ok());
  }
  EXPECT_EQ(count(*db), 1);
}

TEST(SqliteTest, CachedStatementIsResetAfterEachBorrow) {
  TempDir dir;
  auto db = open_db(dir);
  ASSERT_TRUE(db->exec("INSERT INTO t (k) VALUES (1), (2)").ok());
  // Each borrow starts from the first row again: the previous one was reset.
  for (int i = 0; i < 3; ++i) {
    auto st = db->cached("SELECT k FROM t ORDER BY k");
    ASSERT_TRUE(st.ok());
    auto row = st.value()->step();
    ASSERT_TRUE(row.ok() && row.value());
    EXPECT_EQ(st.value()->column_int64(0), 1);
  }
  auto q = db->query_text("PRAGMA journal_mode");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q.value(), "delete");
}

}  // namespace
}  // namespace tenure::storage
