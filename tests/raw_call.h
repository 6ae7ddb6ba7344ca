// One unary call with a raw request body, over gRPC's generic stub: for
// tests and fuzzers that send bytes no typed stub would (garbage, empty
// requests, any method by name).
#ifndef VARSCOPE_TESTS_RAW_CALL_H_
#define VARSCOPE_TESTS_RAW_CALL_H_

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"

namespace varscope::testing {

// Calls `method` ("/package.Service/Method") with `body` and waits for the
// status. `authorization` ("" = none) is sent as that metadata; the
// response bytes go to `response` if given.
inline grpc::Status RawUnaryCall(grpc::GenericStub& stub, const std::string& method,
                                 const std::string& body,
                                 std::chrono::milliseconds timeout,
                                 const std::string& authorization = "",
                                 std::string* response = nullptr) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  if (!authorization.empty()) ctx.AddMetadata("authorization", authorization);
  grpc::Slice slice(body);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer reply;
  absl::Notification done;
  grpc::Status status;
  stub.UnaryCall(&ctx, method, grpc::StubOptions(), &request, &reply,
                 [&](grpc::Status s) {
                   status = std::move(s);
                   done.Notify();
                 });
  done.WaitForNotification();
  if (status.ok() && response != nullptr) {
    std::vector<grpc::Slice> slices;
    (void)reply.Dump(&slices);
    response->clear();
    for (const grpc::Slice& s : slices) {
      response->append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
  }
  return status;
}

}  // namespace varscope::testing

#endif  // VARSCOPE_TESTS_RAW_CALL_H_
