// libFuzzer target for the S3 answer reader (s3/xml.h): the bytes are an S3
// XML answer; every tag walferry reads is extracted and decoded. Besides "no
// crash", checks that each element found lies inside the input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "s3/xml.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view xml(reinterpret_cast<const char*>(data), size);
  for (std::string_view tag : {"Contents", "Key", "Size", "Part", "Upload", "UploadId", "ETag", "Code",
                               "IsTruncated", "NextContinuationToken", "CommonPrefixes", "Prefix"}) {
    for (std::string_view e : walferry::s3::XmlElements(xml, tag)) {
      if (!e.empty() && (e.data() < xml.data() || e.data() + e.size() > xml.data() + xml.size())) std::abort();
      (void)walferry::s3::XmlDecode(e);
      (void)walferry::s3::XmlText(e, "Key");
    }
  }
  (void)walferry::s3::XmlEscape(xml);
  return 0;
}
