#include "server/core/storage/journal.h"

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "server/core/storage/crc32.h"
#include "server/core/base/status_macros.h"

namespace varscope::core {
namespace {

constexpr char kPrefix[] = "wal-";
constexpr char kSuffix[] = ".log";
constexpr uint32_t kMaxRecordBytes = 0xF0000000u;  // < 4 GiB

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

}  // namespace

absl::StatusOr<std::vector<int64_t>> ListJournalSegments(Env* env,
                                                         const std::string& data_dir) {
  const std::string dir = data_dir + "/wal";
  std::vector<int64_t> out;
  if (!env->Exists(dir)) return out;
  VARSCOPE_ASSIGN_OR_RETURN(std::vector<std::string> names, env->ListDir(dir));
  for (const std::string& name : names) {
    int64_t n = 0;
    if (absl::StartsWith(name, kPrefix) && absl::EndsWith(name, kSuffix) &&
        absl::SimpleAtoi(name.substr(sizeof(kPrefix) - 1,
                                     name.size() - sizeof(kPrefix) + 1 - sizeof(kSuffix) + 1),
                         &n)) {
      out.push_back(n);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string Journal::SegmentPath(int64_t number) const {
  return absl::StrFormat("%s/%s%012d%s", dir_, kPrefix, number, kSuffix);
}

absl::StatusOr<std::unique_ptr<Journal>> Journal::Open(Env* env,
                                                       const std::string& data_dir) {
  std::unique_ptr<Journal> journal(new Journal(env, data_dir + "/wal"));
  VARSCOPE_RETURN_IF_ERROR(env->CreateDirs(journal->dir_));
  VARSCOPE_ASSIGN_OR_RETURN(std::vector<int64_t> segments,
                            ListJournalSegments(env, data_dir));
  const int64_t first = segments.empty() ? 1 : segments.back() + 1;
  VARSCOPE_ASSIGN_OR_RETURN(std::unique_ptr<AppendableFile> file,
                            journal->CreateSegment(first));
  absl::MutexLock lock(&journal->mu_);
  journal->file_ = std::move(file);
  journal->segment_ = first;
  return journal;
}

absl::StatusOr<std::unique_ptr<AppendableFile>> Journal::CreateSegment(
    int64_t number) {
  VARSCOPE_ASSIGN_OR_RETURN(std::unique_ptr<AppendableFile> file,
                            env_->OpenAppendable(SegmentPath(number)));
  VARSCOPE_RETURN_IF_ERROR(env_->SyncDir(dir_));  // the new file's name
  return file;
}

int64_t Journal::segment() const {
  absl::MutexLock lock(&mu_);
  return segment_;
}

absl::Status Journal::Append(absl::string_view header, absl::string_view data) {
  return Append(header, std::vector<absl::string_view>{data});
}

absl::Status Journal::Append(absl::string_view header,
                             const std::vector<absl::string_view>& data) {
  std::string prefix;
  PutU32(&prefix, static_cast<uint32_t>(header.size()));
  uint64_t payload = 4 + header.size();
  uint32_t crc = Crc32(header, Crc32(prefix));
  for (absl::string_view piece : data) {
    payload += piece.size();
    crc = Crc32(piece, crc);
  }
  if (payload > kMaxRecordBytes) {
    return absl::ResourceExhaustedError("a log record above 3.75 GiB");
  }
  std::string frame;  // length and CRC, then the body follows the pieces
  PutU32(&frame, static_cast<uint32_t>(payload));
  PutU32(&frame, crc);

  absl::MutexLock lock(&mu_);
  if (!error_.ok()) return error_;
  // Straight into the batch: one copy of the record's bytes.
  pending_ += frame;
  pending_ += prefix;
  pending_.append(header.data(), header.size());
  for (absl::string_view piece : data) pending_.append(piece.data(), piece.size());
  const uint64_t mine = ++appended_;
  while (synced_ < mine) {
    if (!error_.ok()) return error_;
    if (syncing_) {
      auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !syncing_ || synced_ >= mine;
      };
      mu_.Await(absl::Condition(&done));
      continue;
    }
    // Lead: write and sync everything pending, for every waiter at once.
    syncing_ = true;
    std::string batch = std::move(pending_);
    pending_.clear();
    const uint64_t upto = appended_;
    AppendableFile* file = file_.get();
    mu_.Unlock();
    const absl::Time start = absl::Now();
    absl::Status s = file->Append(batch);
    if (s.ok()) s = file->Sync();
    sync_seconds_.Observe(absl::ToDoubleSeconds(absl::Now() - start));
    mu_.Lock();
    syncing_ = false;
    if (!s.ok()) {
      error_ = absl::Status(s.code(), absl::StrCat("the write-ahead log failed; "
                                                   "writes are refused until a restart: ",
                                                   s.message()));
      return error_;
    }
    synced_ = upto;
  }
  return absl::OkStatus();
}

absl::Status Journal::PrepareRotation() {
  int64_t next;
  {
    absl::MutexLock lock(&mu_);
    if (next_file_ != nullptr) return absl::OkStatus();
    next = segment_ + 1;
  }
  VARSCOPE_ASSIGN_OR_RETURN(std::unique_ptr<AppendableFile> file,
                            CreateSegment(next));
  absl::MutexLock lock(&mu_);
  next_file_ = std::move(file);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> Journal::SwitchSegment() {
  absl::MutexLock lock(&mu_);
  if (!error_.ok()) return error_;
  if (next_file_ == nullptr) {
    return absl::FailedPreconditionError("no segment prepared to switch to");
  }
  if (syncing_ || !pending_.empty()) {
    return absl::InternalError("the log switched segments during an append");
  }
  file_ = std::move(next_file_);
  return ++segment_;
}

absl::Status Journal::DropBefore(int64_t segment) {
  VARSCOPE_ASSIGN_OR_RETURN(std::vector<int64_t> segments,
                            ListJournalSegments(env_, dir_.substr(0, dir_.size() - 4)));
  for (int64_t n : segments) {
    if (n < segment) VARSCOPE_RETURN_IF_ERROR(env_->DeleteRecursively(SegmentPath(n)));
  }
  return absl::OkStatus();
}

absl::StatusOr<ReplayReport> Journal::Replay(
    Env* env, const std::string& data_dir, int64_t from, bool recover,
    const std::function<absl::Status(const JournalRecord&)>& apply) {
  VARSCOPE_ASSIGN_OR_RETURN(std::vector<int64_t> segments,
                            ListJournalSegments(env, data_dir));
  Journal names(env, data_dir + "/wal");
  ReplayReport report;
  for (size_t i = 0; i < segments.size(); ++i) {
    if (segments[i] < from) continue;
    const bool newest = i + 1 == segments.size();
    const std::string path = names.SegmentPath(segments[i]);
    VARSCOPE_ASSIGN_OR_RETURN(std::string bytes, ReadWholeFile(env, path));
    ++report.segments;
    size_t off = 0;
    while (off < bytes.size()) {
      const size_t left = bytes.size() - off;
      std::string why;
      uint32_t length = 0;
      if (left < 8) {
        why = "a record header is cut short";
      } else {
        length = GetU32(bytes.data() + off);
        if (length < 4 || length > left - 8) {
          why = "a record runs past the end of the file";
        } else {
          const absl::string_view body(bytes.data() + off + 8, length);
          if (Crc32(body) != GetU32(bytes.data() + off + 4)) {
            why = "a record fails its CRC-32 check";
          } else {
            const uint32_t header_len = GetU32(body.data());
            if (header_len > length - 4) why = "a record's header length is wrong";
          }
        }
      }
      if (!why.empty()) {
        // A torn append at the very end (cut short, or its last bytes never
        // reached the disk) was never acknowledged: cut it.
        const bool tail =
            newest && (left < 8 || length > left - 8 || off + 8 + length == bytes.size());
        if (tail) {
          report.torn_tail = true;
          break;
        }
        const std::string where = absl::StrCat(path, " at offset ", off, ": ", why);
        if (!recover) {
          return absl::DataLossError(absl::StrCat(
              "the write-ahead log is damaged: ", where,
              ". Refusing to start; start with --recover to keep what comes "
              "before the damage and drop the rest"));
        }
        report.stopped_at = where;
        return report;
      }
      const absl::string_view body(bytes.data() + off + 8, length);
      const uint32_t header_len = GetU32(body.data());
      JournalRecord record;
      record.header = std::string(body.substr(4, header_len));
      record.data = std::string(body.substr(4 + header_len));
      absl::Status applied = apply(record);
      if (!applied.ok()) {
        return absl::Status(applied.code(),
                            absl::StrCat(path, " at offset ", off, ": ", applied.message()));
      }
      ++report.records;
      off += 8 + length;
    }
  }
  return report;
}

}  // namespace varscope::core
