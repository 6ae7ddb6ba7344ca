#include "server/cluster/spread_parts.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "server/core/base/error_info.h"
#include "server/core/base/status_macros.h"
#include "server/core/namespace/names.h"
#include "server/service/handle.h"
#include "server/service/proto_convert.h"
#include "server/service/status_convert.h"

namespace varscope::cluster {
namespace {

constexpr char kStage[] = "/varscope.v1.Peer/StageParts";
constexpr char kPublish[] = "/varscope.v1.Peer/PublishParts";
constexpr char kDrop[] = "/varscope.v1.Peer/DropParts";
constexpr char kDelete[] = "/varscope.v1.Peer/DeleteParts";
constexpr char kDescribe[] = "/varscope.v1.VariableStore/DescribeVariable";

// Longest a creation or deletion waits for a shard, and one keeper call.
constexpr absl::Duration kPeerCallLimit = absl::Seconds(30);
constexpr absl::Duration kKeeperCallLimit = absl::Seconds(5);
constexpr absl::Duration kKeeperPeriod = absl::Seconds(1);

absl::Time CallDeadline(absl::Time caller, absl::Duration limit) {
  return std::min(caller, absl::Now() + limit);
}

// The first failure among peer answers, or OK.
template <typename Response>
grpc::Status FirstFailure(const std::vector<std::pair<grpc::Status, Response>>& answers) {
  for (const auto& [status, response] : answers) {
    if (!status.ok()) return status;
  }
  return grpc::Status::OK;
}

uint64_t NewTxn() {
  absl::BitGen gen;
  return absl::Uniform<uint64_t>(gen, 1, std::numeric_limits<uint64_t>::max());
}

}  // namespace

void ToProto(const core::PartitionedState& whole, v1::PartitionedRecord* out) {
  out->set_name(whole.name);
  out->set_dtype(service::ToProto(whole.dtype));
  for (int64_t d : whole.shape) out->add_shape(d);
  for (int64_t p : whole.partitions) out->add_partitions(p);
  out->set_trainable(whole.trainable);
  for (const std::string& c : whole.collections) out->add_collections(c);
  service::ToProto(whole.initializer, out->mutable_initializer());
}

absl::StatusOr<core::PartitionedState> FromProto(const v1::PartitionedRecord& record) {
  core::PartitionedState whole;
  whole.name = record.name();
  VARSCOPE_ASSIGN_OR_RETURN(whole.dtype, service::FromProto(record.dtype()));
  whole.shape.assign(record.shape().begin(), record.shape().end());
  whole.partitions.assign(record.partitions().begin(), record.partitions().end());
  whole.trainable = record.trainable();
  whole.collections.assign(record.collections().begin(), record.collections().end());
  VARSCOPE_ASSIGN_OR_RETURN(whole.initializer, service::FromProto(record.initializer()));
  return whole;
}

PartSpreader::PartSpreader(core::VariableStore* store, const Routing* routing)
    : store_(store), routing_(routing) {}

PartSpreader::~PartSpreader() { Stop(); }

void PartSpreader::Start() {
  Reconcile();
  keeper_ = std::thread([this] { KeepLoop(); });
}

void PartSpreader::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (keeper_.joinable()) keeper_.join();
}

void PartSpreader::Reconcile() {
  std::vector<core::PartitionedState> records = store_->SpreadRecords();
  absl::MutexLock lock(&mu_);
  unconfirmed_.clear();
  // Deletions queued before the store was replaced concern variables the
  // restore may have brought back: their parts are checked anew instead.
  deletes_.clear();
  for (core::PartitionedState& record : records) {
    std::string name = record.name;
    unconfirmed_.emplace(std::move(name), std::move(record));
  }
  check_foreign_ = true;
}

std::vector<std::pair<int, v1::PartsRequest>> PartSpreader::CallsFor(
    const core::PartitionedState& whole, const std::vector<int>& parts, uint64_t txn) const {
  std::map<int, v1::PartsRequest> by_shard;
  for (int index : parts) {
    const int shard = routing_->OwnerOf(whole.part_names[index]);
    v1::PartsRequest& request = by_shard[shard];
    if (!request.has_whole()) {
      ToProto(whole, request.mutable_whole());
      request.set_txn(txn);
    }
    request.add_parts(index);
  }
  return {by_shard.begin(), by_shard.end()};
}

