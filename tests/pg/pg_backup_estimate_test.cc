// ConnectionArgs: pg_basebackup's connection options, in every getopt
// spelling, become psql arguments; everything else is left out.
#include "pg/backup_estimate.h"

#include <gtest/gtest.h>

namespace walferry::pg {
namespace {

using V = std::vector<std::string>;

TEST(BackupEstimate, SeparateValues) {
  EXPECT_EQ(ConnectionArgs({"-h", "db1", "-p", "5433", "-U", "rep", "-c", "fast"}),
            (V{"-h", "db1", "-p", "5433", "-U", "rep"}));
}

TEST(BackupEstimate, AttachedAndLongForms) {
  EXPECT_EQ(ConnectionArgs({"-hdb1", "--port=5433", "--username", "rep", "--dbname=host=x user=y"}),
            (V{"-h", "db1", "-p", "5433", "-U", "rep", "-d", "host=x user=y"}));
}

TEST(BackupEstimate, OtherOptionsIgnored) {
  EXPECT_EQ(ConnectionArgs({"-Ft", "-P", "--checkpoint=fast", "-l", "label", "--wal-method=fetch"}), V{});
}

TEST(BackupEstimate, MissingValueIgnored) {
  EXPECT_EQ(ConnectionArgs({"-c", "fast", "-h"}), V{});
  EXPECT_EQ(ConnectionArgs({"--host"}), V{});
}

}  // namespace
}  // namespace walferry::pg
