#include "server/cluster/shared_memory_route.h"

#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "server/cluster/cut_gate.h"
#include "server/cluster/routing.h"
#include "server/core/base/error_info.h"

namespace varscope::cluster {
namespace {

absl::Status UseGrpc(const std::string& why) {
  return core::WithReason(absl::FailedPreconditionError(why), core::kUseGrpcTransfer);
}

class ShardRoute final : public service::SharedMemoryRoute {
 public:
  ShardRoute(Routing* routing, CutGate* cuts) : routing_(routing), cuts_(cuts) {}

  absl::Status ServeHere(const grpc::CallbackServerContext& ctx, const std::string& name,
                         bool push, std::shared_ptr<void>* hold) override {
    if (!routing_->CheckTopology(ctx).ok()) {
      return UseGrpc("the client routes by another slot table");
    }
    const int owner = routing_->OwnerOf(name);
    if (owner != routing_->self()) {
      return UseGrpc(absl::StrCat(name, " lives on shard ", owner, ", not this one"));
    }
    if (push) {
      std::optional<CutGate::Ticket> ticket = cuts_->TryEnter();
      if (!ticket.has_value()) return UseGrpc("a cluster checkpoint is being cut");
      *hold = std::make_shared<CutGate::Ticket>(*std::move(ticket));
    }
    return absl::OkStatus();
  }

 private:
  Routing* const routing_;  // Not owned.
  CutGate* const cuts_;     // Not owned.
};

}  // namespace

std::unique_ptr<service::SharedMemoryRoute> MakeSharedMemoryRoute(Routing* routing,
                                                                  CutGate* cuts) {
  return std::make_unique<ShardRoute>(routing, cuts);
}

}  // namespace varscope::cluster
