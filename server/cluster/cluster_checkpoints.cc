#include "server/cluster/cluster_checkpoints.h"

#include <algorithm>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <random>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "server/core/base/error_info.h"
#include "server/core/base/status_macros.h"
#include "server/service/admin_service.h"
#include "server/service/page_token.h"
#include "server/service/status_convert.h"

namespace varscope::cluster {
namespace {

using nlohmann::json;

constexpr char kPause[] = "/varscope.v1.Peer/PauseChanges";
constexpr char kSaveCut[] = "/varscope.v1.Peer/SaveCut";
constexpr char kFinishSave[] = "/varscope.v1.Peer/FinishSave";
constexpr char kResume[] = "/varscope.v1.Peer/ResumeChanges";
constexpr char kPrepare[] = "/varscope.v1.Peer/PrepareRestore";
constexpr char kCommit[] = "/varscope.v1.Peer/CommitRestore";
constexpr char kRecord[] = "/varscope.v1.Peer/RecordClusterCheckpoint";

// Peer calls of a save or restore: generous, since a shard's part of a
// save or restore reads or writes its whole store.
constexpr absl::Duration kStepTimeout = absl::Minutes(30);

// The same request to every shard, answers in shard order; blocks.
template <typename Response, typename Request>
std::vector<std::pair<grpc::Status, Response>> CallEveryShard(
    Peers* peers, const std::string& method,
    const std::function<Request(int shard)>& request_of, absl::Duration timeout) {
  std::vector<std::pair<int, Request>> calls;
  for (int shard = 0; shard < peers->spec().size(); ++shard) {
    calls.emplace_back(shard, request_of(shard));
  }
  auto answers =
      std::make_shared<std::promise<std::vector<std::pair<grpc::Status, Response>>>>();
  auto future = answers->get_future();
  FanOut<Response>(peers, method, std::move(calls), absl::Now() + timeout,
                   [answers](std::vector<std::pair<grpc::Status, Response>> all) {
                     answers->set_value(std::move(all));
                   });
  return future.get();
}

// The first failure among `answers`, naming its shard; OK if none.
template <typename Response>
absl::Status FirstFailure(const Peers& peers, absl::string_view step,
                          const std::vector<std::pair<grpc::Status, Response>>& answers) {
  for (size_t shard = 0; shard < answers.size(); ++shard) {
    const grpc::Status& status = answers[shard].first;
    if (status.ok()) continue;
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        absl::StrCat(step, " failed on ", peers.Describe(static_cast<int>(shard)),
                                     ": ", status.error_message()));
  }
  return absl::OkStatus();
}

uint64_t NewCutId() {
  std::random_device random;
  uint64_t id = 0;
  while (id == 0) id = (uint64_t{random()} << 32) ^ random();
  return id;
}

std::string NowRfc3339() { return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone()); }

absl::Status NotFound(const std::string& name) {
  return core::WithReason(
      absl::NotFoundError(absl::StrCat("no cluster checkpoint named ", name,
                                       " (Admin.ListCheckpoints lists them)")),
      core::kCheckpointNotFound, {{"checkpoint", name}});
}

}  // namespace

std::string EncodeManifest(const ClusterManifest& m) {
  json parts = json::array();
  for (size_t shard = 0; shard < m.parts.size(); ++shard) {
    const ClusterManifest::Part& p = m.parts[shard];
    parts.push_back({{"shard", shard},
                     {"address", p.address},
                     {"name", p.name},
                     {"revision", p.revision},
                     {"sequence", p.sequence},
                     {"variables", p.variables},
                     {"bytes", p.bytes}});
  }
  return json{{"format", kClusterCheckpointFormat},
              {"name", m.name},
              {"created", m.created},
              {"cut_id", absl::StrFormat("%016x", m.cut_id)},
              {"shards", m.table.shards()},
              {"slot_count", placement::kSlots},
              {"hash", "fnv1a64+fmix64"},
              {"placement", kPlacementPartsByName},
              {"table_version", absl::StrCat(m.table.version())},
              {"shard_of_slot", m.table.assignment()},
              {"checkpoints", parts},
              {"pause_seconds", m.pause_seconds}}
      .dump(1);
}

