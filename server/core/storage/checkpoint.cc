#include "server/core/storage/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <thread>
#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "server/core/base/error_info.h"
#include "server/core/storage/crc32.h"
#include "server/core/namespace/names.h"
#include "server/core/storage/safetensors.h"
#include "server/core/storage/json_forms_internal.h"
#include "server/core/base/status_macros.h"

namespace varscope::core {
namespace {

using nlohmann::json;

constexpr char kModel[] = "model.safetensors";
constexpr char kMetadata[] = "metadata.json";
constexpr char kManifest[] = "MANIFEST.json";
constexpr char kFormat[] = "varscope-checkpoint-2";
constexpr char kAutoPrefix[] = "ckpt-";
constexpr char kTmpPrefix[] = ".tmp-";

}  // namespace

absl::Status ValidateCheckpointName(absl::string_view name) {
  bool ok = !name.empty() && name.size() <= 64 && name[0] != '.';
  for (char c : name) {
    ok = ok && (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' ||
                c == '_' || c == '-');
  }
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        "checkpoint name '", name,
        "' must be 1-64 of [A-Za-z0-9._-] and not start with '.'"));
  }
  return absl::OkStatus();
}

namespace {

std::string NowRfc3339() {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(), absl::UTCTimeZone());
}

// A sequence number for ordering: the manifest's, else the digits of an
// automatic name, else 0.
int64_t SequenceOf(const std::string& name, const json* manifest) {
  if (manifest != nullptr && manifest->contains("sequence")) {
    return (*manifest)["sequence"].get<int64_t>();
  }
  int64_t seq = 0;
  if (absl::StartsWith(name, kAutoPrefix) &&
      absl::SimpleAtoi(name.substr(sizeof(kAutoPrefix) - 1), &seq)) {
    return seq;
  }
  return 0;
}

}  // namespace

Checkpointer::Checkpointer(VariableStore* store, Env* env, std::string data_dir,
                           int keep)
    : store_(store),
      env_(env),
      dir_(data_dir + "/checkpoints"),
      keep_(std::max(1, keep)) {}

absl::StatusOr<std::vector<CheckpointInfo>> Checkpointer::List() {
  absl::MutexLock lock(&mu_);
  return ListLocked();
}

absl::StatusOr<std::vector<CheckpointInfo>> Checkpointer::ListLocked() {
  std::vector<CheckpointInfo> out;
  if (!env_->Exists(dir_)) return out;
  VARSCOPE_ASSIGN_OR_RETURN(std::vector<std::string> names, env_->ListDir(dir_));
  for (const std::string& name : names) {
    if (absl::StartsWith(name, ".")) continue;
    CheckpointInfo info;
    info.name = name;
    info.path = absl::StrCat(dir_, "/", name);
    absl::StatusOr<std::string> text =
        ReadWholeFile(env_, absl::StrCat(info.path, "/", kManifest));
    json manifest = text.ok() ? json::parse(*text, nullptr, false) : json();
    const bool valid = manifest.is_object() && manifest.value("format", "") == kFormat;
    info.sequence = SequenceOf(name, valid ? &manifest : nullptr);
    if (valid) {
      info.created = manifest.value("created", "");
      info.variables = manifest.value("variables", int64_t{0});
      info.wal_segment = manifest.value("wal_segment", int64_t{0});
      info.revision = manifest.value("revision", uint64_t{0});
      // Every file, the manifest included (what Save reports).
      info.bytes = static_cast<int64_t>(text->size());
      for (const auto& [file, entry] : manifest["files"].items()) {
        info.bytes += entry.value("bytes", int64_t{0});
      }
    }
    out.push_back(std::move(info));
  }
  std::sort(out.begin(), out.end(), [](const CheckpointInfo& a, const CheckpointInfo& b) {
    return a.sequence != b.sequence ? a.sequence < b.sequence : a.name < b.name;
  });
  return out;
}

absl::StatusOr<CheckpointInfo> Checkpointer::Save(absl::string_view name) {
  if (!name.empty()) VARSCOPE_RETURN_IF_ERROR(ValidateCheckpointName(name));
  absl::MutexLock lock(&mu_);
  return SaveLocked(name);
}

