// An Env that fails chosen operations, for crash-safety tests (a full disk,
// a failed rename), wrapping the real file system.
#ifndef VARSCOPE_TESTS_FAULT_ENV_H_
#define VARSCOPE_TESTS_FAULT_ENV_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "server/core/storage/env.h"

namespace varscope::testing {

class FaultEnv final : public core::Env {
 private:
  // Appends go through; Sync fails while *status is an error.
  class FaultyFile final : public core::AppendableFile {
   public:
    FaultyFile(std::unique_ptr<core::AppendableFile> base,
               std::shared_ptr<absl::Status> status)
        : base_(std::move(base)), status_(std::move(status)) {}
    absl::Status Append(absl::string_view d) override { return base_->Append(d); }
    absl::Status Sync() override {
      if (!status_->ok()) return *status_;
      return base_->Sync();
    }

   private:
    std::unique_ptr<core::AppendableFile> base_;
    std::shared_ptr<absl::Status> status_;
  };

 public:
  FaultEnv() : base_(core::NewPosixEnv()) {}

  // The next WriteFile of a path containing `substring` writes only its
  // first half, then fails with `status` (a torn write on a full disk).
  void FailWrites(std::string substring, absl::Status status) {
    fail_write_ = std::move(substring);
    write_status_ = std::move(status);
  }
  void FailRenames(absl::Status status) { rename_status_ = std::move(status); }
  // Runs `hook` before every WriteFile of a path containing `substring`
  // (e.g. to act while a checkpoint is being written).
  void OnWrite(std::string substring, std::function<void()> hook) {
    hook_path_ = std::move(substring);
    hook_ = std::move(hook);
  }
  // Every later Sync of an appendable file (the log) fails with `status`.
  void FailSyncs(absl::Status status) { *sync_status_ = std::move(status); }
  void Heal() {
    fail_write_.clear();
    rename_status_ = absl::OkStatus();
    *sync_status_ = absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<core::AppendableFile>> OpenAppendable(
      const std::string& p) override {
    auto file = base_->OpenAppendable(p);
    if (!file.ok()) return file.status();
    return std::unique_ptr<core::AppendableFile>(
        new FaultyFile(*std::move(file), sync_status_));
  }
  absl::Status CreateDirs(const std::string& p) override { return base_->CreateDirs(p); }
  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& p) override {
    return base_->ListDir(p);
  }
  bool Exists(const std::string& p) override { return base_->Exists(p); }
  absl::Status WriteFile(const std::string& path,
                         const std::vector<absl::string_view>& pieces) override {
    if (hook_ && absl::StrContains(path, hook_path_)) hook_();
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
  std::string hook_path_;
  std::function<void()> hook_;
  std::string fail_write_;
  absl::Status write_status_;
  absl::Status rename_status_;
  std::shared_ptr<absl::Status> sync_status_ = std::make_shared<absl::Status>();
};

}  // namespace varscope::testing

#endif  // VARSCOPE_TESTS_FAULT_ENV_H_
