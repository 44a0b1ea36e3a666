// archive::Archive on an S3 bucket. See s3_archive.h for the layout, the
// exactly-once rule and the resume state.
#include "store_s3/s3_archive.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>

#include "core/names.h"
#include "store_s3/s3_internal.h"

namespace walferry::store_s3 {
namespace {

// The read side (find, list, read, remove, purge); writes go through
// BeginTransfer (s3_incoming.cc).
class S3Archive final : public archive::Archive {
 public:
  explicit S3Archive(std::shared_ptr<Shared> sh) : sh_(std::move(sh)), url_(sh_->Url()) {}
  StoreFormat format() const override { return sh_->opts.format; }
  Result<std::unique_ptr<archive::Incoming>> Begin(const archive::TransferSpec& spec) override {
    return BeginTransfer(sh_, spec);
  }
  const std::string& root() const override { return url_; }

  Result<StoredEntry> Find(std::string_view cluster, std::string_view name) const override {
    WF_TRY(ValidateClusterName(cluster));
    WF_ASSIGN(EntryKind kind, archive::ClassifyName(name));
    WF_ASSIGN(auto c, sh_->pool->Acquire());
    const std::string dir = sh_->Key(std::string(cluster) + "/" + std::string(KindDir(kind)) + "/");
    WF_ASSIGN(s3::ListPage page, c->List(dir + std::string(name), "", 10));
    for (const auto& o : page.objects) {
      auto [n, f] = SplitSuffix(std::string_view(o.key).substr(dir.size()));
      if (n == name) return StoredEntry{n, o.key, f, kind};
    }
    return Error(ErrorCode::kNotFound, std::string(name) + " not in " + url_ + "/" + std::string(cluster));
  }

  Result<std::vector<StoredEntry>> List(std::string_view cluster, EntryKind kind) const override {
    WF_TRY(ValidateClusterName(cluster));
    WF_ASSIGN(auto c, sh_->pool->Acquire());
    const std::string dir = sh_->Key(std::string(cluster) + "/" + std::string(KindDir(kind)) + "/");
    WF_ASSIGN(auto objs, c->ListAll(dir));
    std::vector<StoredEntry> out;
    for (const auto& o : objs) {
      std::string_view rest = std::string_view(o.key).substr(dir.size());
      if (rest.find('/') != std::string_view::npos) continue;
      auto [n, f] = SplitSuffix(rest);
      auto k = archive::ClassifyName(n);
      if (!k.ok() || *k != kind) continue;
      out.push_back(StoredEntry{n, o.key, f, kind});
    }
    std::sort(out.begin(), out.end(), [](const StoredEntry& a, const StoredEntry& b) { return a.name < b.name; });
    if (out.empty()) {
      WF_ASSIGN(auto cl, Clusters());
      if (std::find(cl.begin(), cl.end(), std::string(cluster)) == cl.end()) {
        return Error(ErrorCode::kNotFound, "no cluster " + std::string(cluster) + " in " + url_);
      }
    }
    return out;
  }

  Result<std::vector<std::string>> Clusters() const override {
    WF_ASSIGN(auto c, sh_->pool->Acquire());
    const std::string top = sh_->Key("");
    std::vector<std::string> out;
    std::string token;
    do {
      WF_ASSIGN(s3::ListPage p, c->List(top, token, 1000, "/"));
      for (const auto& cp : p.common_prefixes) {
        std::string n = cp.substr(top.size());
        if (!n.empty() && n.back() == '/') n.pop_back();
        if (ValidateClusterName(n).ok()) out.push_back(n);
      }
      token = p.next_token;
    } while (!token.empty());
    std::sort(out.begin(), out.end());
    return out;
  }

  Result<std::optional<std::uint64_t>> SystemIdentifier(std::string_view cluster) const override {
    WF_TRY(ValidateClusterName(cluster));
    WF_ASSIGN(auto c, sh_->pool->Acquire());
    auto body = c->GetRange(sh_->Key(std::string(cluster) + "/system_identifier"), 0, 64);
    if (!body.ok()) {
      if (body.error().code() == ErrorCode::kNotFound) return std::optional<std::uint64_t>();
      return body.error();
    }
    std::string s = *body;
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    std::uint64_t v = 0;
    if (!ParseNum(s, &v)) return Error(ErrorCode::kCorrupt, url_ + "/" + std::string(cluster) + "/system_identifier is not a number");
    return std::optional<std::uint64_t>(v);
  }

