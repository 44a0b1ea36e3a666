#include "pg/compare.h"

#include <algorithm>
#include <map>
#include <set>

#include "core/hash.h"
#include "core/stream.h"

namespace walferry::pg {
namespace {

class HashSink final : public ByteSink {
 public:
  Status Write(std::span<const std::byte> data) override {
    h_.Update(data);
    return Status::Ok();
  }
  Status Finish() override { return Status::Ok(); }
  Hash128 Digest() const { return h_.Digest(); }

 private:
  Xxh3Stream h_;
};

Result<Hash128> HashOf(const archive::Archive& a, const archive::StoredEntry& e) {
  HashSink sink;
  WF_TRY(a.Read(e, sink));
  return sink.Digest();
}

Result<std::map<std::string, archive::StoredEntry>> Entries(const archive::Archive& a, const std::string& cluster) {
  std::map<std::string, archive::StoredEntry> out;
  for (auto kind : {archive::EntryKind::kWal, archive::EntryKind::kFile}) {
    auto l = a.List(cluster, kind);
    if (!l.ok()) {
      if (l.error().code() == ErrorCode::kNotFound) return out;
      return l.error();
    }
    for (auto& e : *l) out.emplace(e.name, e);
  }
  return out;
}

}  // namespace

Result<std::vector<CompareReport>> CompareArchives(const archive::Archive& a, const archive::Archive& b,
                                                   const std::vector<std::string>& clusters) {
  std::set<std::string> names(clusters.begin(), clusters.end());
  if (names.empty()) {
    WF_ASSIGN(std::vector<std::string> ca, a.Clusters());
    WF_ASSIGN(std::vector<std::string> cb, b.Clusters());
    names.insert(ca.begin(), ca.end());
    names.insert(cb.begin(), cb.end());
  }
  std::vector<CompareReport> out;
  for (const auto& cluster : names) {
    CompareReport r;
    r.cluster = cluster;
    WF_ASSIGN(auto ea, Entries(a, cluster));
    WF_ASSIGN(auto eb, Entries(b, cluster));
    for (const auto& [name, entry] : ea) {
      auto it = eb.find(name);
      if (it == eb.end()) {
        r.only_a.push_back(name);
        continue;
      }
      auto ha = HashOf(a, entry);
      auto hb = HashOf(b, it->second);
      if (!ha.ok()) r.unreadable.push_back(name + ": first: " + ha.error().message());
      if (!hb.ok()) r.unreadable.push_back(name + ": second: " + hb.error().message());
      if (!ha.ok() || !hb.ok()) continue;
      if (*ha == *hb) {
        ++r.both;
      } else {
        r.different.push_back(name + " " + ha->Hex() + " " + hb->Hex());
      }
    }
    for (const auto& [name, entry] : eb) {
      if (!ea.count(name)) r.only_b.push_back(name);
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace walferry::pg
