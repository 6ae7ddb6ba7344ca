#include "server/service/admin_service.h"

#include <algorithm>

#include "server/service/page_token.h"

#include <spdlog/spdlog.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

#include "server/core/base/status_macros.h"
#include "server/service/handle.h"
#include "server/service/status_convert.h"

namespace varscope::service {

Worker::Worker() : thread_([this] { Loop(); }) {}

Worker::~Worker() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void Worker::Post(std::function<void()> job) {
  absl::MutexLock lock(&mu_);
  jobs_.push_back(std::move(job));
}

void Worker::Loop() {
  for (;;) {
    std::function<void()> job;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !jobs_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (jobs_.empty()) return;  // stopping, and nothing left
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

void ToProto(const core::CheckpointInfo& info, v1::CheckpointInfo* out) {
  out->set_name(info.name);
  out->set_path(info.path);
  out->set_sequence(info.sequence);
  out->set_bytes(info.bytes);
  out->set_variables(info.variables);
  out->set_created(info.created);
}

template <typename Body>
grpc::ServerUnaryReactor* AdminService::Queue(Context* ctx, const char* method,
                                              bool needs_data_dir, Body body) {
  absl::StatusOr<Admission> admitted = gate_->Admit(*ctx, method);
  absl::Status refused = admitted.status();
  if (refused.ok() && needs_data_dir && checkpointer_ == nullptr) {
    refused = absl::FailedPreconditionError(
        "this server keeps no checkpoints: start varscoped with --data_dir");
  }
  if (!refused.ok()) return Finish(ctx, method, refused);
  // The job owns the admission, so the in-flight slot lasts until it ran.
  auto call = std::make_shared<Admission>(std::move(*admitted));
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  worker_->Post([=]() mutable {
    const absl::Status status = body(*call);
    LogFailure(method, status);
    reactor->Finish(ToGrpcStatus(status));
  });
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::Save(Context* ctx,
                                             const v1::SaveRequest* request,
                                             v1::CheckpointInfo* response) {
  return Queue(ctx, "varscope.v1.Admin.Save", true, [=](const Admission&) -> absl::Status {
    const absl::Time start = absl::Now();
    VARSCOPE_ASSIGN_OR_RETURN(core::CheckpointInfo info,
                              checkpointer_->Save(request->name()));
    spdlog::info("saved checkpoint {} on request: {} variables, {} bytes in {:.2f} s",
                 info.name, info.variables, info.bytes,
                 absl::ToDoubleSeconds(absl::Now() - start));
    ToProto(info, response);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminService::ListCheckpoints(
    Context* ctx, const v1::ListCheckpointsRequest* request,
    v1::ListCheckpointsResponse* response) {
  return Queue(ctx, "varscope.v1.Admin.ListCheckpoints", true, [=](const Admission&) -> absl::Status {
    VARSCOPE_ASSIGN_OR_RETURN(const size_t page_size, PageSize(request->page_size()));
    // Oldest first (by sequence); a page continues after the previous
    // page's last sequence, also if that checkpoint was pruned meanwhile.
    int64_t after = -1;
    if (!request->page_token().empty()) {
      VARSCOPE_ASSIGN_OR_RETURN(std::string text,
                                DecodeNameToken("checkpoints", request->page_token()));
      if (!absl::SimpleAtoi(text, &after)) {
        return absl::InvalidArgumentError("page_token is not a checkpoint page token");
      }
    }
    VARSCOPE_ASSIGN_OR_RETURN(std::vector<core::CheckpointInfo> all,
                              checkpointer_->List());
    auto it = std::find_if(all.begin(), all.end(), [&](const core::CheckpointInfo& c) {
      return c.sequence > after;
    });
    for (; it != all.end() &&
           static_cast<size_t>(response->checkpoints_size()) < page_size;
         ++it) {
      ToProto(*it, response->add_checkpoints());
    }
    if (it != all.end()) {
      response->set_next_page_token(EncodeNameToken(
          "checkpoints", absl::StrCat(response->checkpoints().rbegin()->sequence())));
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminService::Restore(
    Context* ctx, const v1::RestoreRequest* request,
    v1::RestoreResponse* response) {
  return Queue(ctx, "varscope.v1.Admin.Restore", true, [=](const Admission&) -> absl::Status {
    VARSCOPE_ASSIGN_OR_RETURN(core::RestoreReport report,
                              checkpointer_->Restore(request->name()));
    spdlog::info("restored {} variables ({} bytes) in {:.2f} s from {}",
                 report.variables, report.tensor_bytes, report.seconds,
                 report.checkpoint.path);
    ToProto(report.checkpoint, response->mutable_checkpoint());
    response->set_variables(report.variables);
    response->set_tensor_bytes(report.tensor_bytes);
    response->set_seconds(report.seconds);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminService::Import(Context* ctx,
                                               const v1::ImportRequest* request,
                                               v1::ImportResponse* response) {
  return Queue(ctx, "varscope.v1.Admin.Import", false, [=](const Admission& call) -> absl::Status {
    // Every imported name lies under the target scope.
    VARSCOPE_RETURN_IF_ERROR(call.CheckName(request->scope()));
    std::optional<bool> trainable;
    if (request->has_trainable()) trainable = request->trainable();
    VARSCOPE_ASSIGN_OR_RETURN(
        core::ImportReport report,
        core::ImportSafetensors(store_, env_, request->path(), request->scope(),
                                trainable));
    spdlog::info("imported {} variables ({} bytes) from {}", report.names.size(),
                 report.tensor_bytes, request->path());
    for (const std::string& name : report.names) response->add_names(name);
    response->set_tensor_bytes(report.tensor_bytes);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminService::GetStats(Context* ctx,
                                                 const v1::GetStatsRequest*,
                                                 v1::ServerStats* response) {
  return Handle(ctx, gate_, "varscope.v1.Admin.GetStats",
                [&](const Admission&) -> absl::Status {
    response->set_version(facts_.version);
    response->set_sessions(static_cast<int64_t>(sessions_->num_sessions()));
    response->set_variables(static_cast<int64_t>(store_->num_variables()));
    response->set_tensor_bytes(store_->total_bytes());
    response->set_max_memory_bytes(store_->options().max_memory_bytes);
    response->set_uptime_seconds(
        absl::ToDoubleSeconds(absl::Now() - facts_.started));
    response->set_auth_enabled(gate_->auth_enabled());
    response->set_tls_enabled(facts_.tls_enabled);
    response->set_calls_in_flight(gate_->limiter().total());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminService::ListSessions(Context* ctx,
                                                     const v1::ListSessionsRequest* request,
                                                     v1::ListSessionsResponse* response) {
  return Handle(ctx, gate_, "varscope.v1.Admin.ListSessions",
                [&](const Admission&) -> absl::Status {
    VARSCOPE_ASSIGN_OR_RETURN(const size_t page_size, PageSize(request->page_size()));
    SessionCursor after;
    if (!request->page_token().empty()) {
      VARSCOPE_ASSIGN_OR_RETURN(after, DecodeSessionToken(request->page_token()));
    }
    for (const core::SessionSummary& s : sessions_->ListSessions()) {
      const SessionCursor here{facts_.shard, s.id};
      if (!(after < here)) continue;
      if (static_cast<size_t>(response->sessions_size()) == page_size) {
        const v1::SessionSummary& last = response->sessions(response->sessions_size() - 1);
        response->set_next_page_token(EncodeSessionToken({last.shard(), last.id()}));
        break;
      }
      v1::SessionSummary* out = response->add_sessions();
      out->set_id(s.id);
      out->set_client_name(s.client_name);
      out->set_owner(s.owner);
      out->set_lease_seconds(absl::ToDoubleSeconds(s.lease));
      out->set_expires_in_seconds(absl::ToDoubleSeconds(s.expires_in));
      out->set_open_scopes(s.open_scopes);
      out->set_shard(facts_.shard);
    }
    return absl::OkStatus();
  });
}

}  // namespace varscope::service
