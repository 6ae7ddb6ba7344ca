// An Env that fails chosen operations, for crash-safety tests (a full disk,
// a failed rename), wrapping the real file system.
#ifndef VARSCOPE_TESTS_FAULT_ENV_H_
#define VARSCOPE_TESTS_FAULT_ENV_H_

#include <atomic>
#include <string>

#include "absl/strings/match.h"
#include "server/core/env.h"

namespace varscope::testing {

class FaultEnv final : public core::Env {
 public:
  FaultEnv() : base_(core::NewPosixEnv()) {}

  // The next WriteFile of a path containing `substring` writes only its
  // first half, then fails with `status` (a torn write on a full disk).
  void FailWrites(std::string substring, absl::Status status) {
    fail_write_ = std::move(substring);
    write_status_ = std::move(status);
  }
  void FailRenames(absl::Status status) { rename_status_ = std::move(status); }
  void Heal() {
    fail_write_.clear();
    rename_status_ = absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<core::AppendableFile>> OpenAppendable(
      const std::string& p) override {
    return base_->OpenAppendable(p);
  }
  absl::Status CreateDirs(const std::string& p) override { return base_->CreateDirs(p); }
  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& p) override {
    return base_->ListDir(p);
  }
  bool Exists(const std::string& p) override { return base_->Exists(p); }
  absl::Status WriteFile(const std::string& path,
                         const std::vector<absl::string_view>& pieces) override {
    if (!fail_write_.empty() && absl::StrContains(path, fail_write_)) {
      std::string all;
      for (absl::string_view p : pieces) all.append(p.data(), p.size());
      all.resize(all.size() / 2);
      (void)base_->WriteFile(path, {all});
      return write_status_;
    }
    return base_->WriteFile(path, pieces);
  }
  absl::StatusOr<int64_t> FileSize(const std::string& p) override { return base_->FileSize(p); }
  absl::Status ReadAt(const std::string& p, int64_t o, int64_t n, void* out) override {
    return base_->ReadAt(p, o, n, out);
  }
  absl::Status Rename(const std::string& from, const std::string& to) override {
    if (!rename_status_.ok()) return rename_status_;
    return base_->Rename(from, to);
  }
  absl::Status SyncDir(const std::string& p) override { return base_->SyncDir(p); }
  absl::Status DeleteRecursively(const std::string& p) override {
    return base_->DeleteRecursively(p);
  }

 private:
  std::unique_ptr<core::Env> base_;
  std::string fail_write_;
  absl::Status write_status_;
  absl::Status rename_status_;
};

}  // namespace varscope::testing

#endif  // VARSCOPE_TESTS_FAULT_ENV_H_
