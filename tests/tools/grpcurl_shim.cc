// A stand-in for grpcurl (which Debian does not package) for the README
// walkthrough test: it takes grpcurl's command line for the calls the
// README makes and, like grpcurl, learns every type from the server's
// reflection service: nothing about varscope is compiled in.
//
//   grpcurl -plaintext [-d JSON] [-H 'name: value'] [-format-error] ADDR list|describe SYMBOL|SERVICE/METHOD
//
// Unary methods only. Output as grpcurl prints it (JSON with lowerCamel
// names, defaults omitted); an RPC error prints "ERROR:" with the code and
// message to stderr and exits 64 + the code, as grpcurl does.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/rpc_method.h>
#include <grpcpp/support/proto_buffer_reader.h>
#include <grpcpp/support/proto_buffer_writer.h>
#include <grpcpp/support/sync_stream.h>
#include <grpcpp/impl/codegen/proto_utils.h>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/descriptor_database.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <future>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "varscope_testing/reflection.pb.h"

namespace {

namespace refl = ::varscope::testing::reflection;
namespace pb = ::google::protobuf;

const char* const kCodeNames[] = {
    "OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound",
    "AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted",
    "OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated"};

int Usage(const std::string& why) {
  std::cerr << "grpcurl (shim): " << why << "\n"
            << "usage: grpcurl -plaintext [-d JSON] [-H 'name: value'] [-format-error] "
               "ADDR list|describe SYMBOL|SERVICE/METHOD\n";
  return 2;
}

// The server's reflection service, one request at a time on one stream.
class Reflection {
 public:
  explicit Reflection(const std::shared_ptr<grpc::Channel>& channel)
      : method_("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                grpc::internal::RpcMethod::BIDI_STREAMING, channel),
        stream_(grpc::internal::ClientReaderWriterFactory<
                refl::ServerReflectionRequest,
                refl::ServerReflectionResponse>::Create(channel.get(), method_, &ctx_)) {}
  ~Reflection() {
    stream_->WritesDone();
    (void)stream_->Finish();
  }

  bool Ask(const refl::ServerReflectionRequest& request, refl::ServerReflectionResponse* out) {
    if (!stream_->Write(request) || !stream_->Read(out)) return false;
    if (out->has_error_response()) {
      std::cerr << "Failed to resolve: " << out->error_response().error_message() << "\n";
      return false;
    }
    return true;
  }
  std::vector<std::string> Services() {
    refl::ServerReflectionRequest request;
    request.set_list_services("*");
    refl::ServerReflectionResponse response;
    std::vector<std::string> out;
    if (!Ask(request, &response)) return out;
    for (const auto& s : response.list_services_response().service()) out.push_back(s.name());
    std::sort(out.begin(), out.end());
    return out;
  }
  // Adds the file defining `symbol` and everything it imports to `db`.
  bool Load(const std::string& symbol, pb::SimpleDescriptorDatabase* db) {
    refl::ServerReflectionRequest request;
    request.set_file_containing_symbol(symbol);
    return LoadFrom(request, db);
  }

 private:
  bool LoadFrom(const refl::ServerReflectionRequest& request, pb::SimpleDescriptorDatabase* db) {
    refl::ServerReflectionResponse response;
    if (!Ask(request, &response)) return false;
    std::vector<std::string> imports;
    for (const std::string& bytes : response.file_descriptor_response().file_descriptor_proto()) {
      pb::FileDescriptorProto file;
      if (!file.ParseFromString(bytes)) return false;
      if (!loaded_.insert(file.name()).second) continue;
      for (const std::string& dep : file.dependency()) imports.push_back(dep);
      db->Add(file);
    }
    for (const std::string& dep : imports) {
      if (loaded_.count(dep) > 0) continue;
      refl::ServerReflectionRequest next;
      next.set_file_by_filename(dep);
      if (!LoadFrom(next, db)) return false;
    }
    return true;
  }

  grpc::ClientContext ctx_;
  const grpc::internal::RpcMethod method_;
  std::unique_ptr<grpc::ClientReaderWriter<refl::ServerReflectionRequest,
                                           refl::ServerReflectionResponse>>
      stream_;
  std::set<std::string> loaded_;
};

}  // namespace

int main(int argc, char** argv) {
  bool plaintext = false, format_error = false;
  std::string data = "{}";
  std::vector<std::pair<std::string, std::string>> headers;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-plaintext") {
      plaintext = true;
    } else if (arg == "-format-error") {
      format_error = true;
    } else if (arg == "-d" && i + 1 < argc) {
      data = argv[++i];
    } else if (arg == "-H" && i + 1 < argc) {
      const std::string header = argv[++i];
      const size_t colon = header.find(':');
      if (colon == std::string::npos) return Usage("-H wants 'name: value'");
      std::string name = header.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(), ::tolower);
      const size_t value = header.find_first_not_of(' ', colon + 1);
      headers.emplace_back(name, value == std::string::npos ? "" : header.substr(value));
    } else if (!arg.empty() && arg[0] == '-') {
      return Usage("flag " + arg + " is not supported by this shim");
    } else {
      positional.push_back(arg);
    }
  }
  if (!plaintext) return Usage("only -plaintext is supported");
  if (positional.size() < 2) return Usage("missing address or verb");
  auto channel = grpc::CreateChannel(positional[0], grpc::InsecureChannelCredentials());
  Reflection reflection(channel);
  const std::string& verb = positional[1];

  if (verb == "list") {
    for (const std::string& s : reflection.Services()) std::cout << s << "\n";
    return 0;
  }
  pb::SimpleDescriptorDatabase db;
  if (verb == "describe") {
    if (positional.size() < 3) return Usage("describe what?");
    const std::string& symbol = positional[2];
    if (!reflection.Load(symbol, &db)) return 1;
    pb::DescriptorPool pool(&db);
    if (const auto* s = pool.FindServiceByName(symbol)) {
      std::cout << symbol << " is a service:\n" << s->DebugString();
    } else if (const auto* m = pool.FindMessageTypeByName(symbol)) {
      std::cout << symbol << " is a message:\n" << m->DebugString();
    } else {
      std::cerr << "Symbol not found: " << symbol << "\n";
      return 1;
    }
    return 0;
  }

  // SERVICE/METHOD (grpcurl also accepts SERVICE.METHOD).
  std::string service = verb, method_name;
  size_t cut = verb.find('/');
  if (cut == std::string::npos) cut = verb.rfind('.');
  if (cut == std::string::npos) return Usage("not a method: " + verb);
  service = verb.substr(0, cut);
  method_name = verb.substr(cut + 1);
  if (!reflection.Load(service, &db)) return 1;
  pb::DescriptorPool pool(&db);
  const pb::ServiceDescriptor* s = pool.FindServiceByName(service);
  const pb::MethodDescriptor* method = s != nullptr ? s->FindMethodByName(method_name) : nullptr;
  if (method == nullptr) {
    std::cerr << "Failed to find method " << verb << "\n";
    return 1;
  }
  if (method->client_streaming() || method->server_streaming()) {
    return Usage("streaming methods are not supported by this shim");
  }
  pb::DynamicMessageFactory factory(&pool);
  std::unique_ptr<pb::Message> request(factory.GetPrototype(method->input_type())->New());
  if (auto st = pb::util::JsonStringToMessage(data, request.get()); !st.ok()) {
    std::cerr << "Error invoking method \"" << verb << "\": error getting request data: "
              << st.ToString() << "\n";
    return 1;
  }
  std::string bytes;
  request->SerializeToString(&bytes);
  grpc::Slice slice(bytes);
  grpc::ByteBuffer send(&slice, 1), receive;
  grpc::ClientContext ctx;
  for (const auto& [name, value] : headers) ctx.AddMetadata(name, value);
  grpc::GenericStub stub(channel);
  std::promise<grpc::Status> done;
  stub.UnaryCall(&ctx, "/" + service + "/" + method_name, grpc::StubOptions(), &send, &receive,
                 [&done](grpc::Status status) { done.set_value(std::move(status)); });
  const grpc::Status status = done.get_future().get();
  if (!status.ok()) {
    const int code = static_cast<int>(status.error_code());
    if (format_error) {
      std::cerr << "{\n  \"code\": " << code << ",\n  \"message\": \""
                << status.error_message() << "\"\n}\n";
    } else {
      std::cerr << "ERROR:\n  Code: " << (code >= 0 && code < 17 ? kCodeNames[code] : "Unknown")
                << "\n  Message: " << status.error_message() << "\n";
    }
    return 64 + code;
  }
  std::vector<grpc::Slice> slices;
  std::string reply;
  if (!receive.Dump(&slices).ok()) return 1;
  for (const grpc::Slice& piece : slices) {
    reply.append(reinterpret_cast<const char*>(piece.begin()), piece.size());
  }
  std::unique_ptr<pb::Message> response(factory.GetPrototype(method->output_type())->New());
  if (!response->ParseFromString(reply)) {
    std::cerr << "cannot parse the response as " << method->output_type()->full_name() << "\n";
    return 1;
  }
  std::string json;
  pb::util::JsonPrintOptions options;
  options.add_whitespace = true;
  (void)pb::util::MessageToJsonString(*response, &json, options);
  std::cout << json;
  return 0;
}
