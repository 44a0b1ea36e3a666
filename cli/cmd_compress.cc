// `walferry compress` and `walferry decompress`: pigz-like front ends of the
// parallel codec pipeline in compress/codec.h.
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "compress/codec.h"
#include "core/stream.h"

namespace walferry::cli {
namespace {

using compress::Algorithm;

struct Args {
  std::vector<std::string> positional;  // FILE or "-", and level flags such as "-6"
  std::string output;
  bool to_stdout = false, keep = false, force = false;
  bool zstd = false, gzip = false;
  std::size_t threads = 0;
  int level = 0;
  std::string chunk;
};

bool IsLevelFlag(const std::string& s) {
  if (s.size() < 2 || s[0] != '-') return false;
  for (std::size_t i = 1; i < s.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}


// "1M", "512K", "4MiB", "65536" -> bytes.
Result<std::size_t> ParseSize(const std::string& text) {
  std::size_t pos = 0;
  unsigned long long v = 0;
  try {
    v = std::stoull(text, &pos);
  } catch (...) {
    return Error(ErrorCode::kInvalidArgument, "bad size '" + text + "' (examples: 1M, 512K, 65536)");
  }
  std::string unit = text.substr(pos);
  for (auto& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  unsigned long long mult = 1;
  if (unit.empty() || unit == "B") mult = 1;
  else if (unit == "K" || unit == "KB" || unit == "KIB") mult = 1ull << 10;
  else if (unit == "M" || unit == "MB" || unit == "MIB") mult = 1ull << 20;
  else if (unit == "G" || unit == "GB" || unit == "GIB") mult = 1ull << 30;
  else return Error(ErrorCode::kInvalidArgument, "bad size '" + text + "' (examples: 1M, 512K, 65536)");
  return static_cast<std::size_t>(v * mult);
}

// Input path ("-" for stdin) and the level given as -N, from the positionals.
struct Positional {
  std::string input = "-";
  int level = 0;
};

Result<Positional> SplitPositional(const Args& a) {
  Positional p;
  bool have_input = false;
  for (const auto& s : a.positional) {
    if (IsLevelFlag(s)) {
      p.level = std::stoi(s.substr(1, 4));
      continue;
    }
    if (have_input) return Error(ErrorCode::kInvalidArgument, "only one input file at a time");
    p.input = s;
    have_input = true;
  }
  if (a.level) p.level = a.level;
  return p;
}

struct Output {
  bool to_stdout = true;
  std::string path;          // when !to_stdout
  bool remove_input = false; // FILE -> FILE.zst without -k
};

Result<Output> ChooseOutput(const Args& a, const std::string& input, bool compressing,
                            std::string_view suffix) {
  Output o;
  if (a.to_stdout && !a.output.empty()) {
    return Error(ErrorCode::kInvalidArgument, "-c and -o cannot be used together");
  }
  if (!a.output.empty()) {
    if (a.output != "-") {
      o.to_stdout = false;
      o.path = a.output;
    }
    return o;
  }
  if (a.to_stdout || input == "-") return o;
  o.to_stdout = false;
  o.remove_input = !a.keep;
  if (compressing) {
    for (std::string_view s : {".zst", ".gz", ".tgz"}) {
      if (std::string_view(input).ends_with(s)) {
        return Error(ErrorCode::kInvalidArgument,
                     input + " already has a " + std::string(s) + " suffix (use -c or -o to compress it again)");
      }
    }
    o.path = input + std::string(suffix);
  } else {
    if (std::string_view(input).ends_with(".zst")) o.path = input.substr(0, input.size() - 4);
    else if (std::string_view(input).ends_with(".gz")) o.path = input.substr(0, input.size() - 3);
    else if (std::string_view(input).ends_with(".tgz")) o.path = input.substr(0, input.size() - 4) + ".tar";
    else {
      return Error(ErrorCode::kInvalidArgument,
                   input + ": unknown suffix, expected .zst, .gz or .tgz (use -c or -o)");
    }
  }
  return o;
}

// Opens the input; for a named file, checks it is a regular file and returns its mode.
Result<std::unique_ptr<ByteSource>> OpenInput(const std::string& input, mode_t* mode) {
  *mode = 0644;
  if (input != "-") {
    struct stat st{};
    if (::stat(input.c_str(), &st) != 0) return ErrnoError(errno, input);
    if (S_ISDIR(st.st_mode)) return Error(ErrorCode::kInvalidArgument, input + " is a directory");
    *mode = st.st_mode & 07777;
  }
  return OpenSource(input);
}

// Runs `body` writing to the chosen output: stdout, or an AtomicFile that only
// appears under its final name once complete and durable.
Status WithOutput(const Output& out, const Args& a, mode_t mode,
                  const std::function<Status(ByteSink&)>& body) {
  if (out.to_stdout) {
    auto sink = FdSink(STDOUT_FILENO, "stdout");
    return body(*sink);
  }
  struct stat st{};
  if (!a.force && ::lstat(out.path.c_str(), &st) == 0) {
    return Error(ErrorCode::kExists, out.path + " already exists (use -f to overwrite)");
  }
  WF_ASSIGN(auto file, AtomicFile::Create(out.path, a.force, mode));
  WF_TRY(body(*file));
  return file->Commit();
}

Status RemoveInput(const std::string& input) {
  if (::unlink(input.c_str()) != 0) return ErrnoError(errno, "remove " + input);
  return Status::Ok();
}

Status RunCompress(const Args& a) {
  WF_ASSIGN(Positional pos, SplitPositional(a));
  if (a.zstd && a.gzip) return Error(ErrorCode::kInvalidArgument, "--zstd and --gzip exclude each other");
  compress::PipelineOptions opt;
  opt.algorithm = a.gzip ? Algorithm::kGzip : Algorithm::kZstd;
  opt.level = pos.level ? pos.level : compress::DefaultLevel(opt.algorithm);
  WF_TRY(compress::MakeCodec(opt.algorithm, opt.level));  // level check before any I/O
  if (!a.chunk.empty()) {
    WF_ASSIGN(opt.chunk_size, ParseSize(a.chunk));
    if (opt.chunk_size < 1024 || opt.chunk_size > compress::kMaxChunkSize) {
      return Error(ErrorCode::kInvalidArgument, "--chunk must be between 1K and 256M");
    }
  }
  opt.threads = a.threads;
  WF_ASSIGN(Output out, ChooseOutput(a, pos.input, true, a.gzip ? ".gz" : ".zst"));
  if (out.to_stdout && !a.force && ::isatty(STDOUT_FILENO)) {
    return Error(ErrorCode::kInvalidArgument,
                 "refusing to write compressed data to a terminal (use -o FILE, a redirect, or -f)");
  }
  mode_t mode;
  WF_ASSIGN(auto src, OpenInput(pos.input, &mode));
  WF_TRY(WithOutput(out, a, mode, [&](ByteSink& sink) {
    return compress::CompressStream(*src, sink, opt);
  }));
  if (out.remove_input) return RemoveInput(pos.input);
  return Status::Ok();
}

Status RunDecompress(const Args& a) {
  WF_ASSIGN(Positional pos, SplitPositional(a));
  if (pos.level) return Error(ErrorCode::kInvalidArgument, "decompress takes no level");
  WF_ASSIGN(Output out, ChooseOutput(a, pos.input, false, ""));
  mode_t mode;
  WF_ASSIGN(auto src, OpenInput(pos.input, &mode));
  WF_TRY(WithOutput(out, a, mode, [&](ByteSink& sink) {
    return compress::DecompressStream(*src, sink, a.threads);
  }));
  if (out.remove_input) return RemoveInput(pos.input);
  return Status::Ok();
}

void AddCommon(CLI::App* cmd, Args& a) {
  cmd->add_option("file", a.positional, "input file, or - for stdin (default)");
  cmd->add_flag("-c,--stdout", a.to_stdout, "write to stdout, keep the input");
  cmd->add_option("-o,--output", a.output, "write to this file (- for stdout); keeps the input");
  cmd->add_flag("-k,--keep", a.keep, "keep the input file");
  cmd->add_flag("-f,--force", a.force, "overwrite an existing output file");
  cmd->add_option("-p,--processes", a.threads, "worker threads (default: all cores)")
      ->check(CLI::Range(1, 1024));
}

}  // namespace

void AddCompressCommands(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<Args>();
  CLI::App* c = app.add_subcommand(
      "compress",
      "compress FILE (to FILE.zst/.gz) or stdin (to stdout) in parallel; -1..-19 set the level");
  AddCommon(c, *args);
  c->add_flag("--zstd", args->zstd, "zstd frames (default), levels 1..19, default 3");
  c->add_flag("--gzip", args->gzip, "gzip members, levels 1..12, default 6");
  c->add_option("-l,--level", args->level, "compression level");
  c->add_option("--chunk", args->chunk, "raw chunk size, e.g. 1M (default), 4M, 512K");
  c->callback([args, &ctx] {
    Status st = RunCompress(*args);
    ctx.exit_code = st.ok() ? kExitOk : ReportError(st.error());
  });

  auto dargs = std::make_shared<Args>();
  CLI::App* d = app.add_subcommand(
      "decompress", "decompress any .zst or .gz (FILE.zst -> FILE, stdin -> stdout), in parallel");
  AddCommon(d, *dargs);
  d->callback([dargs, &ctx] {
    Status st = RunDecompress(*dargs);
    ctx.exit_code = st.ok() ? kExitOk : ReportError(st.error());
  });
}

}  // namespace walferry::cli
