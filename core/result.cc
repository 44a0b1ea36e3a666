#include "core/result.h"

#include <cerrno>
#include <cstring>

namespace walferry {

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk: return "ok";
    case ErrorCode::kInvalidArgument: return "invalid-argument";
    case ErrorCode::kNotFound: return "not-found";
    case ErrorCode::kExists: return "exists";
    case ErrorCode::kExistsDifferent: return "exists-different";
    case ErrorCode::kCorrupt: return "corrupt";
    case ErrorCode::kIo: return "io";
    case ErrorCode::kNoSpace: return "no-space";
    case ErrorCode::kNetwork: return "network";
    case ErrorCode::kAuth: return "auth";
    case ErrorCode::kProtocol: return "protocol";
    case ErrorCode::kUnsupported: return "unsupported";
    case ErrorCode::kRefused: return "refused";
    case ErrorCode::kInternal: return "internal";
  }
  return "unknown";
}

Error ErrnoError(int err, std::string_view context) {
  ErrorCode code = ErrorCode::kIo;
  switch (err) {
    case ENOSPC:
    case EDQUOT: code = ErrorCode::kNoSpace; break;
    case ENOENT: code = ErrorCode::kNotFound; break;
    case EEXIST: code = ErrorCode::kExists; break;
    case ECONNREFUSED:
    case ECONNRESET:
    case ECONNABORTED:
    case EPIPE:
    case ETIMEDOUT:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case ENETDOWN: code = ErrorCode::kNetwork; break;
    case EINVAL: code = ErrorCode::kInvalidArgument; break;
    default: break;
  }
  std::string msg(context);
  msg += ": ";
  msg += std::strerror(err);
  return Error(code, std::move(msg));
}

}  // namespace walferry
