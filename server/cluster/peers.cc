#include "server/cluster/peers.h"

#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/support/proto_buffer_reader.h>
#include <grpcpp/support/proto_buffer_writer.h>

#include <future>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/service/call_gate.h"

namespace varscope::cluster {
namespace {

std::shared_ptr<grpc::ChannelCredentials> CredentialsFor(const PeerSecurity& security) {
  if (!security.tls) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = security.root_pem;
  ssl.pem_cert_chain = security.cert_pem;
  ssl.pem_private_key = security.key_pem;
  return grpc::SslCredentials(ssl);
}

// One call in flight; deleted by its completion.
struct PeerCall {
  grpc::ClientContext context;
  grpc::ByteBuffer request;
  grpc::ByteBuffer response;
  Peers::Done done;
};

}  // namespace

Peers::Peers(const ClusterSpec& spec, const PeerSecurity& security)
    : spec_(spec), token_(security.token) {
  auto credentials = CredentialsFor(security);
  grpc::ChannelArguments args;
  // Forwarded tensors can be large: the shards' own message limit applies.
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_FRAME_SIZE, 1 << 20);
  // A restarted shard is reached again within a second (gRPC's default
  // backoff grows to two minutes); meanwhile calls to it fail at once.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // Self included: the local part of a request that spans shards takes
  // the same path as the others (a loopback hop, rare: clients split).
  for (int shard = 0; shard < spec_.size(); ++shard) {
    channels_.push_back(grpc::CreateCustomChannel(spec_.address(shard), credentials, args));
    stubs_.push_back(std::make_unique<grpc::GenericStub>(channels_.back()));
  }
}

std::string Peers::Describe(int shard) const {
  return absl::StrCat("shard ", shard, " (", spec_.address(shard), ")");
}

void Peers::Prepare(grpc::ClientContext* context, absl::Time deadline,
                    const service::Admission* on_behalf, bool hop) const {
  context->AddMetadata("authorization", absl::StrCat("Bearer ", token_));
  if (hop) context->AddMetadata(kHopKey, "1");
  if (on_behalf != nullptr) {
    const std::string owner = on_behalf->owner();
    if (!owner.empty()) context->AddMetadata(service::kOwnerKey, owner);
    const core::Principal* who = on_behalf->principal();
    if (who != nullptr && !who->prefixes.empty()) {
      context->AddMetadata(service::kPrefixesKey, absl::StrJoin(who->prefixes, ","));
    }
  }
  // A shard that is down fails the call at once, UNAVAILABLE naming it
  // (a caller without a deadline, e.g. grpcurl, would otherwise hang).
  if (deadline != absl::InfiniteFuture()) {
    context->set_deadline(absl::ToChronoTime(deadline));
  }
}

void Peers::Call(int shard, const std::string& method, grpc::ByteBuffer request,
                 absl::Time deadline, Done done, const service::Admission* on_behalf,
                 bool hop) {
  auto* call = new PeerCall;
  call->request = std::move(request);
  call->done = std::move(done);
  Prepare(&call->context, deadline, on_behalf, hop);
  const std::string who = Describe(shard);
  stubs_[shard]->UnaryCall(
      &call->context, method, grpc::StubOptions(), &call->request, &call->response,
      [call, who](grpc::Status status) {
        // Our servers always attach error details; none means the shard
        // itself was not reached.
        if (!status.ok() && status.error_details().empty() &&
            (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
             status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED)) {
          status = grpc::Status(status.error_code(),
                                absl::StrCat(who, " did not answer: ", status.error_message()));
        }
        call->done(status, std::move(call->response));
        delete call;
      });
}

grpc::ByteBuffer Serialize(const google::protobuf::Message& message) {
  grpc::ByteBuffer buffer;
  bool own = false;
  grpc::SerializationTraits<google::protobuf::Message>::Serialize(message, &buffer, &own);
  return buffer;
}

bool Parse(const grpc::ByteBuffer& buffer, google::protobuf::Message* message) {
  grpc::ByteBuffer copy(buffer);
  return grpc::SerializationTraits<google::protobuf::Message>::Deserialize(&copy, message).ok();
}

}  // namespace varscope::cluster
