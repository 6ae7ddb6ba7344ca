// File: tensor_coding.h
// Zero-copy encoding of varscope.v1.Tensor for the raw data-plane methods
// (STYLE.md §2.2). The small fields and the tag and length of `data` are
// encoded into one slice; the tensor bytes follow as a second slice that
// points into the immutable TensorBuffer snapshot and holds a reference to
// it until gRPC has sent them. Below kCopyThreshold bytes the data is copied
// into the header slice instead (a reference costs more than the copy).
// The bytes on the wire are exactly what protobuf would produce, so the
// .proto stays the single source of truth (tests check this).
//
// Thread-safety: pure functions.
#ifndef VARSCOPE_SERVER_SERVICE_TENSOR_CODING_H_
#define VARSCOPE_SERVER_SERVICE_TENSOR_CODING_H_

#include <google/protobuf/message.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "server/core/tensor/tensor.h"
#include "server/core/tensor/types.h"

namespace varscope::service {

inline constexpr int64_t kCopyThreshold = 1024;

// Every field of varscope.v1.Tensor; `data` is `length` bytes at `bytes`,
// kept alive by `owner`.
struct TensorFrame {
  std::string name;
  int dtype = 0;
  core::Shape shape;
  uint64_t version = 0;
  bool unchanged = false;
  int64_t row_start = 0;
  int64_t offset = 0;
  int64_t total_bytes = 0;
  std::shared_ptr<const core::TensorBuffer> owner;
  const uint8_t* bytes = nullptr;
  int64_t length = 0;
};

// Appends one Tensor message's bytes to `slices`. With `field_number` > 0
// the message is framed as that length-delimited field of an enclosing
// message (PullResponse.tensors = 1). Returns the bytes appended.
size_t AppendTensor(const TensorFrame& frame, int field_number,
                    std::vector<grpc::Slice>* slices);

inline grpc::ByteBuffer ToByteBuffer(const std::vector<grpc::Slice>& slices) {
  return grpc::ByteBuffer(slices.data(), slices.size());
}

// Parses a request message from a raw handler's ByteBuffer.
absl::Status ParseRequest(const grpc::ByteBuffer& buffer,
                          google::protobuf::Message* message);

}  // namespace varscope::service

#endif  // VARSCOPE_SERVER_SERVICE_TENSOR_CODING_H_
