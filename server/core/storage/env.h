// File: env.h
// The file system as the core sees it (LevelDB's Env): everything that
// persists goes through an Env, so tests can inject faults (a failed
// write, a full disk) without touching real disks' behaviour.
//
// Example:
//   std::unique_ptr<Env> env = NewPosixEnv();
//   VARSCOPE_RETURN_IF_ERROR(env->WriteFile("/d/x.tmp", {"hello"}));
//   VARSCOPE_RETURN_IF_ERROR(env->Rename("/d/x.tmp", "/d/x"));
//   VARSCOPE_RETURN_IF_ERROR(env->SyncDir("/d"));
//
// Thread-safety: implementations are thread-safe.
#ifndef VARSCOPE_SERVER_CORE_STORAGE_ENV_H_
#define VARSCOPE_SERVER_CORE_STORAGE_ENV_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace varscope::core {

// A file opened for appending (a log). Not thread-safe: one writer.
class AppendableFile {
 public:
  virtual ~AppendableFile() = default;
  virtual absl::Status Append(absl::string_view data) = 0;
  // Makes everything appended so far durable (fdatasync).
  virtual absl::Status Sync() = 0;
};

class Env {
 public:
  // Opens (creating if needed) `path` for appending at its end.
  virtual absl::StatusOr<std::unique_ptr<AppendableFile>> OpenAppendable(
      const std::string& path) = 0;
  virtual ~Env() = default;
  // Creates `path` and missing parents; OK if it exists.
  virtual absl::Status CreateDirs(const std::string& path) = 0;
  // Entry names (no "." or ".."), sorted.
  virtual absl::StatusOr<std::vector<std::string>> ListDir(
      const std::string& path) = 0;
  virtual bool Exists(const std::string& path) = 0;
  // Creates or truncates `path`, writes the pieces in order and fsyncs.
  virtual absl::Status WriteFile(const std::string& path,
                                 const std::vector<absl::string_view>& pieces) = 0;
  virtual absl::StatusOr<int64_t> FileSize(const std::string& path) = 0;
  // Reads `n` bytes at `offset` into `out`; fails on a short file.
  virtual absl::Status ReadAt(const std::string& path, int64_t offset,
                              int64_t n, void* out) = 0;
  virtual absl::Status Rename(const std::string& from,
                              const std::string& to) = 0;
  // fsyncs a directory, making renames and creations in it durable.
  virtual absl::Status SyncDir(const std::string& path) = 0;
  virtual absl::Status DeleteRecursively(const std::string& path) = 0;
};

// The real file system.
std::unique_ptr<Env> NewPosixEnv();

// Reads a whole (small) file.
absl::StatusOr<std::string> ReadWholeFile(Env* env, const std::string& path);

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_STORAGE_ENV_H_
