// libFuzzer target for the agent's socket protocol parsers (agent/protocol.h):
// the request line a client sends (ParsePushRequest) and the answer line the
// agent sends (ParseAnswer). Besides "no crash" it checks the properties the
// agent relies on: an accepted PUSH has a plain name (no '/', not "."/"..")
// and an absolute path; an accepted ERR has an ErrorCode in range; FormatError
// always yields one line that ParseAnswer accepts back.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "agent/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace walferry;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto r = agent::internal::ParsePushRequest(in); r.ok()) {
    if (r->name.empty() || r->name.find('/') != std::string::npos || r->name == "." || r->name == "..") std::abort();
    if (r->path.empty() || r->path[0] != '/') std::abort();
  }
  if (auto a = agent::internal::ParseAnswer(in); a.ok()) {
    if (!a->ok && (a->code == ErrorCode::kOk || static_cast<int>(a->code) > static_cast<int>(ErrorCode::kInternal))) {
      std::abort();
    }
  }
  std::string line = agent::internal::FormatError(Error(ErrorCode::kIo, std::string(in)));
  if (line.empty() || line.back() != '\n' || line.find('\n') != line.size() - 1) std::abort();
  line.pop_back();
  auto back = agent::internal::ParseAnswer(line);
  if (!back.ok() || back->ok || back->code != ErrorCode::kIo) std::abort();
  return 0;
}
