// The FETCH frame that `walferry get --from HOST:PORT` sends (transport/wire.h):
// round trip, bounds, and refusal of malformed bodies.
#include <gtest/gtest.h>

#include "transport/wire.h"

namespace walferry::transport {
namespace {

TEST(FetchFrame, RoundTrip) {
  FetchFrame f{0, "000000010000000000000003"};
  std::vector<std::byte> out;
  ASSERT_TRUE(EncodeFrame(f, out).ok());
  std::size_t need = 0;
  auto r = ParseFrame(out, &need);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->consumed, out.size());
  ASSERT_EQ(TypeOf(r->frame), FrameType::kFetch);
  EXPECT_EQ(std::get<FetchFrame>(r->frame), f);
  EXPECT_EQ(FrameTypeName(FrameType::kFetch), "FETCH");
}

TEST(FetchFrame, BadNamesAndLengthsRefused) {
  std::vector<std::byte> out;
  EXPECT_FALSE(EncodeFrame(FetchFrame{0, ""}, out).ok());
  EXPECT_FALSE(EncodeFrame(FetchFrame{0, std::string(256, 'a')}, out).ok());
  out.clear();
  ASSERT_TRUE(EncodeFrame(FetchFrame{0, "base.tar"}, out).ok());
  // name_len disagreeing with the body length
  auto bad = out;
  bad[kHeaderSize + 8] = std::byte{9};
  std::size_t need = 0;
  auto r = ParseFrame(bad, &need);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kProtocol);
  // a body too short to hold a name is refused by the header check
  std::array<std::byte, kHeaderSize> h{std::byte{'W'}, std::byte{'F'}, std::byte{9}, std::byte{0},
                                       std::byte{10}, std::byte{0}, std::byte{0}, std::byte{0}};
  EXPECT_FALSE(ParseHeader(h).ok());
}

}  // namespace
}  // namespace walferry::transport