void PartSpreader::DropStaged(const core::PartitionedState& whole, const std::vector<int>& parts,
                              uint64_t txn) const {
  FanOut<v1::PartsResponse>(&routing_->peers(), kDrop, CallsFor(whole, parts, txn),
                            absl::Now() + kKeeperCallLimit,
                            [](std::vector<std::pair<grpc::Status, v1::PartsResponse>>) {});
}

void PartSpreader::GetVariable(grpc::ServerUnaryReactor* reactor,
                               std::shared_ptr<service::Admission> call,
                               const core::ScopeContext& scope, core::GetVariableRequest request,
                               v1::GetVariableResponse* response, absl::Time deadline) {
  auto finish = [reactor](const absl::Status& status) {
    service::LogFailure("varscope.v1.VariableStore.GetVariable", status);
    reactor->Finish(service::ToGrpcStatus(status));
  };
  const std::string full_name = core::JoinName(scope.name, request.name);
  {
    absl::MutexLock lock(&mu_);
    if (deletes_.count(full_name) > 0) {
      return finish(absl::UnavailableError(absl::StrCat(
          "the parts of the deleted ", full_name,
          " are still being deleted on a shard that does not answer; retry")));
    }
  }
  request.check_name = [call](absl::string_view name) { return call->CheckName(name); };
  absl::StatusOr<core::VariableStore::Begun> begun = store_->BeginGetVariable(scope, request);
  if (!begun.ok()) return finish(begun.status());
  if (begun->result.has_value()) {
    service::ToProto(*begun->result, response->mutable_variable());
    response->set_created(begun->result->created);
    return finish(absl::OkStatus());
  }
  std::shared_ptr<core::VariableStore::RemoteCreation> creation = std::move(begun->creation);
  const uint64_t txn = NewTxn();
  FanOut<v1::PartsResponse>(
      &routing_->peers(), kStage, CallsFor(creation->whole(), creation->remote_parts(), txn),
      CallDeadline(deadline, kPeerCallLimit),
      [this, creation, txn, reactor, call, response,
       deadline](std::vector<std::pair<grpc::Status, v1::PartsResponse>> answers) mutable {
        if (grpc::Status failed = FirstFailure(answers); !failed.ok()) {
          // Nothing was logged: drop what was staged and give the names back.
          DropStaged(creation->whole(), creation->remote_parts(), txn);
          spdlog::info("creating partitioned variable {} failed on another shard: {}",
                       creation->whole().name, failed.error_message());
          store_->AbandonCreation(std::make_unique<core::VariableStore::RemoteCreation>(
              std::move(*creation)));
          reactor->Finish(failed);
          return;
        }
        Publish(std::move(creation), txn, reactor, std::move(call), response, deadline);
      });
}

void PartSpreader::Publish(std::shared_ptr<core::VariableStore::RemoteCreation> creation,
                           uint64_t txn, grpc::ServerUnaryReactor* reactor,
                           std::shared_ptr<service::Admission> call,
                           v1::GetVariableResponse* response, absl::Time deadline) {
  const core::PartitionedState whole = creation->whole();
  const std::vector<int> remote = creation->remote_parts();
  absl::StatusOr<core::VariableInfo> info = store_->FinishCreation(
      std::make_unique<core::VariableStore::RemoteCreation>(std::move(*creation)));
  if (!info.ok()) {
    DropStaged(whole, remote, txn);
    service::LogFailure("varscope.v1.VariableStore.GetVariable", info.status());
    reactor->Finish(service::ToGrpcStatus(info.status()));
    return;
  }
  service::ToProto(*info, response->mutable_variable());
  response->set_created(true);
  // Logged here: from now on the parts exist. A shard that misses the
  // publish gets it from the keeper.
  FanOut<v1::PartsResponse>(
      &routing_->peers(), kPublish, CallsFor(whole, remote, txn),
      CallDeadline(deadline, kPeerCallLimit),
      [this, whole, reactor, call](std::vector<std::pair<grpc::Status, v1::PartsResponse>> answers) {
        if (grpc::Status failed = FirstFailure(answers); !failed.ok()) {
          spdlog::warn("publishing parts of {} failed ({}); retrying in the background",
                       whole.name, failed.error_message());
          const bool kept = HasRecord(whole.name);  // not deleted since
          absl::MutexLock lock(&mu_);
          if (kept) unconfirmed_[whole.name] = whole;
        }
        reactor->Finish(grpc::Status::OK);
      });
}

