// The PostgreSQL wrapper commands as a user runs them (the real binary):
// --help with a postgresql.conf example, get's exit codes, setup primary and
// restore-base on data directories of different majors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/support/cli_run.h"

namespace {

namespace fs = std::filesystem;

using walferry::cli_test::CliOut;
using walferry::cli_test::ReadText;
using walferry::cli_test::RunWalferry;

class PgCli : public walferry::cli_test::ScratchDirTest {
 protected:
  PgCli() : ScratchDirTest("wf-pg-cli") {}
};

TEST_F(PgCli, EveryCommandHelpHasAPostgresqlConfExample) {
  for (const char* cmd : {"get", "cleanup", "verify", "basebackup", "restore-base",
                          "setup primary", "status", "promote"}) {
    CliOut o = RunWalferry(std::string(cmd) + " --help");
    EXPECT_EQ(o.rc, 0) << cmd;
    EXPECT_NE(o.out.find("postgresql.conf"), std::string::npos) << cmd << "\n" << o.out;
    EXPECT_NE(o.out.find("_command = 'walferry"), std::string::npos) << cmd << "\n" << o.out;
  }
}

TEST_F(PgCli, GetExitCodes) {
  fs::create_directories(dir_ / "root" / "main" / "wal");
  const std::string root = (dir_ / "root").string(), dest = (dir_ / "dest").string();
  CliOut missing = RunWalferry("get 000000010000000000000001 " + dest + " --from " + root);
  EXPECT_EQ(missing.rc, 1);
  EXPECT_EQ(missing.out, "");  // quiet: PostgreSQL asks for segments not yet archived
  EXPECT_FALSE(fs::exists(dest));
  CliOut history = RunWalferry("get 00000002.history " + dest + " --from " + root);
  EXPECT_EQ(history.rc, 1);
  EXPECT_EQ(history.out, "");
  CliOut no_root = RunWalferry("get 000000010000000000000001 " + dest + " --from " + root + "/nope");
  EXPECT_NE(no_root.rc, 0);
  EXPECT_NE(no_root.rc, 1);
  EXPECT_NE(no_root.out, "");
  EXPECT_FALSE(fs::exists(root + "/nope"));  // never creates a mistyped root
  CliOut bad_name = RunWalferry("get ../etc/passwd " + dest + " --from " + root);
  EXPECT_NE(bad_name.rc, 0);
  EXPECT_NE(bad_name.rc, 1);
  // A corrupt entry is an error (not "missing"), and nothing lands at dest.
  std::ofstream(dir_ / "root" / "main" / "wal" / "000000010000000000000002") << "not wal";
  CliOut corrupt = RunWalferry("get 000000010000000000000002 " + dest + " --from " + root);
  EXPECT_EQ(corrupt.rc, 3) << corrupt.out;
  EXPECT_NE(corrupt.out.find("000000010000000000000002"), std::string::npos);
  EXPECT_FALSE(fs::exists(dest));
}

TEST_F(PgCli, SetupPrimaryPerVersion) {
  for (int v : {10, 12, 13, 17}) {
    fs::path d = FakePgdata("p" + std::to_string(v), v);
    CliOut o = RunWalferry("setup primary --pgdata " + d.string() + " --standby-address 10.1.2.3");
    ASSERT_EQ(o.rc, 0) << o.out;
    EXPECT_NE(o.out.find(v <= 12 ? "wal_keep_segments = '32'" : "wal_keep_size = '512MB'"),
              std::string::npos) << o.out;
    EXPECT_NE(o.out.find(v >= 14 ? "10.1.2.3/32    scram-sha-256" : "10.1.2.3/32    md5"),
              std::string::npos) << o.out;
    EXPECT_NE(o.out.find("restart needed for: archive_mode"), std::string::npos) << o.out;
    // Printing changes nothing.
    EXPECT_EQ(ReadText(d / "postgresql.auto.conf").find("walferry"), std::string::npos);
    CliOut apply = RunWalferry("setup primary --pgdata " + d.string() + " --standby-address 10.1.2.3 --apply");
    ASSERT_EQ(apply.rc, 0) << apply.out;
    std::string conf = ReadText(d / "postgresql.auto.conf");
    EXPECT_NE(conf.find("archive_mode = 'on'"), std::string::npos);
    EXPECT_EQ(conf.find("rsync"), std::string::npos);  // replaced, not duplicated
    EXPECT_NE(ReadText(d / "pg_hba.conf").find("host    replication     all    10.1.2.3/32"), std::string::npos);
    int backups = 0;
    for (const auto& e : fs::directory_iterator(d)) {
      if (e.path().filename().string().find(".walferry-") != std::string::npos) ++backups;
    }
    EXPECT_EQ(backups, 2);
  }
  fs::path old = FakePgdata("p9", 9);
  EXPECT_NE(RunWalferry("setup primary --pgdata " + old.string()).rc, 0);
}

TEST_F(PgCli, RestoreBaseWritesTheVersionsStandbyConfig) {
  for (int v : {11, 12, 16}) {
    // A stored "base backup": a tar of a fake data directory, raw in the archive.
    fs::path src = FakePgdata("src" + std::to_string(v), v);
    fs::path files = dir_ / "root" / "main" / "files";
    fs::create_directories(files);
    const std::string name = "base" + std::to_string(v) + ".tar";
    ASSERT_EQ(std::system(("tar -cf " + (files / name).string() + " -C " + src.string() + " .").c_str()), 0);
    fs::path pgdata = dir_ / ("standby" + std::to_string(v));
    CliOut o = RunWalferry("restore-base " + name + " --from " + (dir_ / "root").string() + " --pgdata " +
                pgdata.string() + " --primary-conninfo 'host=10.0.0.5 user=rep'");
    ASSERT_EQ(o.rc, 0) << o.out;
    EXPECT_EQ(fs::status(pgdata).permissions() & fs::perms::all, fs::perms::owner_all);
    std::string auto_conf = ReadText(pgdata / "postgresql.auto.conf");
    EXPECT_EQ(auto_conf.find("rsync"), std::string::npos);
    EXPECT_NE(auto_conf.find("archive_mode = 'off'"), std::string::npos);
    if (v <= 11) {
      std::string rec = ReadText(pgdata / "recovery.conf");
      EXPECT_NE(rec.find("standby_mode = 'on'"), std::string::npos);
      EXPECT_NE(rec.find("primary_conninfo = 'host=10.0.0.5 user=rep'"), std::string::npos);
      EXPECT_NE(rec.find("get %f %p --from"), std::string::npos);
      EXPECT_FALSE(fs::exists(pgdata / "standby.signal"));
    } else {
      EXPECT_TRUE(fs::exists(pgdata / "standby.signal"));
      EXPECT_FALSE(fs::exists(pgdata / "recovery.conf"));
      EXPECT_NE(auto_conf.find("primary_conninfo = 'host=10.0.0.5 user=rep'"), std::string::npos);
      EXPECT_NE(auto_conf.find("restore_command = '"), std::string::npos);
      EXPECT_EQ(auto_conf.find("standby_mode"), std::string::npos);
    }
    // Non-empty: refused without --force, replaced with it.
    CliOut again = RunWalferry("restore-base " + name + " --from " + (dir_ / "root").string() + " --pgdata " +
                    pgdata.string());
    EXPECT_EQ(again.rc, 10) << again.out;  // kExitExists
    std::ofstream(pgdata / "junk") << "x";
    CliOut forced = RunWalferry("restore-base " + name + " --from " + (dir_ / "root").string() + " --pgdata " +
                     pgdata.string() + " --force");
    EXPECT_EQ(forced.rc, 0) << forced.out;
    EXPECT_FALSE(fs::exists(pgdata / "junk"));
  }
  CliOut trig = RunWalferry("restore-base base16.tar --from " + (dir_ / "root").string() + " --pgdata " +
                 (dir_ / "t16").string() + " --trigger-file /tmp/trig");
  EXPECT_EQ(trig.rc, 2) << trig.out;  // no promote_trigger_file in 16
  CliOut nobackup = RunWalferry("restore-base nope.tar --from " + (dir_ / "root").string() + " --pgdata " +
                     (dir_ / "x").string());
  EXPECT_NE(nobackup.rc, 0);
  EXPECT_NE(nobackup.out.find("no base backup"), std::string::npos);
}

}  // namespace