absl::StatusOr<ClusterManifest> DecodeManifest(const std::string& text,
                                               const std::string& where) {
  const json j = json::parse(text, nullptr, false);
  auto bad = [&](absl::string_view why) {
    return absl::DataLossError(absl::StrCat(where, " is not a cluster manifest: ", why));
  };
  if (!j.is_object() || j.value("format", "") != kClusterCheckpointFormat) {
    return bad("no format \"varscope-cluster-checkpoint-1\"");
  }
  try {
    ClusterManifest m;
    m.name = j.value("name", "");
    m.created = j.value("created", "");
    if (!absl::SimpleHexAtoi(j.value("cut_id", "0"), &m.cut_id)) return bad("cut_id is not hex");
    m.pause_seconds = j.value("pause_seconds", 0.0);
    m.placement = j.value("placement", "parts-with-variable");
    const int shards = j.value("shards", 0);
    absl::StatusOr<placement::SlotTable> table = placement::SlotTable::FromAssignment(
        j.at("shard_of_slot").get<std::vector<uint32_t>>(), shards);
    if (!table.ok()) return bad(table.status().message());
    m.table = *std::move(table);
    if (j.value("table_version", "") != absl::StrCat(m.table.version())) {
      return bad("table_version does not match shard_of_slot");
    }
    m.parts.resize(shards);
    for (const json& part : j.at("checkpoints")) {
      const int shard = part.value("shard", -1);
      if (shard < 0 || shard >= shards) return bad("a checkpoint names no shard of the table");
      ClusterManifest::Part& p = m.parts[shard];
      p.name = part.value("name", "");
      p.address = part.value("address", "");
      p.revision = part.value("revision", uint64_t{0});
      p.sequence = part.value("sequence", int64_t{0});
      p.variables = part.value("variables", int64_t{0});
      p.bytes = part.value("bytes", int64_t{0});
    }
    for (const ClusterManifest::Part& p : m.parts) {
      if (p.name.empty()) return bad("a shard has no checkpoint");
    }
    return m;
  } catch (const json::exception& e) {
    return bad(e.what());
  }
}

// ---- CutParticipant ----

CutParticipant::CutParticipant(core::Checkpointer* checkpointer, CutGate* gate, core::Env* env,
                               std::string data_dir)
    : checkpointer_(checkpointer),
      gate_(gate),
      env_(env),
      dir_(data_dir.empty() ? "" : absl::StrCat(data_dir, "/cluster")) {}

absl::Status CutParticipant::Pause(uint64_t cut_id, absl::Duration hold,
                                   const std::string& save_name, std::function<void()> drained) {
  if (cut_id == 0) return absl::InvalidArgumentError("cut_id must not be 0");
  if (hold <= absl::ZeroDuration() || hold > absl::Minutes(10)) {
    return absl::InvalidArgumentError("hold_ms must be 1 to 600000");
  }
  if (!save_name.empty()) {
    VARSCOPE_RETURN_IF_ERROR(core::ValidateCheckpointName(save_name));
    if (checkpointer_ == nullptr) {
      return absl::FailedPreconditionError(
          "this shard keeps no checkpoints: start it with --data_dir");
    }
    if (env_->Exists(absl::StrCat(checkpointer_->checkpoints_dir(), "/", save_name))) {
      return absl::AlreadyExistsError(
          absl::StrCat("this shard already has a checkpoint named ", save_name));
    }
  }
  const absl::Time now = absl::Now();
  {
    absl::MutexLock lock(&mu_);
    if (paused_cut_ == cut_id) return gate_->Pause(cut_id, now + hold, std::move(drained));
  }
  VARSCOPE_RETURN_IF_ERROR(gate_->Pause(cut_id, now + hold, std::move(drained)));
  absl::MutexLock lock(&mu_);
  paused_cut_ = cut_id;
  paused_at_ = now;
  resumed_at_ = now;
  return absl::OkStatus();
}

void CutParticipant::Save(uint64_t cut_id, const std::string& name,
                          std::function<void()> snapshotted) {
  absl::StatusOr<core::CheckpointInfo> saved = absl::FailedPreconditionError(
      "this shard keeps no checkpoints: start it with --data_dir");
  // Whether the pause held until the snapshot (else it is not in the cut).
  bool held = false;
  if (checkpointer_ != nullptr) {
    saved = checkpointer_->Save(name, [&] {
      held = gate_->PausedFor(cut_id);
      snapshotted();
    });
  } else {
    snapshotted();
  }
  if (saved.ok() && !held) {
    // Not part of the cut; kept as this shard's own checkpoint (deleting
    // it could drop log segments only it covers).
    saved = absl::AbortedError(absl::StrCat(
        "this shard's pause ended before its snapshot (the cut took too long); its part ",
        saved->name, " is not a cluster checkpoint"));
  }
  absl::MutexLock lock(&mu_);
  saved_cut_ = cut_id;
  saved_ = std::move(saved);
}