absl::StatusOr<CheckpointInfo> Checkpointer::Save(absl::string_view name,
                                                  const std::function<void()>& after_cut) {
  // after_cut runs on every path: a cluster's paused shard must go on.
  struct RunOnce {
    const std::function<void()>& f;
    bool done = false;
    void operator()() {
      if (!done && f) f();
      done = true;
    }
    ~RunOnce() { (*this)(); }
  } cut{after_cut};
  if (!name.empty()) VARSCOPE_RETURN_IF_ERROR(ValidateCheckpointName(name));
  absl::MutexLock lock(&mu_);
  return SaveLocked(name, [&cut] { cut(); });
}

absl::StatusOr<CheckpointInfo> Checkpointer::SaveLocked(
    absl::string_view name, const std::function<void()>& after_cut) {
  const absl::Time start = absl::Now();
  VARSCOPE_ASSIGN_OR_RETURN(CheckpointInfo info, NameNext(name));
  // Changes counted before the snapshot: anything later may be missing.
  const uint64_t changes = store_->feed().published();
  const absl::Time cut_start = absl::Now();
  VARSCOPE_ASSIGN_OR_RETURN(StoreSnapshot snapshot, SnapshotAtCut(&info));
  pause_seconds_.Observe(absl::ToDoubleSeconds(absl::Now() - cut_start));
  if (after_cut) after_cut();
  VARSCOPE_RETURN_IF_ERROR(WriteFiles(snapshot, &info));
  saved_at_.store(changes, std::memory_order_relaxed);
  (void)Prune();  // best effort: a failed prune leaves an extra checkpoint
  DropCoveredLog(info.wal_segment);
  save_seconds_.Observe(absl::ToDoubleSeconds(absl::Now() - start));
  return info;
}

absl::StatusOr<CheckpointInfo> Checkpointer::NameNext(absl::string_view name) {
  VARSCOPE_RETURN_IF_ERROR(env_->CreateDirs(dir_));
  VARSCOPE_ASSIGN_OR_RETURN(std::vector<CheckpointInfo> existing, ListLocked());
  CheckpointInfo info;
  info.sequence = existing.empty() ? 1 : existing.back().sequence + 1;
  info.name = name.empty() ? absl::StrFormat("%s%06d", kAutoPrefix, info.sequence)
                           : std::string(name);
  info.path = absl::StrCat(dir_, "/", info.name);
  info.created = NowRfc3339();
  if (env_->Exists(info.path)) {
    return absl::AlreadyExistsError(
        absl::StrCat("checkpoint ", info.name, " already exists"));
  }
  return info;
}

// One consistent cut: the update barrier held exclusively (no change half
// done) only while the log switches segments and the snapshot copies value
// pointers; files are written after, while pushes go on.
absl::StatusOr<StoreSnapshot> Checkpointer::SnapshotAtCut(CheckpointInfo* info) {
  Journal* journal = log_ != nullptr ? log_->journal() : nullptr;
  if (journal != nullptr) VARSCOPE_RETURN_IF_ERROR(journal->PrepareRotation());
  absl::MutexLock barrier(store_->update_barrier());
  if (journal != nullptr) {
    VARSCOPE_ASSIGN_OR_RETURN(info->wal_segment, journal->SwitchSegment());
  }
  StoreSnapshot snapshot = store_->SnapshotLocked();
  info->revision = snapshot.revision;
  return snapshot;
}

