// File: raw_stream.h (internal)
// Streaming calls with raw grpc::ByteBuffer messages over gRPC's generic
// callback stub, so large tensors move without protobuf copies: pushed
// chunks point at the caller's memory, pulled chunks are decoded straight
// into the caller's buffer. Used by the client for PullStream and
// PushStream, and by bench/ for the bare-gRPC baseline.
//
// Thread-safety: each call is independent; RawStreamingCall blocks the
// calling thread until the call ends, StartRawStreamingCall does not.
#ifndef VARSCOPE_CLIENT_SRC_RAW_STREAM_H_
#define VARSCOPE_CLIENT_SRC_RAW_STREAM_H_

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace varscope::internal {

// Fills the next request; returns false when there are no more.
using NextRequest = std::function<bool(grpc::ByteBuffer* out)>;
// Consumes one response; an error cancels the call and is returned.
using OnResponse = std::function<absl::Status(const grpc::ByteBuffer& in)>;

// Runs `method` ("/pkg.Service/Method") as a stream of raw messages: sends
// every request from `next` then half-closes, hands every response to
// `on_response`, and returns the call's status.
absl::Status RawStreamingCall(grpc::GenericStub* stub,
                              grpc::ClientContext* context,
                              const std::string& method, NextRequest next,
                              OnResponse on_response);
// The same without blocking: `done` gets the status on one of gRPC's
// threads when the call ends. `context` (and whatever the callbacks use)
// must live until then.
void StartRawStreamingCall(grpc::GenericStub* stub, grpc::ClientContext* context,
                           const std::string& method, NextRequest next,
                           OnResponse on_response,
                           std::function<void(absl::Status)> done);

// The wire bytes of a length-delimited field `field` holding `n` bytes at
// `data`: a small header slice plus a slice pointing at `data` (no copy;
// `data` must outlive the write).
grpc::ByteBuffer BytesField(int field, const void* data, size_t n);

// varscope.v1.Tensor decoded with its data copied straight into `out`.
struct TensorChunk {
  std::string name;
  int dtype = 0;
  std::vector<int64_t> shape;
  uint64_t version = 0;
  bool unchanged = false;
  int64_t row_start = 0;
  int64_t offset = 0;
  int64_t total_bytes = 0;
  int64_t data_bytes = 0;
};
// Decodes one Tensor message; its data lands at out + offset. Fails when
// the data would fall outside [out, out + capacity). Expects fields in
// number order (data, field 15, last), as protobuf and varscoped write.
absl::Status DecodeTensorChunk(const grpc::ByteBuffer& in, uint8_t* out,
                               size_t capacity, TensorChunk* chunk);

}  // namespace varscope::internal

#endif  // VARSCOPE_CLIENT_SRC_RAW_STREAM_H_