void PartSpreader::DeleteVariable(grpc::ServerUnaryReactor* reactor,
                                  std::shared_ptr<service::Admission> call,
                                  const std::string& name, v1::DeleteVariableResponse* response,
                                  absl::Time deadline) {
  constexpr char kMethod[] = "varscope.v1.VariableStore.DeleteVariable";
  std::optional<core::PartitionedState> whole;
  for (core::PartitionedState& record : store_->SpreadRecords()) {
    if (record.name == core::StripTensorSuffix(name)) whole = std::move(record);
  }
  absl::StatusOr<std::vector<std::string>> deleted = store_->Delete(name);
  if (!deleted.ok()) {
    service::LogFailure(kMethod, deleted.status());
    reactor->Finish(service::ToGrpcStatus(deleted.status()));
    return;
  }
  for (const std::string& n : *deleted) response->add_deleted(n);
  spdlog::info("deleted {}", name);
  if (!whole.has_value()) {
    reactor->Finish(grpc::Status::OK);
    return;
  }
  const std::vector<int> remote = RemoteParts(*whole);
  auto calls = CallsFor(*whole, remote, 0);
  {
    // Queued before they are sent: a creation of the name waits for them.
    absl::MutexLock lock(&mu_);
    unconfirmed_.erase(whole->name);
    deletes_[whole->name] = calls;
  }
  FanOut<v1::PartsResponse>(
      &routing_->peers(), kDelete, calls, CallDeadline(deadline, kPeerCallLimit),
      [this, calls, name = whole->name, reactor,
       call](std::vector<std::pair<grpc::Status, v1::PartsResponse>> answers) {
        std::vector<std::pair<int, v1::PartsRequest>> left;
        for (size_t i = 0; i < answers.size(); ++i) {
          if (!answers[i].first.ok()) left.push_back(calls[i]);
        }
        {
          absl::MutexLock lock(&mu_);
          if (left.empty()) {
            deletes_.erase(name);
          } else {
            spdlog::warn(
                "deleting parts of {} on {} shard(s) failed; retrying in the background", name,
                left.size());
            deletes_[name] = std::move(left);
          }
        }
        // The record is gone: the variable is deleted whatever the parts do.
        reactor->Finish(grpc::Status::OK);
      });
}

absl::Status PartSpreader::Stage(const v1::PartsRequest& request) {
  VARSCOPE_ASSIGN_OR_RETURN(core::PartitionedState whole, FromProto(request.whole()));
  if (request.txn() == 0) return absl::InvalidArgumentError("StageParts needs a txn");
  std::vector<int> staged;
  for (int index : request.parts()) {
    if (absl::Status s = store_->StagePart(whole, index, request.txn()); !s.ok()) {
      if (absl::IsUnavailable(s)) {  // a part of an earlier variable: ask its owner
        absl::MutexLock lock(&mu_);
        check_foreign_ = true;
      }
      for (int i : staged) {
        store_->DropPart(absl::StrCat(whole.name, "/part_", i), request.txn());
      }
      return s;
    }
    staged.push_back(index);
  }
  return absl::OkStatus();
}

absl::Status PartSpreader::Publish(const v1::PartsRequest& request) {
  VARSCOPE_ASSIGN_OR_RETURN(core::PartitionedState whole, FromProto(request.whole()));
  for (int index : request.parts()) {
    VARSCOPE_RETURN_IF_ERROR(store_->PublishPart(whole, index, request.txn()));
  }
  return absl::OkStatus();
}

absl::Status PartSpreader::Drop(const v1::PartsRequest& request) {
  for (int index : request.parts()) {
    store_->DropPart(absl::StrCat(request.whole().name(), "/part_", index), request.txn());
  }
  return absl::OkStatus();
}

absl::Status PartSpreader::Delete(const v1::PartsRequest& request) {
  for (int index : request.parts()) {
    const std::string part = absl::StrCat(request.whole().name(), "/part_", index);
    absl::StatusOr<core::VariableHandle> found = store_->Find(part);
    if (!found.ok()) continue;  // deleted already
    absl::StatusOr<std::vector<std::string>> removed =
        store_->Delete(part, /*foreign_part=*/true);
    if (!removed.ok() && !absl::IsNotFound(removed.status())) return removed.status();
  }
  return absl::OkStatus();
}

void PartSpreader::KeepLoop() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), kKeeperPeriod);
    if (stopping_) break;
    mu_.Unlock();
    for (const std::string& name : store_->DropStagedBefore(absl::Now() - kStagedLifetime)) {
      spdlog::warn("dropped part {}: staged by a creation that never finished", name);
    }
    PublishUnconfirmed();
    RetryDeletes();
    mu_.Lock();
    if (check_foreign_) {
      mu_.Unlock();
      const bool done = CheckForeignParts();
      mu_.Lock();
      if (done) check_foreign_ = false;
    }
  }
}

