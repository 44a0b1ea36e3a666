// A real Ceph radosgw for S3 unit tests: brought up once per test process by
// tests/tools/ceph_rgw.sh in a scratch folder (or taken from $WF_S3_ENV, a file
// of KEY=VALUE lines that script writes), stopped by pid at exit.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>

namespace walferry::testing {

class RgwEnv {
 public:
  // nullptr (and a reason) when Ceph cannot be brought up here.
  static RgwEnv* Get(std::string* why) {
    static RgwEnv* env = Make(why);
    if (!env && why->empty()) *why = "radosgw not available";
    return env;
  }
  std::string Value(const std::string& k) const {
    auto it = kv_.find(k);
    return it == kv_.end() ? "" : it->second;
  }
  ~RgwEnv() {
    if (!dir_.empty()) {
      std::string cmd = "bash " WALFERRY_SOURCE_DIR "/tests/tools/ceph_rgw.sh stop " + dir_ + " && rm -rf " + dir_;
      (void)std::system(cmd.c_str());
    }
  }

 private:
  static RgwEnv*& Owned() {
    static RgwEnv* owned = nullptr;
    return owned;
  }
  static RgwEnv* Make(std::string* why) {
    auto* e = new RgwEnv;
    const char* given = std::getenv("WF_S3_ENV");
    std::string file;
    if (given && *given) {
      file = given;
    } else {
      if (std::system("bash " WALFERRY_SOURCE_DIR "/tests/tools/ceph_rgw.sh available") != 0) {
        *why = "Ceph packages (ceph-mon ceph-osd radosgw) not installed: run scripts/install-deps.sh";
        delete e;
        return nullptr;
      }
      char tmpl[] = "/tmp/wf-rgw.XXXXXX";
      if (!::mkdtemp(tmpl)) {
        *why = "mkdtemp failed";
        delete e;
        return nullptr;
      }
      e->dir_ = tmpl;
      std::string cmd = "bash " WALFERRY_SOURCE_DIR "/tests/tools/ceph_rgw.sh start " + e->dir_ + " >&2";
      if (std::system(cmd.c_str()) != 0) {
        ADD_FAILURE() << "ceph_rgw.sh start failed (logs in " << e->dir_ << ")";
        e->dir_.clear();
        delete e;
        return nullptr;
      }
      file = e->dir_ + "/env";
      Owned() = e;
      std::atexit([] { delete Owned(); });
    }
    std::ifstream in(file);
    std::string line;
    while (std::getline(in, line)) {
      auto eq = line.find('=');
      if (eq != std::string::npos) e->kv_[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return e;
  }
  std::string dir_;
  std::map<std::string, std::string> kv_;
};

}  // namespace walferry::testing
