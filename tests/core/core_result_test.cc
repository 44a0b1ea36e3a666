// Result/Status/Error and the errno mapping: the one place errno becomes an Error.
#include <cerrno>
#include <cstring>
#include <memory>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "core/result.h"

namespace walferry {
namespace {

TEST(ErrnoError, MapsErrnoToCodes) {
  struct Case {
    int err;
    ErrorCode code;
  } cases[] = {
      {ENOSPC, ErrorCode::kNoSpace},      {EDQUOT, ErrorCode::kNoSpace},
      {ENOENT, ErrorCode::kNotFound},     {EEXIST, ErrorCode::kExists},
      {ECONNREFUSED, ErrorCode::kNetwork}, {ECONNRESET, ErrorCode::kNetwork},
      {ECONNABORTED, ErrorCode::kNetwork}, {EPIPE, ErrorCode::kNetwork},
      {ETIMEDOUT, ErrorCode::kNetwork},    {EHOSTUNREACH, ErrorCode::kNetwork},
      {ENETUNREACH, ErrorCode::kNetwork},  {ENETDOWN, ErrorCode::kNetwork},
      {EINVAL, ErrorCode::kInvalidArgument}, {EIO, ErrorCode::kIo},
      {EACCES, ErrorCode::kIo},            {EBADF, ErrorCode::kIo},
  };
  for (const auto& c : cases) {
    Error e = ErrnoError(c.err, "open /x");
    EXPECT_EQ(e.code(), c.code) << std::strerror(c.err);
    EXPECT_EQ(e.message(), std::string("open /x: ") + std::strerror(c.err));
  }
}

TEST(ErrnoError, MessageIsOneLine) {
  Error e = ErrnoError(ENOSPC, "write /archive/.incoming/x");
  EXPECT_EQ(e.message().find('\n'), std::string::npos);
  EXPECT_EQ(e.message(), "write /archive/.incoming/x: No space left on device");
}

TEST(ErrorCodeName, EveryCodeHasADistinctStableName) {
  std::set<std::string> names;
  for (int c = 0; c <= static_cast<int>(ErrorCode::kInternal); ++c) {
    std::string n(ErrorCodeName(static_cast<ErrorCode>(c)));
    EXPECT_FALSE(n.empty());
    EXPECT_NE(n, "unknown") << c;
    EXPECT_EQ(n.find(' '), std::string::npos) << n;
    names.insert(n);
  }
  EXPECT_EQ(names.size(), static_cast<std::size_t>(ErrorCode::kInternal) + 1);
  EXPECT_EQ(ErrorCodeName(ErrorCode::kExistsDifferent), "exists-different");
  EXPECT_EQ(ErrorCodeName(ErrorCode::kNoSpace), "no-space");
  EXPECT_EQ(ErrorCodeName(static_cast<ErrorCode>(200)), "unknown");
}

TEST(Error, WrapPrependsContextAndKeepsCode) {
  Error e(ErrorCode::kCorrupt, "bad checksum");
  Error w = e.Wrap("decompress base.tar.zst");
  EXPECT_EQ(w.code(), ErrorCode::kCorrupt);
  EXPECT_EQ(w.message(), "decompress base.tar.zst: bad checksum");
  EXPECT_EQ(e.message(), "bad checksum");  // original untouched
}

TEST(Result, HoldsValueOrError) {
  Result<int> ok = 42;
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(static_cast<bool>(ok));
  EXPECT_EQ(*ok, 42);
  EXPECT_EQ(ok.value(), 42);

  Result<int> bad = Error(ErrorCode::kNotFound, "no such segment");
  ASSERT_FALSE(bad.ok());
  EXPECT_FALSE(static_cast<bool>(bad));
  EXPECT_EQ(bad.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(bad.error().message(), "no such segment");
}

TEST(Result, MovesOutMoveOnlyValues) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(7);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(**r, 7);
  std::unique_ptr<int> p = std::move(r).value();
  ASSERT_TRUE(p);
  EXPECT_EQ(*p, 7);
}

TEST(Result, ArrowReachesMembers) {
  Result<std::string> r = std::string("abc");
  EXPECT_EQ(r->size(), 3u);
}

TEST(Status, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_TRUE(Status::Ok().ok());
  Status bad = Error(ErrorCode::kIo, "fsync x: Input/output error");
  EXPECT_FALSE(bad.ok());
  EXPECT_FALSE(static_cast<bool>(bad));
  EXPECT_EQ(bad.error().code(), ErrorCode::kIo);
}

Status FailIf(bool fail) {
  if (fail) return Error(ErrorCode::kRefused, "refused");
  return Status::Ok();
}

Result<int> Half(int v) {
  if (v % 2) return Error(ErrorCode::kInvalidArgument, "odd");
  return v / 2;
}

Status Chain(bool fail, int* steps) {
  WF_TRY(FailIf(fail));
  ++*steps;
  return Status::Ok();
}

Result<int> Quarter(int v) {
  WF_ASSIGN(int h, Half(v));
  WF_ASSIGN(int q, Half(h));
  return q;
}

TEST(Macros, TryReturnsEarlyOnError) {
  int steps = 0;
  EXPECT_TRUE(Chain(false, &steps).ok());
  EXPECT_EQ(steps, 1);
  Status s = Chain(true, &steps);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), ErrorCode::kRefused);
  EXPECT_EQ(steps, 1);
}

TEST(Macros, AssignPropagatesErrorsAndValues) {
  auto q = Quarter(8);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(*q, 2);
  auto odd = Quarter(6);  // 6 -> 3 -> odd
  ASSERT_FALSE(odd.ok());
  EXPECT_EQ(odd.error().message(), "odd");
}

}  // namespace
}  // namespace walferry