absl::StatusOr<v1::SaveCutResponse> CutParticipant::FinishSave(uint64_t cut_id) {
  absl::MutexLock lock(&mu_);
  if (saved_cut_ != cut_id) {
    return absl::FailedPreconditionError("this shard saved nothing for this cut");
  }
  if (!saved_.ok()) return saved_.status();
  v1::SaveCutResponse response;
  service::ToProto(*saved_, response.mutable_checkpoint());
  response.set_revision(saved_->revision);
  if (paused_cut_ == cut_id) {
    response.set_paused_seconds(absl::ToDoubleSeconds(resumed_at_ - paused_at_));
  }
  return response;
}

bool CutParticipant::Resume(uint64_t cut_id) {
  const bool held = gate_->Resume(cut_id);
  std::optional<core::Checkpointer::PreparedRestore> dropped;  // freed unlocked
  absl::MutexLock lock(&mu_);
  if (held && paused_cut_ == cut_id) resumed_at_ = absl::Now();
  if (prepared_cut_ == cut_id) {
    prepared_cut_ = 0;
    dropped = std::move(prepared_);
    prepared_.reset();
  }
  return held;
}

absl::Status CutParticipant::PrepareRestore(uint64_t cut_id, const std::string& name,
                                            uint64_t revision) {
  if (checkpointer_ == nullptr) {
    return absl::FailedPreconditionError("this shard keeps no checkpoints: start it with --data_dir");
  }
  VARSCOPE_ASSIGN_OR_RETURN(core::Checkpointer::PreparedRestore prepared,
                            checkpointer_->PrepareRestore(name));
  if (prepared.info.revision != revision) {
    return absl::FailedPreconditionError(absl::StrCat(
        "this shard's checkpoint ", name, " is at revision ", prepared.info.revision,
        ", not the cluster checkpoint's ", revision, " (another checkpoint of that name?)"));
  }
  absl::MutexLock lock(&mu_);
  // Another coordinator's restore, prepared less than a minute ago, wins;
  // an older one was abandoned (its coordinator died) and is replaced.
  if (prepared_cut_ != 0 && prepared_cut_ != cut_id &&
      absl::Now() - prepared_at_ < absl::Minutes(1)) {
    return absl::FailedPreconditionError(
        "another cluster restore is being prepared on this shard; try again when it ends");
  }
  prepared_cut_ = cut_id;
  prepared_at_ = absl::Now();
  prepared_ = std::move(prepared);
  return absl::OkStatus();
}

void CutParticipant::CommitRestore(
    uint64_t cut_id, std::function<void(absl::StatusOr<v1::RestoreResponse>)> answer) {
  std::optional<core::Checkpointer::PreparedRestore> prepared;
  {
    absl::MutexLock lock(&mu_);
    if (prepared_cut_ == cut_id && prepared_.has_value()) {
      prepared = std::move(prepared_);
      prepared_.reset();
      prepared_cut_ = 0;
    }
  }
  if (!prepared.has_value()) {
    return answer(absl::FailedPreconditionError("no restore prepared for this cut on this shard"));
  }
  if (!gate_->PausedFor(cut_id)) {
    return answer(
        absl::AbortedError("this shard's pause ended before the restore (it took too long)"));
  }
  v1::RestoreResponse response;
  service::ToProto(prepared->info, response.mutable_checkpoint());
  response.set_variables(prepared->report.variables);
  response.set_tensor_bytes(prepared->report.tensor_bytes);
  const absl::Time start = absl::Now();
  bool answered = false;
  // Stays paused: the coordinator resumes every shard once all swapped.
  absl::StatusOr<core::RestoreReport> report =
      checkpointer_->ApplyRestore(*std::move(prepared), [&] {
        response.set_seconds(absl::ToDoubleSeconds(absl::Now() - start));
        answered = true;
        answer(std::move(response));
      });
  if (!answered) {
    answer(report.ok() ? absl::InternalError("the restore did not swap") : report.status());
  } else if (!report.ok()) {
    spdlog::warn("restored cluster checkpoint part, but the checkpoint after it failed: {}",
                 report.status().ToString());
  }
}

std::string CutParticipant::ManifestPath(const std::string& name) const {
  return absl::StrCat(dir_, "/", name, ".json");
}

