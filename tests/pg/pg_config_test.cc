// Generated PostgreSQL configuration, for every supported major 10..17,
// compared with what that version's documentation requires:
//  - 10/11 "Recovery Configuration" chapter: recovery.conf with standby_mode,
//    primary_conninfo, restore_command, archive_cleanup_command,
//    recovery_target_timeline, trigger_file.
//  - 12+ (release notes 12, E.x "recovery.conf is no longer used"):
//    standby.signal, parameters in postgresql.conf/auto.conf; a server refuses
//    to start with standby_mode set.
//  - 12..15 promote_trigger_file; removed in 16 (commit cd4329d9393f).
//  - wal_keep_segments until 12, wal_keep_size (MB) from 13.
#include "pg/config.h"

#include <gtest/gtest.h>

#include "pg/version.h"

namespace walferry::pg {
namespace {

StandbyOptions Standby(int major) {
  StandbyOptions o;
  o.major = major;
  o.primary_conninfo = "host=192.168.0.5 port=5432 user=replicator application_name=standby1";
  o.restore_command = "walferry get %f %p";
  o.archive_cleanup_command = "walferry cleanup %r";
  return o;
}

std::map<std::string, std::string> AutoConfMap(const StandbyConfig& c) {
  std::string text;
  for (const auto& s : c.auto_conf) text += *RenderSetting(s) + "\n";
  return ParseConf(text);
}

TEST(PgVersion, Parses) {
  EXPECT_EQ(*ParseMajorVersion("15\n"), 15);
  EXPECT_EQ(*ParseMajorVersion("9.6\n"), 9);
  EXPECT_FALSE(ParseMajorVersion("x15").ok());
  EXPECT_FALSE(ParseMajorVersion("15x").ok());
  EXPECT_EQ(*MajorFromVersionNum("150004"), 15);
  EXPECT_EQ(*MajorFromVersionNum("100023"), 10);
  EXPECT_EQ(*MajorFromVersionNum("90624"), 9);
  EXPECT_EQ(*MajorFromVersionOutput("PostgreSQL 15.20 (Debian 15.20-0+deb12u1)\n"), 15);
  EXPECT_EQ(*MajorFromVersionOutput("psql (PostgreSQL) 16.1\n"), 16);
  EXPECT_EQ(*MajorFromVersionOutput("PostgreSQL 10.23"), 10);
  EXPECT_FALSE(MajorFromVersionOutput("mysql 8").ok());
  EXPECT_TRUE(CheckSupported(10).ok());
  EXPECT_TRUE(CheckSupported(17).ok());
  EXPECT_EQ(CheckSupported(9).error().code(), ErrorCode::kUnsupported);
  EXPECT_EQ(CheckSupported(18).error().code(), ErrorCode::kUnsupported);
}

TEST(PgConfig, QuotesLikeAlterSystem) {
  EXPECT_EQ(*QuoteConfValue("walferry get %f %p"), "'walferry get %f %p'");
  EXPECT_EQ(*QuoteConfValue("it's"), "'it''s'");
  EXPECT_EQ(*QuoteConfValue(R"(C:\x)"), R"('C:\\x')");
  EXPECT_EQ(*QuoteConfValue(""), "''");
  EXPECT_FALSE(QuoteConfValue("a\nb").ok());
  EXPECT_FALSE(QuoteConfValue(std::string("a\0b", 3)).ok());
  // Round trip through the parser: what we write is what PostgreSQL reads.
  for (std::string v : {"it's", R"(a\b)", "x = 'y' # z", "''", "\\'"}) {
    auto m = ParseConf("p = " + *QuoteConfValue(v) + "  # comment\n");
    EXPECT_EQ(m["p"], v);
  }
}

TEST(PgConfig, ShellAndConninfoQuoting) {
  EXPECT_EQ(ShellQuote("/usr/bin/walferry"), "/usr/bin/walferry");
  EXPECT_EQ(ShellQuote("/srv/my archive"), "'/srv/my archive'");
  EXPECT_EQ(ShellQuote("it's"), "'it'\\''s'");
  EXPECT_EQ(ShellQuote(""), "''");
  EXPECT_EQ(ConninfoQuote("127.0.0.1"), "127.0.0.1");
  EXPECT_EQ(ConninfoQuote("pa ss'w\\d"), R"('pa ss\'w\\d')");
}

class PerVersion : public ::testing::TestWithParam<int> {};

TEST_P(PerVersion, StandbyConfiguration) {
  int major = GetParam();
  auto c = MakeStandbyConfig(Standby(major));
  ASSERT_TRUE(c.ok()) << c.error().message();
  if (major <= 11) {
    EXPECT_FALSE(c->standby_signal);
    auto rec = ParseConf(c->recovery_conf);
    EXPECT_EQ(rec["standby_mode"], "on");
    EXPECT_EQ(rec["primary_conninfo"], Standby(major).primary_conninfo);
    EXPECT_EQ(rec["restore_command"], "walferry get %f %p");
    EXPECT_EQ(rec["archive_cleanup_command"], "walferry cleanup %r");
    EXPECT_EQ(rec["recovery_target_timeline"], "latest");
    EXPECT_EQ(rec.count("promote_trigger_file"), 0u);
    // Recovery parameters must not be in postgresql.auto.conf on 10/11.
    auto ac = AutoConfMap(*c);
    EXPECT_EQ(ac.count("restore_command"), 0u);
    EXPECT_EQ(ac.count("primary_conninfo"), 0u);
    EXPECT_NE(c->recovery_conf.find("standby_mode = 'on'\n"), std::string::npos);
  } else {
    EXPECT_TRUE(c->standby_signal);
    EXPECT_TRUE(c->recovery_conf.empty());
    auto ac = AutoConfMap(*c);
    EXPECT_EQ(ac.count("standby_mode"), 0u) << "12+ refuses to start with standby_mode";
    EXPECT_EQ(ac["primary_conninfo"], Standby(major).primary_conninfo);
    EXPECT_EQ(ac["restore_command"], "walferry get %f %p");
    EXPECT_EQ(ac["archive_cleanup_command"], "walferry cleanup %r");
    EXPECT_EQ(ac.count("trigger_file"), 0u);
    EXPECT_EQ(ac.count("promote_trigger_file"), 0u);  // not asked for
  }
  auto ac = AutoConfMap(*c);
  EXPECT_EQ(ac["hot_standby"], "on");
  EXPECT_EQ(ac["archive_mode"], "off");  // as the guide comments archiving out on the standby
  // A copy of the primary's auto.conf loses stale recovery settings.
  auto& rm = c->auto_conf_remove;
  EXPECT_NE(std::find(rm.begin(), rm.end(), "restore_command"), rm.end());
  EXPECT_NE(std::find(rm.begin(), rm.end(), "standby_mode"), rm.end());
  EXPECT_NE(std::find(rm.begin(), rm.end(), "archive_command"), rm.end());
}

TEST_P(PerVersion, TriggerFile) {
  int major = GetParam();
  StandbyOptions o = Standby(major);
  o.trigger_file = "/tmp/pg_failover_trigger";
  auto c = MakeStandbyConfig(o);
  if (major >= 16) {
    ASSERT_FALSE(c.ok());
    EXPECT_EQ(c.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(c.error().message().find("promote"), std::string::npos);
    return;
  }
  ASSERT_TRUE(c.ok()) << c.error().message();
  if (major <= 11) {
    EXPECT_EQ(ParseConf(c->recovery_conf)["trigger_file"], "/tmp/pg_failover_trigger");
  } else {
    EXPECT_EQ(AutoConfMap(*c)["promote_trigger_file"], "/tmp/pg_failover_trigger");
  }
}

TEST_P(PerVersion, ArchiveOnlyStandbyHasNoConninfo) {
  StandbyOptions o = Standby(GetParam());
  o.primary_conninfo.clear();
  auto c = MakeStandbyConfig(o);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(ParseConf(c->recovery_conf).count("primary_conninfo"), 0u);
  EXPECT_EQ(AutoConfMap(*c).count("primary_conninfo"), 0u);
}

TEST_P(PerVersion, PrimaryConfiguration) {
  int major = GetParam();
  PrimaryOptions o;
  o.major = major;
  o.standby_address = "192.168.0.10";
  auto c = MakePrimaryConfig(o);
  ASSERT_TRUE(c.ok()) << c.error().message();
  std::map<std::string, Setting> m;
  for (const auto& s : c->settings) m[s.name] = s;
  EXPECT_EQ(m["wal_level"].value, "replica");
  EXPECT_TRUE(m["wal_level"].needs_restart);
  EXPECT_EQ(m["max_wal_senders"].value, "10");
  EXPECT_TRUE(m["max_wal_senders"].needs_restart);
  EXPECT_EQ(m["archive_mode"].value, "on");
  EXPECT_TRUE(m["archive_mode"].needs_restart);
  EXPECT_EQ(m["archive_command"].value, "walferry push %p");
  EXPECT_FALSE(m["archive_command"].needs_restart);
  EXPECT_EQ(m["archive_timeout"].value, "60");
  EXPECT_FALSE(m["archive_timeout"].needs_restart);
  if (major <= 12) {
    EXPECT_EQ(m.count("wal_keep_size"), 0u);
    EXPECT_EQ(m["wal_keep_segments"].value, "32");  // 512 MB of 16 MB segments
    EXPECT_FALSE(m["wal_keep_segments"].needs_restart);
  } else {
    EXPECT_EQ(m.count("wal_keep_segments"), 0u);
    EXPECT_EQ(m["wal_keep_size"].value, "512MB");
    EXPECT_FALSE(m["wal_keep_size"].needs_restart);
  }
  std::string method = major >= 14 ? "scram-sha-256" : "md5";
  EXPECT_TRUE(HbaHasLine(c->hba_line, "host replication all 192.168.0.10/32 " + method))
      << c->hba_line;
}

INSTANTIATE_TEST_SUITE_P(Majors, PerVersion, ::testing::Range(10, 18),
                         [](const auto& info) { return "pg" + std::to_string(info.param); });

TEST(PgConfig, UnsupportedVersionsRefused) {
  EXPECT_EQ(MakeStandbyConfig(Standby(9)).error().code(), ErrorCode::kUnsupported);
  PrimaryOptions o;
  o.major = 18;
  EXPECT_EQ(MakePrimaryConfig(o).error().code(), ErrorCode::kUnsupported);
  StandbyOptions s = Standby(15);
  s.restore_command.clear();
  EXPECT_EQ(MakeStandbyConfig(s).error().code(), ErrorCode::kInvalidArgument);
}

TEST(PgConfig, HbaAddresses) {
  EXPECT_EQ(*HbaAddress("10.0.0.7"), "10.0.0.7/32");
  EXPECT_EQ(*HbaAddress("::1"), "::1/128");
  EXPECT_EQ(*HbaAddress("10.0.0.0/24"), "10.0.0.0/24");
  EXPECT_EQ(*HbaAddress("standby.example"), "standby.example");
  EXPECT_FALSE(HbaAddress("").ok());
  EXPECT_FALSE(HbaAddress("1.2.3.4 trust").ok());
  PrimaryOptions o;
  o.major = 15;
  o.standby_address = "127.0.0.1";
  o.auth_method = "trust";
  o.replication_user = "postgres";
  EXPECT_TRUE(HbaHasLine(MakePrimaryConfig(o)->hba_line, "host replication postgres 127.0.0.1/32 trust"));
  o.auth_method = "trust # sneaky";
  EXPECT_FALSE(MakePrimaryConfig(o).ok());
}

TEST(PgConfig, EditConfReplacesAndKeepsTheRest) {
  std::string existing =
      "# Do not edit this file manually!\n"
      "# It will be overwritten by the ALTER SYSTEM command.\n"
      "work_mem = '64MB'\n"
      "archive_command = 'rsync -aq %p standby:/archive/%f'\n"
      "Wal_Level = 'minimal'\n"
      "restore_command = 'cp /old/%f %p'\n";
  auto out = EditConf(existing, {{"wal_level", "replica", true}, {"archive_command", "walferry push %p", false}},
                      {"restore_command"});
  ASSERT_TRUE(out.ok());
  auto m = ParseConf(*out);
  EXPECT_EQ(m["work_mem"], "64MB");
  EXPECT_EQ(m["wal_level"], "replica");
  EXPECT_EQ(m["archive_command"], "walferry push %p");
  EXPECT_EQ(m.count("restore_command"), 0u);
  EXPECT_EQ(out->find("rsync"), std::string::npos);
  EXPECT_EQ(out->find("minimal"), std::string::npos);
  // An empty file gets ALTER SYSTEM's header.
  auto fresh = EditConf("", {{"archive_mode", "on", true}});
  EXPECT_EQ(fresh->rfind("# Do not edit this file manually!", 0), 0u);
  EXPECT_NE(fresh->find("archive_mode = 'on'\n"), std::string::npos);
  EXPECT_FALSE(EditConf("", {{"archive_command", "a\nb", false}}).ok());
}

TEST(PgConfig, HbaHasLine) {
  std::string hba =
      "local all all trust\n"
      "#host replication all 10.0.0.1/32 trust\n"
      "host    replication     all     127.0.0.1/32    trust   # loopback\n";
  EXPECT_TRUE(HbaHasLine(hba, "host replication all 127.0.0.1/32 trust"));
  EXPECT_FALSE(HbaHasLine(hba, "host replication all 10.0.0.1/32 trust"));
}

TEST(PgConfig, RestartNeededOnlyForChangedPostmasterSettings) {
  PrimaryOptions o;
  o.major = 15;
  auto c = MakePrimaryConfig(o);
  // Fresh initdb: defaults wal_level=replica, max_wal_senders=10, archive_mode=off.
  auto r = RestartNeeded(15, {}, c->settings);
  EXPECT_EQ(r, std::vector<std::string>{"archive_mode"});
  r = RestartNeeded(15, {{"wal_level", "minimal"}, {"archive_mode", "on"}}, c->settings);
  EXPECT_EQ(r, std::vector<std::string>{"wal_level"});
}

}  // namespace
}  // namespace walferry::pg
