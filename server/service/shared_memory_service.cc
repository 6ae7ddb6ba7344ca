#include "server/service/shared_memory_service.h"

#include <spdlog/spdlog.h>

#include <cstring>
#include <new>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/core/base/error_info.h"
#include "server/core/base/status_macros.h"
#include "server/service/data_convert.h"
#include "server/service/handle.h"

namespace varscope::service {

namespace {

// Shards never use shared memory with each other; a peer acting for a
// client must not reach that client's segments either.
absl::Status RefusePeers(const Admission& call) {
  if (!call.peer()) return absl::OkStatus();
  return absl::PermissionDeniedError("shard-to-shard calls do not use shared memory");
}

}  // namespace

absl::StatusOr<absl::Span<uint8_t>> SharedMemoryService::RegionOf(
    const Admission& call, const v1::Region& region,
    std::shared_ptr<core::SharedSegment>* segment) {
  VARSCOPE_RETURN_IF_ERROR(RefusePeers(call));
  absl::StatusOr<std::shared_ptr<core::SharedSegment>> found =
      segments_->Find(region.segment(), call.owner());
  if (found.status().code() == absl::StatusCode::kNotFound) {
    // Most likely attached to this daemon before a restart: the client
    // attaches again, and this call goes over gRPC.
    return core::WithReason(absl::FailedPreconditionError(found.status().message()),
                            core::kUseGrpcTransfer, {{"segment", "unknown"}});
  }
  VARSCOPE_RETURN_IF_ERROR(found.status());
  *segment = *std::move(found);
  return (*segment)->Region(region.offset(), region.length());
}

grpc::ServerUnaryReactor* SharedMemoryService::Attach(Context* ctx, const v1::AttachRequest*,
                                                      v1::AttachResponse* response) {
  return Handle(ctx, gate_, "varscope.v1.SharedMemory.Attach",
                [&](const Admission& call) -> absl::Status {
    VARSCOPE_RETURN_IF_ERROR(RefusePeers(call));
    response->set_socket_name(socket_->name());
    response->set_ticket(segments_->IssueTicket(call.owner()));
    response->set_max_segment_bytes(segments_->limits().max_segment_bytes);
    spdlog::debug("shared memory: ticket for {} ({})", ctx->peer(),
                  call.owner().empty() ? "no token" : "token " + call.owner());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* SharedMemoryService::Pull(Context* ctx,
                                                    const v1::SharedPullRequest* request,
                                                    v1::SharedPullResponse* response) {
  return Handle(ctx, gate_, "varscope.v1.SharedMemory.Pull",
                [&](const Admission& call) -> absl::Status {
    const std::string& name = request->variable().name();
    VARSCOPE_RETURN_IF_ERROR(call.CheckName(name));
    std::shared_ptr<void> hold;
    if (route_ != nullptr) VARSCOPE_RETURN_IF_ERROR(route_->ServeHere(*ctx, name, false, &hold));
    std::shared_ptr<core::SharedSegment> segment;
    VARSCOPE_ASSIGN_OR_RETURN(absl::Span<uint8_t> into,
                              RegionOf(call, request->into(), &segment));
    VARSCOPE_ASSIGN_OR_RETURN(core::ReadResult read, data_->Read(FromProto(request->variable())));
    if (!read.unchanged) {
      if (static_cast<uint64_t>(read.length) > into.size()) {
        // Over gRPC the client reports the size it did not expect.
        return core::WithReason(
            absl::FailedPreconditionError(absl::StrCat(read.name, " is ", read.length,
                                                       " bytes; the region holds ", into.size())),
            core::kUseGrpcTransfer);
      }
      std::memcpy(into.data(), read.buffer->data() + read.offset, read.length);
    }
    v1::Tensor* tensor = response->mutable_tensor();
    tensor->set_name(read.name);
    tensor->set_dtype(static_cast<v1::DataType>(read.dtype));
    for (int64_t d : read.unchanged ? read.shape : read.data_shape) tensor->add_shape(d);
    tensor->set_version(read.version);
    tensor->set_unchanged(read.unchanged);
    tensor->set_row_start(read.row_start);
    tensor->set_total_bytes(read.length);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* SharedMemoryService::Push(Context* ctx,
                                                    const v1::SharedPushRequest* request,
                                                    v1::PushResponse* response) {
  return Handle(ctx, gate_, "varscope.v1.SharedMemory.Push",
                [&](const Admission& call) -> absl::Status {
    const v1::Update& update = request->update();
    VARSCOPE_RETURN_IF_ERROR(call.CheckName(update.name()));
    if (!update.data().empty()) {
      return absl::InvalidArgumentError(
          "a shared-memory push carries its data in the region, not in update.data");
    }
    std::shared_ptr<void> hold;  // a cluster's cut ticket, until applied
    if (route_ != nullptr) {
      VARSCOPE_RETURN_IF_ERROR(route_->ServeHere(*ctx, update.name(), true, &hold));
    }
    std::shared_ptr<core::SharedSegment> segment;
    VARSCOPE_ASSIGN_OR_RETURN(absl::Span<uint8_t> data, RegionOf(call, request->data(), &segment));
    VARSCOPE_ASSIGN_OR_RETURN(core::Update u, FromProto(update));
    // Copied out once before anything reads it: the client could change the
    // segment during the push, and the log and the value must agree. A
    // whole-tensor assign installs that copy as the new value.
    VARSCOPE_ASSIGN_OR_RETURN(int64_t expected, data_->DataBytes(u));
    if (data.size() != static_cast<uint64_t>(expected)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the update of ", update.name(), " needs ", expected, " bytes; the region has ",
          data.size(), "; nothing applied"));
    }
    std::shared_ptr<core::TensorBuffer> copy;
    try {
      copy = data_->NewBuffer(data.size());
    } catch (const std::bad_alloc&) {
      return absl::ResourceExhaustedError("out of memory for the push");
    }
    std::memcpy(copy->data(), data.data(), data.size());
    if (u.op == core::UpdateOp::kAssign && !u.rows && !u.indices) {
      u.owned_value = copy;
    } else {
      u.data = absl::string_view(reinterpret_cast<const char*>(copy->data()), copy->size());
    }
    std::vector<core::Update> updates;
    updates.push_back(std::move(u));
    VARSCOPE_ASSIGN_OR_RETURN(std::vector<core::UpdateResult> results,
                              data_->Push(std::move(updates)));
    for (const core::UpdateResult& r : results) ToProto(r, response->add_results());
    return absl::OkStatus();
  });
}

}  // namespace varscope::service
