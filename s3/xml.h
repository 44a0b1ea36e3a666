// The few pieces of S3's XML answers walferry reads (ListObjectsV2, ListParts,
// ListMultipartUploads, InitiateMultipartUpload, Error). Not a general XML
// parser: it finds <Tag>text</Tag> elements, bounded, never recursing, and
// decodes the five predefined entities and numeric character references.
// Malformed input gives empty results, never a crash (fuzz/s3_xml_fuzz.cc).
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace walferry::s3 {

// The raw inner text of each <tag>...</tag> element in `xml`, in order
// (a self-closing <tag/> gives ""). Nested elements of the same name are not
// supported (S3 has none).
std::vector<std::string_view> XmlElements(std::string_view xml, std::string_view tag);
// The decoded text of the first <tag> element; "" when absent.
std::string XmlText(std::string_view xml, std::string_view tag);
// Decodes &amp; &lt; &gt; &quot; &apos; &#N; &#xN; (a bad reference stays as is).
std::string XmlDecode(std::string_view s);
// Escapes & < > " ' for text we send (CompleteMultipartUpload).
std::string XmlEscape(std::string_view s);

}  // namespace walferry::s3