absl::Status Checkpointer::WriteFiles(const StoreSnapshot& snapshot,
                                      CheckpointInfo* info) {
  std::vector<SafetensorsTensor> tensors;
  for (const VariableState& v : snapshot.variables) {
    SafetensorsTensor t;
    t.name = v.info.name;
    t.dtype = v.info.dtype;
    t.shape = v.info.shape;
    tensors.push_back(std::move(t));
  }
  const std::string header = EncodeSafetensorsHeader(
      &tensors, {{"format", "varscope"}, {"checkpoint", info->name}});
  std::vector<absl::string_view> model = {header};
  json variables = json::array();
  int64_t tensor_bytes = 0;
  for (const VariableState& v : snapshot.variables) {
    const absl::string_view bytes(reinterpret_cast<const char*>(v.value->data()),
                                  v.value->size());
    model.push_back(bytes);
    tensor_bytes += static_cast<int64_t>(bytes.size());
    variables.push_back(VariableStateToJson(v));
  }
  json partitioned = json::array();
  for (const PartitionedState& p : snapshot.partitioned) {
    partitioned.push_back(PartitionedStateToJson(p));
  }
  int64_t model_bytes = 0;
  for (absl::string_view piece : model) model_bytes += static_cast<int64_t>(piece.size());
  // Tensor checksums are computed on another thread while the model file
  // is written (CRC-32 of 2 GiB takes about as long as writing it).
  std::vector<uint32_t> crcs(snapshot.variables.size());
  std::thread checksummer([&] {
    for (size_t i = 0; i < crcs.size(); ++i) crcs[i] = Crc32(model[i + 1]);
  });
  std::string metadata, manifest;

  // Write under a temporary name; the rename publishes it whole.
  const std::string tmp = absl::StrCat(dir_, "/", kTmpPrefix, info->name);
  auto write_all = [&]() -> absl::Status {
    VARSCOPE_RETURN_IF_ERROR(env_->DeleteRecursively(tmp));
    VARSCOPE_RETURN_IF_ERROR(env_->CreateDirs(tmp));
    absl::Status model_written = env_->WriteFile(absl::StrCat(tmp, "/", kModel), model);
    checksummer.join();
    VARSCOPE_RETURN_IF_ERROR(model_written);
    for (size_t i = 0; i < crcs.size(); ++i) variables[i]["crc32"] = crcs[i];
    metadata = json{{"format", kFormat}, {"name", info->name},
                    {"sequence", info->sequence}, {"created", info->created},
                    {"revision", info->revision},
                    {"variables", variables}, {"partitioned", partitioned}}
                   .dump(1);
    manifest =
        json{{"format", kFormat},
             {"name", info->name},
             {"sequence", info->sequence},
             {"created", info->created},
             {"variables", static_cast<int64_t>(snapshot.variables.size())},
             {"tensor_bytes", tensor_bytes},
             {"wal_segment", info->wal_segment},
             {"revision", info->revision},
             {"files",
              {{kModel, {{"bytes", model_bytes}, {"header_crc32", Crc32(header)}}},
               {kMetadata,
                {{"bytes", static_cast<int64_t>(metadata.size())},
                 {"crc32", Crc32(metadata)}}}}}}
            .dump(1);
    VARSCOPE_RETURN_IF_ERROR(env_->WriteFile(absl::StrCat(tmp, "/", kMetadata), {metadata}));
    VARSCOPE_RETURN_IF_ERROR(env_->WriteFile(absl::StrCat(tmp, "/", kManifest), {manifest}));
    VARSCOPE_RETURN_IF_ERROR(env_->SyncDir(tmp));
    VARSCOPE_RETURN_IF_ERROR(env_->Rename(tmp, info->path));
    return env_->SyncDir(dir_);
  };
  absl::Status written = write_all();
  if (checksummer.joinable()) checksummer.join();  // an early failure
  if (!written.ok()) {
    (void)env_->DeleteRecursively(tmp);
    return absl::Status(written.code(),
                        absl::StrCat("checkpoint ", info->name,
                                     " not saved (earlier ones are intact): ",
                                     written.message()));
  }
  info->bytes = model_bytes + static_cast<int64_t>(metadata.size() + manifest.size());
  info->variables = static_cast<int64_t>(snapshot.variables.size());
  return absl::OkStatus();
}

// Keeps the log from the oldest remaining checkpoint on, so --recover can
// still fall back to it; older segments are covered by all of them.
void Checkpointer::DropCoveredLog(int64_t segment) {
  if (log_ == nullptr) return;
  absl::StatusOr<std::vector<CheckpointInfo>> all = ListLocked();
  if (!all.ok() || all->empty()) return;
  int64_t oldest = segment;
  for (const CheckpointInfo& c : *all) oldest = std::min(oldest, c.wal_segment);
  (void)log_->journal()->DropBefore(oldest);
}

absl::Status Checkpointer::Prune() {
  VARSCOPE_ASSIGN_OR_RETURN(std::vector<CheckpointInfo> all, ListLocked());
  std::vector<CheckpointInfo> automatic;
  for (const CheckpointInfo& c : all) {
    if (absl::StartsWith(c.name, kAutoPrefix)) automatic.push_back(c);
  }
  for (size_t i = 0; i + keep_ < automatic.size(); ++i) {
    VARSCOPE_RETURN_IF_ERROR(env_->DeleteRecursively(automatic[i].path));
  }
  return absl::OkStatus();
}

absl::StatusOr<CheckpointInfo> Checkpointer::FindCheckpoint(
    absl::string_view name) {
  VARSCOPE_RETURN_IF_ERROR(ValidateCheckpointName(name));
  VARSCOPE_ASSIGN_OR_RETURN(std::vector<CheckpointInfo> all, ListLocked());
  for (const CheckpointInfo& c : all) {
    if (c.name == name) return c;
  }
  return WithReason(
      absl::NotFoundError(absl::StrCat("no checkpoint named ", name, " in ", dir_)),
      kCheckpointNotFound, {{"checkpoint", std::string(name)}});
}