absl::Status CutParticipant::Record(const std::string& name, const std::string& manifest) {
  if (dir_.empty()) {
    return absl::FailedPreconditionError("this shard keeps no checkpoints: start it with --data_dir");
  }
  VARSCOPE_RETURN_IF_ERROR(core::ValidateCheckpointName(name));
  VARSCOPE_RETURN_IF_ERROR(env_->CreateDirs(dir_));
  const std::string tmp = absl::StrCat(dir_, "/.tmp-", name);
  VARSCOPE_RETURN_IF_ERROR(env_->WriteFile(tmp, {manifest}));
  VARSCOPE_RETURN_IF_ERROR(env_->Rename(tmp, ManifestPath(name)));
  return env_->SyncDir(dir_);
}

absl::StatusOr<std::string> CutParticipant::ReadManifest(const std::string& name) {
  VARSCOPE_RETURN_IF_ERROR(core::ValidateCheckpointName(name));
  if (dir_.empty() || !env_->Exists(ManifestPath(name))) return NotFound(name);
  return core::ReadWholeFile(env_, ManifestPath(name));
}

absl::StatusOr<std::vector<std::string>> CutParticipant::ManifestNames() {
  std::vector<std::string> names;
  if (dir_.empty() || !env_->Exists(dir_)) return names;
  VARSCOPE_ASSIGN_OR_RETURN(std::vector<std::string> entries, env_->ListDir(dir_));
  for (absl::string_view entry : entries) {
    if (absl::StartsWith(entry, ".") || !absl::ConsumeSuffix(&entry, ".json")) continue;
    names.emplace_back(entry);
  }
  return names;
}

// ---- CutCoordinator ----

absl::Status CutCoordinator::PauseAll(uint64_t cut_id, const std::string& save_name) {
  const auto paused = CallEveryShard<v1::PauseChangesResponse, v1::PauseChangesRequest>(
      peers_, kPause,
      [&](int) {
        v1::PauseChangesRequest request;
        request.set_cut_id(cut_id);
        request.set_hold_ms(absl::ToInt64Milliseconds(hold_));
        request.set_save_name(save_name);
        return request;
      },
      // Well inside the hold: a pause that lands after the coordinator
      // gave up ends by itself soon.
      hold_ / 2);
  return FirstFailure(*peers_, "pausing changes", paused);
}

absl::Status CutCoordinator::ResumeAll(uint64_t cut_id) {
  const auto resumed = CallEveryShard<v1::ResumeChangesResponse, v1::ResumeChangesRequest>(
      peers_, kResume,
      [&](int) {
        v1::ResumeChangesRequest request;
        request.set_cut_id(cut_id);
        return request;
      },
      absl::Seconds(10));
  std::vector<std::string> expired;
  for (int shard = 0; shard < static_cast<int>(resumed.size()); ++shard) {
    if (!resumed[shard].first.ok() || !resumed[shard].second.held()) {
      expired.push_back(peers_->Describe(shard));
    }
  }
  if (expired.empty()) return absl::OkStatus();
  return absl::AbortedError(absl::StrCat(
      "the pause of ", absl::StrJoin(expired, ", "), " ended before every shard was done (after ",
      absl::FormatDuration(hold_), "), so changes may have slipped between the shards' parts"));
}

