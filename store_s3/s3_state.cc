// The S3 archive's resume state file: "key=value" lines after a magic line,
// closed by the XXH3-64 of everything before it.
#include "core/bytes.h"
#include "store_s3/s3_internal.h"

namespace walferry::store_s3 {
namespace {

constexpr char kStateMagic[] = "walferry-s3-incoming 1";

}  // namespace

std::string Serialize(const State& s) {
  std::string o = std::string(kStateMagic) + "\n";
  o += "transfer_id=" + s.transfer_id + "\ncluster=" + s.cluster + "\nname=" + s.name + "\nupload_id=" +
       s.upload_id + "\nbody_key=" + s.body_key + "\nchunks=" + std::to_string(s.chunks) +
       "\nraw_offset=" + std::to_string(s.raw_offset) + "\nspool_len=" + std::to_string(s.spool_len) +
       "\nwal_sysid=" + std::to_string(s.wal_sysid) + "\nhash_state=" + HexEncode(s.hash_state) + "\n";
  for (const auto& p : s.parts) o += "part=" + std::to_string(p.number) + " " + p.etag + " " + std::to_string(p.size) + "\n";
  o += "check=" + std::to_string(Xxh3_64(Bytes(o))) + "\n";
  return o;
}

bool Deserialize(const std::string& text, State* s) {
  auto pos = text.rfind("check=");
  if (pos == std::string::npos) return false;
  std::uint64_t sum = 0;
  std::string tail = text.substr(pos + 6);
  while (!tail.empty() && tail.back() == '\n') tail.pop_back();
  if (!ParseNum(tail, &sum) || sum != Xxh3_64(Bytes(text.substr(0, pos)))) return false;
  std::size_t start = 0;
  bool first = true;
  while (start < pos) {
    std::size_t nl = text.find('\n', start);
    std::string line = text.substr(start, nl - start);
    start = nl + 1;
    if (first) {
      if (line != kStateMagic) return false;
      first = false;
      continue;
    }
    auto eq = line.find('=');
    if (eq == std::string::npos) return false;
    std::string k = line.substr(0, eq), v = line.substr(eq + 1);
    bool ok = true;
    if (k == "transfer_id") s->transfer_id = v;
    else if (k == "cluster") s->cluster = v;
    else if (k == "name") s->name = v;
    else if (k == "upload_id") s->upload_id = v;
    else if (k == "body_key") s->body_key = v;
    else if (k == "chunks") ok = ParseNum(v, &s->chunks);
    else if (k == "raw_offset") ok = ParseNum(v, &s->raw_offset);
    else if (k == "spool_len") ok = ParseNum(v, &s->spool_len);
    else if (k == "wal_sysid") ok = ParseNum(v, &s->wal_sysid);
    else if (k == "hash_state") ok = HexDecode(v, &s->hash_state);
    else if (k == "part") {
      s3::Part p;
      auto a = v.find(' '), b = v.rfind(' ');
      ok = a != std::string::npos && b > a && ParseNum(v.substr(0, a), &p.number) && ParseNum(v.substr(b + 1), &p.size);
      if (ok) p.etag = v.substr(a + 1, b - a - 1);
      s->parts.push_back(p);
    }
    if (!ok) return false;
  }
  return true;
}

}  // namespace walferry::store_s3
