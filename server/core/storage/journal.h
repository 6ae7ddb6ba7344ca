// File: journal.h
// The write-ahead log in <data_dir>/wal: numbered segment files of
// records, each [u32 length][u32 CRC-32][u32 header length][header][data]
// (little-endian). Appends are durable when Append returns; concurrent
// appenders share one write and one fdatasync (group commit).
//
// Records are opaque here (log_records.h gives them meaning).
//
// Checkpoints and the log meet at a segment switch: the checkpointer opens
// the next segment ahead (PrepareRotation, on disk), then, holding the
// store's update barrier exclusively so that no logged change is half
// done, switches to it (SwitchSegment, no disk) and takes its snapshot. The
// snapshot therefore holds everything logged in earlier segments, and
// recovery replays only the segments from the checkpoint's on.
//
// Example:
//   auto journal = Journal::Open(env, "/data").value();
//   RETURN_IF_ERROR(journal->Append(header, {bytes}));   // durable now
//   RETURN_IF_ERROR(journal->PrepareRotation());
//   { barrier held: int64_t first = journal->SwitchSegment(); snapshot... }
//
// Thread-safety: all methods are thread-safe; mu_ is a leaf (level 7 of
// base/lock_order.h) and is never held during the disk write or fsync.
#ifndef VARSCOPE_SERVER_CORE_STORAGE_JOURNAL_H_
#define VARSCOPE_SERVER_CORE_STORAGE_JOURNAL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/core/base/histogram.h"
#include "server/core/storage/env.h"

namespace varscope::core {

struct JournalRecord {
  std::string header;  // JSON
  std::string data;    // raw bytes (tensor values)
};

struct ReplayReport {
  int64_t records = 0;
  int64_t segments = 0;
  // Set when a torn record at the very end (never acknowledged) was cut.
  bool torn_tail = false;
  // With recover: where replay stopped at damage, and why.
  std::string stopped_at;
};

class Journal {
 public:
  // Opens <data_dir>/wal and starts a new segment after the newest one.
  static absl::StatusOr<std::unique_ptr<Journal>> Open(Env* env,
                                                       const std::string& data_dir);
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Appends one record; returns once it is on disk. After a write error
  // the journal refuses every later append (the error is sticky).
  absl::Status Append(absl::string_view header, absl::string_view data)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The same, with the data given in pieces (logged back to back).
  absl::Status Append(absl::string_view header,
                      const std::vector<absl::string_view>& data)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Opens the segment after the current one, ready for SwitchSegment.
  absl::Status PrepareRotation() ABSL_LOCKS_EXCLUDED(mu_);
  // Makes the prepared segment current (appends go there from now on) and
  // returns its number. Call with no append in progress (the update
  // barrier held exclusively); waits for none and touches no disk.
  absl::StatusOr<int64_t> SwitchSegment() ABSL_LOCKS_EXCLUDED(mu_);
  // Deletes segments numbered below `segment`.
  absl::Status DropBefore(int64_t segment) ABSL_LOCKS_EXCLUDED(mu_);
  int64_t segment() const ABSL_LOCKS_EXCLUDED(mu_);
  // How long each write-and-sync of a batch of records took.
  const Histogram& sync_seconds() const { return sync_seconds_; }

  // Reads the segments numbered >= `from` in order, calling `apply` for
  // each record. A torn record at the end of the newest segment is cut
  // (it was never acknowledged). Damage anywhere else fails with
  // DATA_LOSS naming the file and offset; with `recover`, replay stops
  // there instead and says where in the report.
  static absl::StatusOr<ReplayReport> Replay(
      Env* env, const std::string& data_dir, int64_t from, bool recover,
      const std::function<absl::Status(const JournalRecord&)>& apply);

 private:
  Journal(Env* env, std::string dir) : env_(env), dir_(std::move(dir)) {}
  absl::StatusOr<std::unique_ptr<AppendableFile>> CreateSegment(int64_t number)
      ABSL_LOCKS_EXCLUDED(mu_);
  std::string SegmentPath(int64_t number) const;

  Env* const env_;  // Not owned.
  const std::string dir_;
  Histogram sync_seconds_{Histogram::DurationBounds()};

  mutable absl::Mutex mu_;
  std::unique_ptr<AppendableFile> file_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<AppendableFile> next_file_ ABSL_GUARDED_BY(mu_);
  int64_t segment_ ABSL_GUARDED_BY(mu_) = 0;
  std::string pending_ ABSL_GUARDED_BY(mu_);
  uint64_t appended_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t synced_ ABSL_GUARDED_BY(mu_) = 0;
  bool syncing_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
};

// Segment numbers present in <data_dir>/wal, ascending.
absl::StatusOr<std::vector<int64_t>> ListJournalSegments(Env* env,
                                                         const std::string& data_dir);

}  // namespace varscope::core

#endif  // VARSCOPE_SERVER_CORE_STORAGE_JOURNAL_H_