absl::StatusOr<v1::CheckpointInfo> CutCoordinator::Save(const std::string& requested) {
  if (busy_.exchange(true)) {
    return absl::FailedPreconditionError("another cluster save or restore is running; try again");
  }
  absl::Cleanup done = [this] { busy_ = false; };
  const uint64_t cut_id = NewCutId();
  const std::string name =
      !requested.empty() ? requested
                         : absl::StrFormat("cluster-%s-%06x",
                                           absl::FormatTime("%Y%m%d-%H%M%S", absl::Now(),
                                                            absl::UTCTimeZone()),
                                           cut_id & 0xffffff);
  VARSCOPE_RETURN_IF_ERROR(core::ValidateCheckpointName(name));
  if (local_->ReadManifest(name).ok()) {
    return absl::AlreadyExistsError(absl::StrCat("cluster checkpoint ", name, " already exists"));
  }
  // 1. Pause every shard; each answers once its pushes in flight are done
  // (a shard that already has a checkpoint of this name refuses first).
  if (absl::Status paused = PauseAll(cut_id, name); !paused.ok()) {
    (void)ResumeAll(cut_id);
    return paused;
  }
  // 2. Each takes its snapshot; 3. all resume; 4. each writes its files.
  const auto snapshots = CallEveryShard<v1::SaveCutStarted, v1::SaveCutRequest>(
      peers_, kSaveCut,
      [&](int) {
        v1::SaveCutRequest request;
        request.set_cut_id(cut_id);
        request.set_name(name);
        return request;
      },
      hold_);
  const absl::Status held = ResumeAll(cut_id);
  VARSCOPE_RETURN_IF_ERROR(FirstFailure(*peers_, "saving", snapshots));
  VARSCOPE_RETURN_IF_ERROR(held);
  const auto saved = CallEveryShard<v1::SaveCutResponse, v1::FinishSaveRequest>(
      peers_, kFinishSave,
      [&](int) {
        v1::FinishSaveRequest request;
        request.set_cut_id(cut_id);
        return request;
      },
      kStepTimeout);
  VARSCOPE_RETURN_IF_ERROR(FirstFailure(*peers_, "saving", saved));

  // 5. The manifest, on every shard.
  const ClusterSpec& spec = peers_->spec();
  ClusterManifest manifest;
  manifest.name = name;
  manifest.created = NowRfc3339();
  manifest.cut_id = cut_id;
  manifest.table = spec.table();
  v1::CheckpointInfo total;
  for (int shard = 0; shard < spec.size(); ++shard) {
    const v1::SaveCutResponse& part = saved[shard].second;
    manifest.parts.push_back({part.checkpoint().name(), spec.address(shard), part.revision(),
                              part.checkpoint().sequence(), part.checkpoint().variables(),
                              part.checkpoint().bytes()});
    total.set_bytes(total.bytes() + part.checkpoint().bytes());
    total.set_variables(total.variables() + part.checkpoint().variables());
    manifest.pause_seconds = std::max(manifest.pause_seconds, part.paused_seconds());
  }
  const std::string text = EncodeManifest(manifest);
  const auto recorded =
      CallEveryShard<v1::RecordClusterCheckpointResponse, v1::RecordClusterCheckpointRequest>(
          peers_, kRecord,
          [&](int) {
            v1::RecordClusterCheckpointRequest request;
            request.set_name(name);
            request.set_manifest(text);
            return request;
          },
          kStepTimeout);
  VARSCOPE_RETURN_IF_ERROR(FirstFailure(*peers_, "recording the manifest", recorded));
  total.set_name(name);
  total.set_path(absl::StrCat("cluster/", name, ".json"));
  total.set_sequence(saved[spec.self()].second.checkpoint().sequence());
  total.set_created(manifest.created);
  return total;
}

absl::StatusOr<v1::RestoreResponse> CutCoordinator::Restore(const std::string& name) {
  if (busy_.exchange(true)) {
    return absl::FailedPreconditionError("another cluster save or restore is running; try again");
  }
  absl::Cleanup done = [this] { busy_ = false; };
  const absl::Time start = absl::Now();
  VARSCOPE_ASSIGN_OR_RETURN(std::string text, local_->ReadManifest(name));
  VARSCOPE_ASSIGN_OR_RETURN(ClusterManifest manifest,
                            DecodeManifest(text, absl::StrCat("cluster/", name, ".json")));
  const ClusterSpec& spec = peers_->spec();
  if (manifest.table.version() != spec.table().version()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cluster checkpoint ", name, " was saved by a cluster of ", manifest.table.shards(),
        " shards placing names differently; this cluster has ", spec.size(),
        ": re-shard it with varscope-reshard"));
  }
  if (manifest.placement != kPlacementPartsByName) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cluster checkpoint ", name, " keeps each partitioned variable's parts with it (",
        manifest.placement, "), but this version places each part by its own name: "
        "re-shard it with varscope-reshard (to the same number of shards works)"));
  }
  const uint64_t cut_id = NewCutId();
  // 1. Every shard reads and checks its part; nothing changes yet.
  const auto prepared = CallEveryShard<v1::PrepareRestoreResponse, v1::PrepareRestoreRequest>(
      peers_, kPrepare,
      [&](int shard) {
        v1::PrepareRestoreRequest request;
        request.set_cut_id(cut_id);
        request.set_name(manifest.parts[shard].name);
        request.set_revision(manifest.parts[shard].revision);
        return request;
      },
      kStepTimeout);
  if (absl::Status failed = FirstFailure(*peers_, "reading the checkpoint", prepared);
      !failed.ok()) {
    (void)ResumeAll(cut_id);  // drops what was prepared
    return failed;
  }
  // 2. Pause every shard, 3. each swaps its part in, 4. all resume.
  if (absl::Status paused = PauseAll(cut_id, ""); !paused.ok()) {
    (void)ResumeAll(cut_id);
    return paused;
  }
  const auto committed = CallEveryShard<v1::RestoreResponse, v1::CommitRestoreRequest>(
      peers_, kCommit,
      [&](int) {
        v1::CommitRestoreRequest request;
        request.set_cut_id(cut_id);
        return request;
      },
      hold_);
  const absl::Status held = ResumeAll(cut_id);
  std::vector<std::string> restored;
  for (int shard = 0; shard < spec.size(); ++shard) {
    if (committed[shard].first.ok()) restored.push_back(peers_->Describe(shard));
  }
  if (absl::Status failed = FirstFailure(*peers_, "swapping the checkpoint in", committed);
      !failed.ok()) {
    // Every part was read and checked, so this is a shard failing mid-way
    // (a crash, a full disk): say exactly which shards hold what.
    return absl::Status(failed.code(),
                        absl::StrCat(failed.message(), restored.empty()
                                                           ? "; no shard was restored"
                                                           : "; restored on: ",
                                     absl::StrJoin(restored, ", ")));
  }
  // Every shard swapped, but one resumed on its own before the others
  // were done: a push may have applied to the old values there.
  VARSCOPE_RETURN_IF_ERROR(held);
  v1::RestoreResponse response;
  response.mutable_checkpoint()->set_name(name);
  response.mutable_checkpoint()->set_path(absl::StrCat("cluster/", name, ".json"));
  response.mutable_checkpoint()->set_created(manifest.created);
  for (const auto& [status, part] : committed) {
    response.set_variables(response.variables() + part.variables());
    response.set_tensor_bytes(response.tensor_bytes() + part.tensor_bytes());
    response.mutable_checkpoint()->set_bytes(response.checkpoint().bytes() +
                                             part.checkpoint().bytes());
  }
  response.mutable_checkpoint()->set_variables(response.variables());
  response.set_seconds(absl::ToDoubleSeconds(absl::Now() - start));
  return response;
}

