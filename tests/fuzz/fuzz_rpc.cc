// Fuzzes every RPC end to end: the first byte picks a method of
// VariableStore, VariableData or Admin, the rest is sent as its serialized
// request to an in-process varscope server over 127.0.0.1. This covers
// request decoding (protobuf and the hand-written raw-method decoders),
// the call gate, conversion and core dispatch. The server starts with a few
// variables and one session (id 1, its root handle 1, scopes a, b, c as
// handles 2..4) so that inputs can reach deep paths. Any crash, sanitizer report or hang is a finding; every call
// must end with a status.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "google/protobuf/descriptor.h"
#include "server/service/server.h"
#include "tests/raw_call.h"
#include "varscope/client.h"

namespace {

struct Target {
  std::unique_ptr<varscope::service::Server> server;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<grpc::GenericStub> stub;
  std::vector<std::string> methods;  // "/package.Service/Method"
};

Target* Start() {
  auto* t = new Target();
  varscope::service::ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.store.max_variable_bytes = 1 << 20;
  options.store.max_memory_bytes = 32 << 20;
  options.sessions.first_session_id = 1;
  options.sessions.first_scope_handle = 1;
  options.sessions.max_sessions = 64;
  options.sessions.max_open_scopes = 64;
  options.max_message_bytes = 1 << 20;
  auto server = varscope::service::Server::Start(options);
  if (!server.ok()) std::abort();
  t->server = *std::move(server);
  t->channel = grpc::CreateChannel(t->server->address(),
                                   grpc::InsecureChannelCredentials());
  t->stub = std::make_unique<grpc::GenericStub>(t->channel);
  for (const char* service : {"varscope.v1.VariableStore",
                              "varscope.v1.VariableData", "varscope.v1.Admin"}) {
    const auto* d =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(service);
    if (d == nullptr) std::abort();
    for (int i = 0; i < d->method_count(); ++i) {
      t->methods.push_back(std::string("/") + service + "/" + d->method(i)->name());
    }
  }
  // Something to find: a session with scopes, dense and sparse variables.
  varscope::ClientOptions client_options;
  client_options.keep_alive = false;
  client_options.lease = absl::Hours(1);
  auto client = varscope::Client::Connect(t->server->address(), client_options);
  if (!client.ok()) std::abort();
  (void)(*client)->GetVariable("w", {4, 3}, varscope::DataType::kFloat);
  (void)(*client)->GetVariable("emb", {16, 2}, varscope::DataType::kDouble);
  varscope::VariableOptions scalar;
  scalar.scalar = true;
  scalar.dtype = varscope::DataType::kInt64;
  (void)(*client)->GetVariable("s/step", scalar);
  static auto* keep = new std::vector<varscope::VariableScope>();
  for (const char* name : {"a", "b", "c"}) {
    auto scope = varscope::VariableScope::Open(**client, name);
    if (scope.ok()) keep->push_back(*std::move(scope));
  }
  static auto* keep_client = client->release();
  (void)keep_client;
  return t;
}

Target& target() {
  static Target* t = Start();
  return *t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Target& t = target();
  const std::string& method = t.methods[data[0] % t.methods.size()];
  // Waits and watches park until the deadline; keep it short.
  (void)varscope::testing::RawUnaryCall(
      *t.stub, method,
      std::string(reinterpret_cast<const char*>(data) + 1, size - 1),
      std::chrono::milliseconds(50));
  return 0;
}
