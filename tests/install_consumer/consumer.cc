// An outside program built against the installed varscope client (CMake's
// find_package(varscope) or pkg-config): it links, and a call reaches gRPC.
#include <iostream>

#include "varscope/client.h"

int main(int argc, char** argv) {
  // A port nothing listens on: the call must fail as UNAVAILABLE.
  varscope::ConnectionOptions options;
  options.rpc_timeout = absl::Seconds(2);
  // (MakeConnection asks the server for its topology, so it fails first.)
  auto connection = varscope::MakeConnection(argc > 1 ? argv[1] : "127.0.0.1:1", options);
  absl::Status status = connection.status();
  if (connection.ok()) status = (*connection)->CheckHealth({}).status();
  std::cout << varscope::DataTypeName(varscope::DataType::kFloat) << " "
            << absl::StatusCodeToString(status.code()) << "\n";
  return status.code() == absl::StatusCode::kUnavailable ? 0 : 1;
}