absl::StatusOr<RestoreReport> Checkpointer::Restore(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  const absl::Time start = absl::Now();
  PreparedRestore prepared;
  VARSCOPE_ASSIGN_OR_RETURN(prepared.info, FindCheckpoint(name));
  VARSCOPE_ASSIGN_OR_RETURN(prepared.snapshot, Load(prepared.info, &prepared.report));
  return ApplyLocked(std::move(prepared), start);
}

absl::StatusOr<Checkpointer::PreparedRestore> Checkpointer::PrepareRestore(
    absl::string_view name) {
  absl::MutexLock lock(&mu_);
  PreparedRestore prepared;
  VARSCOPE_ASSIGN_OR_RETURN(prepared.info, FindCheckpoint(name));
  VARSCOPE_ASSIGN_OR_RETURN(prepared.snapshot, Load(prepared.info, &prepared.report));
  return prepared;
}

absl::StatusOr<RestoreReport> Checkpointer::ApplyRestore(
    PreparedRestore prepared, const std::function<void()>& after_swap) {
  absl::MutexLock lock(&mu_);
  return ApplyLocked(std::move(prepared), absl::Now(), after_swap);
}

absl::StatusOr<StoreSnapshot> Checkpointer::LoadSnapshot(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  VARSCOPE_ASSIGN_OR_RETURN(CheckpointInfo info, FindCheckpoint(name));
  RestoreReport report;
  return Load(info, &report);
}

absl::StatusOr<CheckpointInfo> Checkpointer::SaveSnapshot(absl::string_view name,
                                                          const StoreSnapshot& snapshot) {
  VARSCOPE_RETURN_IF_ERROR(ValidateCheckpointName(name));
  absl::MutexLock lock(&mu_);
  VARSCOPE_ASSIGN_OR_RETURN(CheckpointInfo info, NameNext(name));
  info.revision = snapshot.revision;
  VARSCOPE_RETURN_IF_ERROR(WriteFiles(snapshot, &info));
  return info;
}

absl::StatusOr<RestoreReport> Checkpointer::ApplyLocked(
    PreparedRestore prepared, absl::Time start, const std::function<void()>& after_swap) {
  const CheckpointInfo& info = prepared.info;
  RestoreReport& report = prepared.report;
  StoreSnapshot& snapshot = prepared.snapshot;
  RestoreOptions options;
  if (log_ != nullptr) {
    // Logged under the barrier, after every check: a crash before the next
    // checkpoint replays the restore where it happened.
    options.before_swap = [&](uint64_t revision) {
      return log_->LogRestore(info.name, revision);
    };
  }
  VARSCOPE_RETURN_IF_ERROR(store_->Restore(std::move(snapshot), options));
  if (after_swap) after_swap();
  saved_at_.store(store_->feed().published(), std::memory_order_relaxed);
  report.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  if (log_ != nullptr) {
    // A fresh checkpoint marks where recovery starts from now on.
    VARSCOPE_RETURN_IF_ERROR(SaveLocked("").status());
  }
  return report;
}

absl::Status Checkpointer::ReplayRestore(absl::string_view name,
                                         uint64_t revision) {
  absl::MutexLock lock(&mu_);
  VARSCOPE_ASSIGN_OR_RETURN(CheckpointInfo info, FindCheckpoint(name));
  RestoreReport report;
  VARSCOPE_ASSIGN_OR_RETURN(StoreSnapshot snapshot, Load(info, &report));
  RestoreOptions options;
  options.revision = revision;
  return store_->Restore(std::move(snapshot), options);
}

