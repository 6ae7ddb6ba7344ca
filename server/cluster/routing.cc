#include "server/cluster/routing.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/core/base/error_info.h"
#include "server/service/status_convert.h"

namespace varscope::cluster {
namespace {

absl::string_view Metadata(const grpc::ServerContextBase& ctx, absl::string_view key) {
  const auto& metadata = ctx.client_metadata();
  auto it = metadata.find(grpc::string_ref(key.data(), key.size()));
  if (it == metadata.end()) return {};
  return absl::string_view(it->second.data(), it->second.size());
}

}  // namespace

bool Routing::FromPeer(const grpc::ServerContextBase& ctx) const {
  return !Metadata(ctx, kHopKey).empty() && gate_->IsPeer(ctx);
}

absl::Status Routing::CheckTopology(const grpc::ServerContextBase& ctx) const {
  const absl::string_view sent = Metadata(ctx, kTopologyKey);
  if (sent.empty()) return absl::OkStatus();
  uint64_t version = 0;
  if (absl::SimpleAtoi(sent, &version) && version == spec().table().version()) {
    return absl::OkStatus();
  }
  return core::WithReason(
      absl::FailedPreconditionError(absl::StrCat(
          "the client routed by slot table ", sent, " but the cluster's is ",
          spec().table().version(), "; fetch the topology again (Cluster.GetTopology)")),
      "TOPOLOGY_CHANGED", {{"version", absl::StrCat(spec().table().version())}});
}

absl::Time Routing::DeadlineOf(const grpc::ServerContextBase& ctx) {
  const auto deadline = ctx.deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(deadline);
}

grpc::ServerUnaryReactor* Routing::ForwardRaw(grpc::CallbackServerContext* ctx,
                                              service::Admission call, int shard,
                                              const std::string& method,
                                              const grpc::ByteBuffer& request,
                                              grpc::ByteBuffer* response) const {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  auto held = std::make_shared<service::Admission>(std::move(call));
  peers_->Call(shard, method, request, DeadlineOf(*ctx),
               [reactor, response, held](const grpc::Status& status, grpc::ByteBuffer bytes) {
                 *response = std::move(bytes);
                 reactor->Finish(status);
               },
               held.get());
  return reactor;
}

grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* ctx,
                                    const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(service::ToGrpcStatus(status));
  return reactor;
}

}  // namespace varscope::cluster