  Status Read(const StoredEntry& e, ByteSink& sink) const override {
    return ReadObject(*sh_, e.path, e.format, sink);
  }

  Status Remove(const StoredEntry& e) const override {
    WF_ASSIGN(auto c, sh_->pool->Acquire());
    auto info = c->Head(e.path);
    if (!info.ok()) return info.error().code() == ErrorCode::kNotFound ? Status::Ok() : Status(info.error());
    if (auto it = info->metadata.find(kMetaData); it != info->metadata.end()) WF_TRY(c->Delete(it->second));
    return c->Delete(e.path);
  }

  // Aborts multipart uploads under PREFIX started more than max_age ago that
  // no transfer of this process holds, and drops local state that old.
  Status PurgeStale(std::int64_t max_age_seconds) override {
    WF_ASSIGN(auto c, sh_->pool->Acquire());
    WF_ASSIGN(auto ups, c->ListUploads(sh_->Key("")));
    std::time_t now = std::time(nullptr);
    for (const auto& u : ups) {
      std::tm tm{};
      if (!strptime(u.initiated.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) continue;
      std::time_t started = timegm(&tm);
      if (now - started < max_age_seconds) continue;
      {
        std::lock_guard l(sh_->mu);
        if (sh_->active.count("upload:" + u.upload_id)) continue;
      }
      WF_TRY(c->AbortMultipart(u.key, u.upload_id));
    }
    return Status::Ok();
  }

 private:
  std::shared_ptr<Shared> sh_;
  std::string url_;
};

}  // namespace

Result<std::unique_ptr<archive::Archive>> OpenS3Archive(S3ArchiveOptions o) {
  if (o.part_size < (5u << 20)) return Error(ErrorCode::kInvalidArgument, "S3 part size must be at least 5 MiB");
  auto sh = std::make_shared<Shared>();
  if (!o.state_dir.empty()) {
    if (::mkdir(o.state_dir.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoError(errno, "mkdir " + o.state_dir);
    int fd = ::open(o.state_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ErrnoError(errno, "open " + o.state_dir);
    sh->state_fd = UniqueFd(fd);
  }
  sh->pool = std::make_unique<s3::ClientPool>(o.client);
  {
    WF_ASSIGN(auto c, sh->pool->Acquire());
    if (!o.state_dir.empty() && o.create_bucket) {
      WF_TRY(c->CreateBucket());
    } else {
      WF_ASSIGN(auto page, c->List(o.prefix, "", 1));
      (void)page;
    }
  }
  sh->opts = std::move(o);
  return std::unique_ptr<archive::Archive>(new S3Archive(std::move(sh)));
}

Result<S3ArchiveOptions> OptionsFromUrl(const std::string& url, const std::string& endpoint,
                                        const std::string& credentials_file) {
  WF_ASSIGN(s3::Location loc, s3::ParseUrl(url));
  S3ArchiveOptions o;
  o.prefix = loc.prefix;
  o.client.bucket = loc.bucket;
  o.client.endpoint = endpoint;
  if (o.client.endpoint.empty()) {
    const char* e = std::getenv("AWS_ENDPOINT_URL");
    o.client.endpoint = e ? e : "";
  }
  if (o.client.endpoint.empty()) {
    return Error(ErrorCode::kInvalidArgument, "no S3 endpoint: give --s3-endpoint URL or set AWS_ENDPOINT_URL");
  }
  WF_ASSIGN(o.client.credentials, s3::LoadCredentials(credentials_file));
  const char* insecure = std::getenv("WALFERRY_S3_INSECURE");
  if (insecure && std::string(insecure) == "1") o.client.verify_tls = false;
  return o;
}

}  // namespace walferry::store_s3