absl::StatusOr<v1::ListCheckpointsResponse> CutCoordinator::List(
    const v1::ListCheckpointsRequest& request) {
  VARSCOPE_ASSIGN_OR_RETURN(const size_t page_size, service::PageSize(request.page_size()));
  int64_t after = -1;
  if (!request.page_token().empty()) {
    VARSCOPE_ASSIGN_OR_RETURN(std::string text,
                              service::DecodeNameToken("cluster-checkpoints", request.page_token()));
    if (!absl::SimpleAtoi(text, &after)) {
      return absl::InvalidArgumentError("page_token is not a checkpoint page token");
    }
  }
  const int self = peers_->spec().self();
  std::vector<v1::CheckpointInfo> all;
  VARSCOPE_ASSIGN_OR_RETURN(std::vector<std::string> names, local_->ManifestNames());
  for (const std::string& name : names) {
    absl::StatusOr<std::string> text = local_->ReadManifest(name);
    if (!text.ok()) continue;
    absl::StatusOr<ClusterManifest> manifest = DecodeManifest(*text, name);
    if (!manifest.ok()) continue;
    v1::CheckpointInfo info;
    info.set_name(name);
    info.set_path(absl::StrCat("cluster/", name, ".json"));
    info.set_created(manifest->created);
    for (size_t shard = 0; shard < manifest->parts.size(); ++shard) {
      const ClusterManifest::Part& part = manifest->parts[shard];
      info.set_bytes(info.bytes() + part.bytes);
      info.set_variables(info.variables() + part.variables);
      if (static_cast<int>(shard) == self) info.set_sequence(part.sequence);
    }
    all.push_back(std::move(info));
  }
  std::sort(all.begin(), all.end(), [](const v1::CheckpointInfo& a, const v1::CheckpointInfo& b) {
    return a.sequence() != b.sequence() ? a.sequence() < b.sequence() : a.name() < b.name();
  });
  v1::ListCheckpointsResponse response;
  auto it = std::find_if(all.begin(), all.end(),
                         [&](const v1::CheckpointInfo& c) { return c.sequence() > after; });
  for (; it != all.end() && static_cast<size_t>(response.checkpoints_size()) < page_size; ++it) {
    *response.add_checkpoints() = *it;
  }
  if (it != all.end()) {
    response.set_next_page_token(service::EncodeNameToken(
        "cluster-checkpoints", absl::StrCat(response.checkpoints().rbegin()->sequence())));
  }
  return response;
}

}  // namespace varscope::cluster
