// File: cluster_checkpoints.h
// Cluster checkpoints: one consistent cut over every shard (cut_gate.h
// says why it is one), saved under the same name on every shard with a
// cluster manifest, and restores that swap in every shard's part or none.
//
//   <data_dir>/checkpoints/<name>/   each shard's own part (checkpoint.h)
//   <data_dir>/cluster/<name>.json   the cluster manifest, on every shard:
//       format, name, created, cut id, the slot table (shards, slot_count,
//       hash, table_version, shard_of_slot), the shard addresses, each
//       shard's checkpoint (name, revision, sequence, variables, bytes),
//       and how long the cut paused changes
//
// A save: pause every shard (each drains the pushes in flight), each takes
// its snapshot, all resume, each writes its files, then the manifest is
// recorded everywhere. A restore: every shard reads and checks its part
// (nothing changes yet), then every shard pauses, each swaps its part in,
// and all resume. (Resuming only once every shard is done keeps a push
// kept on one shard from reaching another before that one's cut.) Any failure before the swap resumes every shard and
// changes nothing. varscope-reshard turns a checkpoint of N shards into one
// of M (tools/reshard.cc).
//
// CutParticipant is a shard's side (the Peer calls); CutCoordinator runs
// the cluster's Admin.Save / Restore / ListCheckpoints, blocking, on a
// worker thread.
//
// Thread-safety: thread-safe.
#ifndef VARSCOPE_SERVER_CLUSTER_CLUSTER_CHECKPOINTS_H_
#define VARSCOPE_SERVER_CLUSTER_CLUSTER_CHECKPOINTS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/placement/placement.h"
#include "server/cluster/cut_gate.h"
#include "server/cluster/peers.h"
#include "server/core/storage/checkpoint.h"
#include "server/core/storage/env.h"
#include "varscope/v1/admin.pb.h"
#include "varscope/v1/cluster.pb.h"

namespace varscope::cluster {

// The manifest's "format".
inline constexpr char kClusterCheckpointFormat[] = "varscope-cluster-checkpoint-1";

// What a cluster manifest records (the file's fields, see the top).
struct ClusterManifest {
  struct Part {
    std::string name;  // the shard's checkpoint
    std::string address;
    uint64_t revision = 0;
    int64_t sequence = 0;
    int64_t variables = 0;
    int64_t bytes = 0;
  };
  std::string name;
  std::string created;  // RFC 3339, UTC
  uint64_t cut_id = 0;
  placement::SlotTable table;
  std::vector<Part> parts;  // by shard index
  double pause_seconds = 0;
  // How partitioned variables were placed: kPlacementPartsByName, or
  // "parts-with-variable" (written before parts spread; such a checkpoint
  // is restored after varscope-reshard places it anew).
  std::string placement;
};
inline constexpr char kPlacementPartsByName[] = "parts-by-own-name";
std::string EncodeManifest(const ClusterManifest& manifest);
// DATA_LOSS naming `where` if the text is not a manifest.
absl::StatusOr<ClusterManifest> DecodeManifest(const std::string& text, const std::string& where);

class CutParticipant {
 public:
  // Not owned; `checkpointer` is null without --data_dir (then every call
  // but Pause/Resume fails FAILED_PRECONDITION).
  CutParticipant(core::Checkpointer* checkpointer, CutGate* gate, core::Env* env,
                 std::string data_dir);

  // Peer.PauseChanges: `drained` runs once the changes in flight are done.
  // ALREADY_EXISTS, without pausing, if `save_name` names a checkpoint this
  // shard already has.
  absl::Status Pause(uint64_t cut_id, absl::Duration hold, const std::string& save_name,
                     std::function<void()> drained) ABSL_LOCKS_EXCLUDED(mu_);
  // Peer.SaveCut (blocks on disk): `snapshotted` runs once the snapshot
  // is taken (or the save failed before it), then the files are written.
  void Save(uint64_t cut_id, const std::string& name, std::function<void()> snapshotted)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Peer.FinishSave: the outcome of Save (call after it). ABORTED, with
  // nothing saved, if the pause had ended before the snapshot.
  absl::StatusOr<v1::SaveCutResponse> FinishSave(uint64_t cut_id) ABSL_LOCKS_EXCLUDED(mu_);
  // Peer.ResumeChanges: true if the shard was still paused for the cut.
  bool Resume(uint64_t cut_id) ABSL_LOCKS_EXCLUDED(mu_);
  // Peer.PrepareRestore (blocks on disk). FAILED_PRECONDITION while
  // another cut's restore is prepared here (for up to a minute).
  absl::Status PrepareRestore(uint64_t cut_id, const std::string& name, uint64_t revision)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Peer.CommitRestore (blocks on disk): `answer` runs once, right after
  // the swap or with the error that prevented it; the fresh checkpoint a
  // restore is followed by is written after.
  void CommitRestore(uint64_t cut_id,
                     std::function<void(absl::StatusOr<v1::RestoreResponse>)> answer)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Peer.RecordClusterCheckpoint: writes the manifest (atomically).
  absl::Status Record(const std::string& name, const std::string& manifest);

  // The manifests recorded on this shard.
  absl::StatusOr<std::string> ReadManifest(const std::string& name);
  absl::StatusOr<std::vector<std::string>> ManifestNames();

 private:
  std::string ManifestPath(const std::string& name) const;

  core::Checkpointer* const checkpointer_;  // Not owned; may be null.
  CutGate* const gate_;                     // Not owned.
  core::Env* const env_;                    // Not owned.
  const std::string dir_;                   // <data_dir>/cluster
  absl::Mutex mu_;
  uint64_t paused_cut_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time paused_at_ ABSL_GUARDED_BY(mu_);
  absl::Time resumed_at_ ABSL_GUARDED_BY(mu_);
  absl::Time prepared_at_ ABSL_GUARDED_BY(mu_);
  // The last save of a cut and its outcome.
  uint64_t saved_cut_ ABSL_GUARDED_BY(mu_) = 0;
  absl::StatusOr<core::CheckpointInfo> saved_ ABSL_GUARDED_BY(mu_);
  // A restore read and checked, waiting for CommitRestore (one at a time).
  uint64_t prepared_cut_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<core::Checkpointer::PreparedRestore> prepared_ ABSL_GUARDED_BY(mu_);
};

class CutCoordinator {
 public:
  // Not owned. `local` is this shard's participant (for the manifests).
  CutCoordinator(Peers* peers, CutParticipant* local, absl::Duration hold)
      : peers_(peers), local_(local), hold_(hold) {}

  // Admin.Save / Restore / ListCheckpoints for the whole cluster. Blocking
  // (peer calls): call on a worker thread. One save or restore at a time;
  // FAILED_PRECONDITION while another runs.
  absl::StatusOr<v1::CheckpointInfo> Save(const std::string& name);
  absl::StatusOr<v1::RestoreResponse> Restore(const std::string& name);
  absl::StatusOr<v1::ListCheckpointsResponse> List(const v1::ListCheckpointsRequest& request);

 private:
  absl::Status PauseAll(uint64_t cut_id, const std::string& save_name);
  // ABORTED naming the shards whose pause had ended by itself.
  absl::Status ResumeAll(uint64_t cut_id);

  Peers* const peers_;             // Not owned.
  CutParticipant* const local_;    // Not owned.
  const absl::Duration hold_;
  // A save or restore is running (a second one fails at once; nothing
  // waits for it, so no lock spans the peer calls).
  std::atomic<bool> busy_{false};
};

}  // namespace varscope::cluster

#endif  // VARSCOPE_SERVER_CLUSTER_CLUSTER_CHECKPOINTS_H_