absl::StatusOr<RestoreReport> Checkpointer::RestoreNewest(bool recover) {
  absl::MutexLock lock(&mu_);
  RestoreReport report;
  if (env_->Exists(dir_)) {  // leftovers of saves cut short by a crash
    VARSCOPE_ASSIGN_OR_RETURN(std::vector<std::string> names, env_->ListDir(dir_));
    for (const std::string& n : names) {
      if (absl::StartsWith(n, kTmpPrefix)) {
        VARSCOPE_RETURN_IF_ERROR(env_->DeleteRecursively(absl::StrCat(dir_, "/", n)));
      }
    }
  }
  VARSCOPE_ASSIGN_OR_RETURN(std::vector<CheckpointInfo> all, ListLocked());
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    const absl::Time start = absl::Now();
    RestoreReport loaded;
    absl::StatusOr<StoreSnapshot> snapshot = Load(*it, &loaded);
    absl::Status restored = snapshot.status();
    if (restored.ok()) {
      RestoreOptions options;
      options.keep_versions = true;
      restored = store_->Restore(*std::move(snapshot), options);
    }
    if (restored.ok()) {
      saved_at_.store(store_->feed().published(), std::memory_order_relaxed);
      loaded.skipped = std::move(report.skipped);
      loaded.seconds = absl::ToDoubleSeconds(absl::Now() - start);
      return loaded;
    }
    if (!recover) {
      return absl::Status(
          restored.code(),
          absl::StrCat("the newest checkpoint ", it->path,
                       " cannot be restored: ", restored.message(),
                       ". Refusing to start; fix or remove it, or start with "
                       "--recover to fall back to the newest valid checkpoint"));
    }
    report.skipped.push_back(absl::StrCat(it->path, ": ", restored.message()));
  }
  return report;  // nothing (valid) to restore: start empty
}

absl::StatusOr<StoreSnapshot> Checkpointer::Load(const CheckpointInfo& info,
                                                 RestoreReport* out) {
  const std::string model_path = absl::StrCat(info.path, "/", kModel);
  const std::string metadata_path = absl::StrCat(info.path, "/", kMetadata);
  const std::string manifest_path = absl::StrCat(info.path, "/", kManifest);
  VARSCOPE_ASSIGN_OR_RETURN(std::string manifest_text, ReadWholeFile(env_, manifest_path));
  const json manifest = json::parse(manifest_text, nullptr, false);
  if (!manifest.is_object() || manifest.value("format", "") != kFormat ||
      !manifest.contains("files")) {
    return absl::DataLossError(absl::StrCat(manifest_path, " is not a varscope manifest"));
  }
  const json& files = manifest["files"];
  for (const char* file : {kModel, kMetadata}) {
    const std::string path = absl::StrCat(info.path, "/", file);
    VARSCOPE_ASSIGN_OR_RETURN(int64_t size, env_->FileSize(path));
    const int64_t expected = files.contains(file) ? files[file].value("bytes", int64_t{-1}) : -1;
    if (size != expected) {
      return absl::DataLossError(absl::StrCat(
          path, " has ", size, " bytes; the manifest says ", expected,
          " (truncated or replaced at offset ", std::min(size, expected), ")"));
    }
  }
  VARSCOPE_ASSIGN_OR_RETURN(std::string metadata_text, ReadWholeFile(env_, metadata_path));
  if (Crc32(metadata_text) != files[kMetadata].value("crc32", 0u)) {
    return absl::DataLossError(absl::StrCat(metadata_path, " fails its CRC-32 check"));
  }
  const json metadata = json::parse(metadata_text, nullptr, false);
  if (metadata.is_discarded() || !metadata.contains("variables")) {
    return absl::DataLossError(absl::StrCat(metadata_path, " is not valid metadata"));
  }
  VARSCOPE_ASSIGN_OR_RETURN(std::vector<SafetensorsTensor> tensors,
                            ReadSafetensorsHeader(env_, model_path));
  {
    const int64_t header_end = tensors.empty() ? 0 : tensors.front().begin;
    std::string header(static_cast<size_t>(header_end), '\0');
    if (header_end > 0) {
      VARSCOPE_RETURN_IF_ERROR(env_->ReadAt(model_path, 0, header_end, header.data()));
    }
    if (!tensors.empty() && Crc32(header) != files[kModel].value("header_crc32", 0u)) {
      return absl::DataLossError(absl::StrCat(
          model_path, " fails its header CRC-32 check (bytes 0 to ", header_end, ")"));
    }
  }
  std::map<std::string, const SafetensorsTensor*> by_name;
  for (const SafetensorsTensor& t : tensors) by_name[t.name] = &t;

  StoreSnapshot snapshot;
  RestoreReport& report = *out;
  report.checkpoint = info;
  snapshot.revision = metadata.value("revision", uint64_t{0});
  const int64_t total_bytes = manifest.value("tensor_bytes", int64_t{0});
  absl::Time last_progress = absl::Now();
  try {
    for (const json& v : metadata["variables"]) {
      VARSCOPE_ASSIGN_OR_RETURN(VariableState state, VariableStateFromJson(v));
      auto it = by_name.find(state.info.name);
      if (it == by_name.end()) {
        return absl::DataLossError(absl::StrCat(
            model_path, " has no tensor '", state.info.name, "' listed in ", metadata_path));
      }
      const SafetensorsTensor& t = *it->second;
      if (t.dtype != state.info.dtype || t.shape != state.info.shape) {
        return absl::DataLossError(absl::StrCat(
            model_path, ": tensor '", t.name, "' at offset ", t.begin,
            " disagrees with ", metadata_path, " on dtype or shape"));
      }
      std::shared_ptr<TensorBuffer> value =
          TensorBuffer::Allocate(static_cast<size_t>(t.end - t.begin));
      VARSCOPE_RETURN_IF_ERROR(env_->ReadAt(model_path, t.begin, t.end - t.begin, value->data()));
      if (Crc32(0, value->data(), value->size()) != v.at("crc32").get<uint32_t>()) {
        return absl::DataLossError(absl::StrCat(
            model_path, ": tensor '", t.name, "' (bytes ", t.begin, " to ", t.end,
            ") fails its CRC-32 check"));
      }
      report.tensor_bytes += static_cast<int64_t>(value->size());
      if (progress_ && absl::Now() - last_progress >= progress_every_) {
        last_progress = absl::Now();
        progress_(report.tensor_bytes, total_bytes,
                  static_cast<int64_t>(snapshot.variables.size()) + 1);
      }
      state.value = std::move(value);
      snapshot.variables.push_back(std::move(state));
    }
    for (const json& p : metadata.value("partitioned", json::array())) {
      VARSCOPE_ASSIGN_OR_RETURN(PartitionedState state, PartitionedStateFromJson(p));
      snapshot.partitioned.push_back(std::move(state));
    }
  } catch (const json::exception& e) {
    return absl::DataLossError(absl::StrCat(metadata_path, " is malformed: ", e.what()));
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(
        absl::StrCat("out of memory restoring ", info.path));
  }
  report.variables = static_cast<int64_t>(snapshot.variables.size());
  return snapshot;
}

