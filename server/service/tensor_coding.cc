#include "server/service/tensor_coding.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <grpcpp/support/proto_buffer_reader.h>

#include "absl/strings/str_cat.h"

namespace varscope::service {
namespace {

using google::protobuf::io::CodedOutputStream;
using google::protobuf::io::StringOutputStream;

constexpr uint32_t kVarint = 0;
constexpr uint32_t kLengthDelimited = 2;

uint32_t Tag(int field, uint32_t wire_type) {
  return (static_cast<uint32_t>(field) << 3) | wire_type;
}

// Field numbers of varscope.v1.Tensor.
enum TensorField {
  kName = 1,
  kDType = 2,
  kShape = 3,
  kVersion = 4,
  kUnchanged = 5,
  kRowStart = 6,
  kOffset = 7,
  kTotalBytes = 8,
  kData = 15,
};

// Everything but the data bytes themselves, in field order, skipping
// proto3 defaults as protobuf does.
void EncodeHeader(const TensorFrame& f, CodedOutputStream* out) {
  if (!f.name.empty()) {
    out->WriteTag(Tag(kName, kLengthDelimited));
    out->WriteVarint32(static_cast<uint32_t>(f.name.size()));
    out->WriteString(f.name);
  }
  if (f.dtype != 0) {
    out->WriteTag(Tag(kDType, kVarint));
    out->WriteVarint64(static_cast<uint64_t>(static_cast<int64_t>(f.dtype)));
  }
  if (!f.shape.empty()) {
    size_t packed = 0;
    for (int64_t d : f.shape) {
      packed += CodedOutputStream::VarintSize64(static_cast<uint64_t>(d));
    }
    out->WriteTag(Tag(kShape, kLengthDelimited));
    out->WriteVarint64(packed);
    for (int64_t d : f.shape) out->WriteVarint64(static_cast<uint64_t>(d));
  }
  auto varint_field = [&](int field, uint64_t value) {
    if (value == 0) return;
    out->WriteTag(Tag(field, kVarint));
    out->WriteVarint64(value);
  };
  varint_field(kVersion, f.version);
  varint_field(kUnchanged, f.unchanged ? 1 : 0);
  varint_field(kRowStart, static_cast<uint64_t>(f.row_start));
  varint_field(kOffset, static_cast<uint64_t>(f.offset));
  varint_field(kTotalBytes, static_cast<uint64_t>(f.total_bytes));
  if (f.length > 0) {
    out->WriteTag(Tag(kData, kLengthDelimited));
    out->WriteVarint64(static_cast<uint64_t>(f.length));
  }
}

void ReleaseBuffer(void* user_data) {
  delete static_cast<std::shared_ptr<const core::TensorBuffer>*>(user_data);
}

}  // namespace

size_t AppendTensor(const TensorFrame& frame, int field_number,
                    std::vector<grpc::Slice>* slices) {
  std::string header;
  {
    StringOutputStream stream(&header);
    CodedOutputStream out(&stream);
    EncodeHeader(frame, &out);
  }
  const bool copy = frame.length < kCopyThreshold;
  std::string head;
  {
    StringOutputStream stream(&head);
    CodedOutputStream out(&stream);
    if (field_number > 0) {
      out.WriteTag(Tag(field_number, kLengthDelimited));
      out.WriteVarint64(header.size() + static_cast<uint64_t>(frame.length));
    }
    out.WriteString(header);
    if (copy && frame.length > 0) {
      out.WriteRaw(frame.bytes, static_cast<int>(frame.length));
    }
  }
  const size_t total = head.size() + (copy ? 0 : frame.length);
  slices->emplace_back(head);
  if (!copy) {
    slices->emplace_back(
        const_cast<uint8_t*>(frame.bytes), static_cast<size_t>(frame.length),
        &ReleaseBuffer,
        new std::shared_ptr<const core::TensorBuffer>(frame.owner));
  }
  return total;
}

absl::Status ParseRequest(const grpc::ByteBuffer& buffer,
                          google::protobuf::Message* message) {
  grpc::ByteBuffer copy(buffer);  // shares slices; the reader consumes
  grpc::ProtoBufferReader reader(&copy);
  if (!message->ParseFromZeroCopyStream(&reader)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the request is not a valid ", message->GetTypeName()));
  }
  return absl::OkStatus();
}

}  // namespace varscope::service
