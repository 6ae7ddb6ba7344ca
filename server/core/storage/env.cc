#include "server/core/storage/env.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"

namespace varscope::core {
namespace {

absl::Status IoError(absl::string_view what, const std::string& path,
                     int error) {
  const std::string message =
      absl::StrCat(what, " ", path, ": ", std::strerror(error));
  if (error == ENOENT) return absl::NotFoundError(message);
  if (error == ENOSPC || error == EDQUOT) {
    return absl::ResourceExhaustedError(message);
  }
  if (error == EACCES || error == EPERM) {
    return absl::PermissionDeniedError(message);
  }
  return absl::InternalError(message);
}

class PosixAppendableFile final : public AppendableFile {
 public:
  PosixAppendableFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixAppendableFile() override { close(fd_); }
  absl::Status Append(absl::string_view data) override {
    const char* p = data.data();
    size_t left = data.size();
    while (left > 0) {
      const ssize_t n = write(fd_, p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        return IoError("cannot append to", path_, errno);
      }
      p += n;
      left -= static_cast<size_t>(n);
    }
    return absl::OkStatus();
  }
  absl::Status Sync() override {
    if (fdatasync(fd_) != 0) return IoError("cannot fdatasync", path_, errno);
    return absl::OkStatus();
  }

 private:
  const int fd_;
  const std::string path_;
};

class PosixEnv final : public Env {
 public:
  absl::StatusOr<std::unique_ptr<AppendableFile>> OpenAppendable(
      const std::string& path) override {
    const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return IoError("cannot open for appending", path, errno);
    return std::unique_ptr<AppendableFile>(new PosixAppendableFile(fd, path));
  }

  absl::Status CreateDirs(const std::string& path) override {
    std::error_code ec;
    std::filesystem::create_directories(path, ec);
    if (ec) return IoError("cannot create directory", path, ec.value());
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<std::string>> ListDir(
      const std::string& path) override {
    DIR* dir = opendir(path.c_str());
    if (dir == nullptr) return IoError("cannot list", path, errno);
    std::vector<std::string> names;
    while (dirent* entry = readdir(dir)) {
      const std::string name = entry->d_name;
      if (name != "." && name != "..") names.push_back(name);
    }
    closedir(dir);
    std::sort(names.begin(), names.end());
    return names;
  }

  bool Exists(const std::string& path) override {
    struct stat st;
    return stat(path.c_str(), &st) == 0;
  }

  absl::Status WriteFile(const std::string& path,
                         const std::vector<absl::string_view>& pieces) override {
    const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return IoError("cannot create", path, errno);
    for (absl::string_view piece : pieces) {
      const char* p = piece.data();
      size_t left = piece.size();
      while (left > 0) {
        const ssize_t n = write(fd, p, std::min<size_t>(left, size_t{1} << 30));
        if (n < 0) {
          if (errno == EINTR) continue;
          const int error = errno;
          close(fd);
          return IoError("cannot write", path, error);
        }
        p += n;
        left -= static_cast<size_t>(n);
      }
    }
    if (fsync(fd) != 0) {
      const int error = errno;
      close(fd);
      return IoError("cannot fsync", path, error);
    }
    if (close(fd) != 0) return IoError("cannot close", path, errno);
    return absl::OkStatus();
  }

  absl::StatusOr<int64_t> FileSize(const std::string& path) override {
    struct stat st;
    if (stat(path.c_str(), &st) != 0) return IoError("cannot stat", path, errno);
    // Devices, FIFOs and directories are never checkpoints, logs or
    // imports; reading one could block the caller forever.
    if (!S_ISREG(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, " is not a regular file"));
    }
    return static_cast<int64_t>(st.st_size);
  }

  absl::Status ReadAt(const std::string& path, int64_t offset, int64_t n,
                      void* out) override {
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return IoError("cannot open", path, errno);
    char* p = static_cast<char*>(out);
    int64_t done = 0;
    while (done < n) {
      const ssize_t r = pread(fd, p + done,
                              std::min<int64_t>(n - done, int64_t{1} << 30),
                              offset + done);
      if (r < 0) {
        if (errno == EINTR) continue;
        const int error = errno;
        close(fd);
        return IoError("cannot read", path, error);
      }
      if (r == 0) {
        close(fd);
        return absl::DataLossError(absl::StrCat(
            path, " is truncated: wanted ", n, " bytes at offset ", offset,
            ", the file ends at offset ", offset + done));
      }
      done += r;
    }
    close(fd);
    return absl::OkStatus();
  }

  absl::Status Rename(const std::string& from, const std::string& to) override {
    if (rename(from.c_str(), to.c_str()) != 0) {
      return IoError(absl::StrCat("cannot rename to ", to, ":"), from, errno);
    }
    return absl::OkStatus();
  }

  absl::Status SyncDir(const std::string& path) override {
    const int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return IoError("cannot open directory", path, errno);
    const int rc = fsync(fd);
    const int error = errno;
    close(fd);
    if (rc != 0) return IoError("cannot fsync directory", path, error);
    return absl::OkStatus();
  }

  absl::Status DeleteRecursively(const std::string& path) override {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
    if (ec) return IoError("cannot delete", path, ec.value());
    return absl::OkStatus();
  }
};

}  // namespace

std::unique_ptr<Env> NewPosixEnv() { return std::make_unique<PosixEnv>(); }

absl::StatusOr<std::string> ReadWholeFile(Env* env, const std::string& path) {
  absl::StatusOr<int64_t> size = env->FileSize(path);
  if (!size.ok()) return size.status();
  std::string out(static_cast<size_t>(*size), '\0');
  absl::Status s = env->ReadAt(path, 0, *size, out.data());
  if (!s.ok()) return s;
  return out;
}

}  // namespace varscope::core