absl::StatusOr<ImportReport> ImportSafetensors(VariableStore* store, Env* env,
                                               const std::string& path,
                                               absl::string_view scope,
                                               std::optional<bool> trainable) {
  if (!scope.empty()) {
    VARSCOPE_RETURN_IF_ERROR(ValidateName(scope, NamePosition::kRoot, "scope"));
  }
  VARSCOPE_ASSIGN_OR_RETURN(std::vector<SafetensorsTensor> tensors,
                            ReadSafetensorsHeader(env, path));
  if (tensors.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, " holds no tensors"));
  }
  // Check everything first.
  std::vector<GetVariableRequest> requests;
  ImportReport report;
  for (const SafetensorsTensor& t : tensors) {
    const std::string name = scope.empty() ? t.name : JoinName(scope, t.name);
    absl::Status valid = ValidateVariableName(name);
    if (!valid.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": tensor '", t.name, "' cannot be a variable name: ",
          valid.message()));
    }
    if (store->NameInUse(name)) {
      return absl::AlreadyExistsError(absl::StrCat(
          "variable ", name, " already exists; import into another scope"));
    }
    VARSCOPE_ASSIGN_OR_RETURN(int64_t bytes, NumBytes(t.dtype, t.shape));
    if (bytes > store->options().max_variable_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "tensor '", t.name, "' needs ", bytes,
          " bytes; the server's --max_variable_bytes is ",
          store->options().max_variable_bytes));
    }
    InitializerSpec init = InitializerSpec::Of(InitializerSpec::Kind::kValue);
    init.value.dtype = t.dtype;
    init.value.shape = t.shape;
    std::shared_ptr<TensorBuffer> value;
    try {
      value = TensorBuffer::Allocate(static_cast<size_t>(bytes));
    } catch (const std::bad_alloc&) {
      return absl::ResourceExhaustedError(absl::StrCat("out of memory reading ", path));
    }
    VARSCOPE_RETURN_IF_ERROR(env->ReadAt(path, t.begin, bytes, value->data()));
    init.value.buffer = std::move(value);
    GetVariableRequest request;
    request.name = name;  // shape and dtype come from the value
    request.initializer = std::move(init);
    request.trainable = trainable;
    requests.push_back(std::move(request));
    report.names.push_back(name);
    report.tensor_bytes += bytes;
  }
  // All at one revision, or none (another caller may have taken a name
  // meanwhile).
  VARSCOPE_RETURN_IF_ERROR(store->CreateVariables(requests).status());
  return report;
}

}  // namespace varscope::core