std::vector<int> PartSpreader::RemoteParts(const core::PartitionedState& whole) const {
  std::vector<int> remote;
  for (size_t i = 0; i < whole.part_names.size(); ++i) {
    if (routing_->OwnerOf(whole.part_names[i]) != routing_->self()) {
      remote.push_back(static_cast<int>(i));
    }
  }
  return remote;
}

bool PartSpreader::Stopping() {
  absl::MutexLock lock(&mu_);
  return stopping_;
}

bool PartSpreader::HasRecord(const std::string& name) const {
  absl::StatusOr<core::VariableInfo> info = store_->Describe(name);
  return info.ok() && info->partitioned;
}

bool PartSpreader::PublishUnconfirmed() {
  std::map<std::string, core::PartitionedState> pending;
  {
    absl::MutexLock lock(&mu_);
    pending = unconfirmed_;
  }
  bool all = true;
  for (const auto& [name, whole] : pending) {
    if (Stopping()) return false;
    if (!HasRecord(name)) {  // deleted meanwhile: its deletion covers the parts
      absl::MutexLock lock(&mu_);
      unconfirmed_.erase(name);
      continue;
    }
    const std::vector<int> remote = RemoteParts(whole);
    bool published = true;
    for (auto& [shard, request] : CallsFor(whole, remote, NewTxn())) {
      v1::PartsResponse response;
      const grpc::Status status = routing_->peers().CallAndWait(
          shard, kPublish, request, absl::Now() + kKeeperCallLimit, &response);
      if (!status.ok()) {
        published = false;
        spdlog::debug("publishing parts of {} on {}: {}", name,
                      routing_->peers().Describe(shard), status.error_message());
      }
    }
    absl::MutexLock lock(&mu_);
    if (published) {
      // Unless the variable was deleted or created anew meanwhile.
      auto it = unconfirmed_.find(name);
      if (it != unconfirmed_.end() && it->second.shape == whole.shape &&
          it->second.partitions == whole.partitions) {
        unconfirmed_.erase(it);
        spdlog::info("parts of {} published on every shard", name);
      }
    } else {
      all = false;
    }
  }
  return all;
}

bool PartSpreader::RetryDeletes() {
  std::map<std::string, std::vector<std::pair<int, v1::PartsRequest>>> pending;
  {
    absl::MutexLock lock(&mu_);
    pending = deletes_;
  }
  for (auto& [name, calls] : pending) {
    if (Stopping()) return false;
    std::vector<std::pair<int, v1::PartsRequest>> left;
    for (auto& [shard, request] : calls) {
      v1::PartsResponse response;
      if (!routing_->peers()
               .CallAndWait(shard, kDelete, request, absl::Now() + kKeeperCallLimit, &response)
               .ok()) {
        left.emplace_back(shard, request);
      }
    }
    absl::MutexLock lock(&mu_);
    auto it = deletes_.find(name);
    if (it == deletes_.end()) continue;  // a restore cleared it
    if (left.empty()) {
      deletes_.erase(it);
      spdlog::info("parts of the deleted {} deleted on every shard", name);
    } else {
      it->second = std::move(left);
    }
  }
  return true;
}

bool PartSpreader::CheckForeignParts() {
  bool done = true;
  for (const core::VariableStore::ForeignPart& part : store_->ForeignParts()) {
    if (Stopping()) return false;
    const std::string& whole = part.slice.full_name;
    const int owner = routing_->OwnerOf(whole);
    if (owner == routing_->self()) continue;  // its record would be here
    v1::DescribeVariableRequest request;
    request.set_name(whole);
    v1::Variable described;
    const grpc::Status status = routing_->peers().CallAndWait(
        owner, kDescribe, request, absl::Now() + kKeeperCallLimit, &described);
    bool claimed = status.ok() && described.partitioned();
    if (claimed) {
      claimed = std::any_of(described.parts().begin(), described.parts().end(),
                            [&](const v1::Variable& p) { return p.name() == part.name; });
    }
    if (status.ok() || status.error_code() == grpc::StatusCode::NOT_FOUND) {
      if (claimed) continue;
      if (absl::Status s = store_->DeleteForeignPart(part.name, part.version); s.ok()) {
        spdlog::warn("deleted part {}: its partitioned variable {} no longer has it",
                     part.name, whole);
      } else {
        done = false;
      }
    } else {
      done = false;  // the owner did not answer: ask again later
    }
  }
  return done;
}

}  // namespace varscope::cluster
