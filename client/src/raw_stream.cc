#include "raw_stream.h"

#include <google/protobuf/io/coded_stream.h>
#include <grpcpp/support/proto_buffer_reader.h>

#include <future>

#include "absl/strings/str_cat.h"
#include "status_util.h"

namespace varscope::internal {
namespace {

using google::protobuf::io::CodedInputStream;

// Deletes itself when the call is done, after handing its status to `done`.
class RawCall : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  RawCall(NextRequest next, OnResponse on_response, grpc::ClientContext* context,
          std::function<void(absl::Status)> done)
      : next_(std::move(next)),
        on_response_(std::move(on_response)),
        context_(context),
        done_(std::move(done)) {}

  void Start(grpc::GenericStub* stub, const std::string& method) {
    stub->PrepareBidiStreamingCall(context_, method, grpc::StubOptions(), this);
    StartRead(&response_);
    WriteNext();
    StartCall();
  }

  void OnWriteDone(bool ok) override {
    if (ok) WriteNext();  // else the call is failing; OnDone reports it
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    absl::Status status = on_response_(response_);
    if (!status.ok()) {
      error_ = status;
      context_->TryCancel();
      return;
    }
    StartRead(&response_);
  }
  void OnDone(const grpc::Status& status) override {
    done_(error_.ok() ? FromGrpc(status) : error_);
    delete this;
  }

 private:
  void WriteNext() {
    if (next_(&request_)) {
      StartWrite(&request_);
    } else {
      StartWritesDone();
    }
  }

  NextRequest next_;
  OnResponse on_response_;
  grpc::ClientContext* context_;
  grpc::ByteBuffer request_;   // the write in flight
  grpc::ByteBuffer response_;  // the read in flight
  absl::Status error_;         // set by OnReadDone before cancelling
  std::function<void(absl::Status)> done_;
};

bool SkipField(CodedInputStream* in, uint32_t tag) {
  switch (tag & 7) {
    case 0: {
      uint64_t ignored;
      return in->ReadVarint64(&ignored);
    }
    case 1: return in->Skip(8);
    case 2: {
      uint32_t n;
      return in->ReadVarint32(&n) && in->Skip(static_cast<int>(n));
    }
    case 5: return in->Skip(4);
    default: return false;
  }
}

}  // namespace

void StartRawStreamingCall(grpc::GenericStub* stub, grpc::ClientContext* context,
                           const std::string& method, NextRequest next,
                           OnResponse on_response,
                           std::function<void(absl::Status)> done) {
  (new RawCall(std::move(next), std::move(on_response), context, std::move(done)))
      ->Start(stub, method);
}

absl::Status RawStreamingCall(grpc::GenericStub* stub,
                              grpc::ClientContext* context,
                              const std::string& method, NextRequest next,
                              OnResponse on_response) {
  std::promise<absl::Status> done;
  std::future<absl::Status> result = done.get_future();
  StartRawStreamingCall(stub, context, method, std::move(next), std::move(on_response),
                        [&done](absl::Status s) { done.set_value(std::move(s)); });
  return result.get();
}

grpc::ByteBuffer BytesField(int field, const void* data, size_t n) {
  uint8_t header[16];
  size_t h = 0;
  header[h++] = static_cast<uint8_t>((field << 3) | 2);
  uint64_t v = n;
  while (v >= 0x80) {
    header[h++] = static_cast<uint8_t>(v | 0x80);
    v >>= 7;
  }
  header[h++] = static_cast<uint8_t>(v);
  grpc::Slice slices[2] = {
      grpc::Slice(header, h),
      grpc::Slice(data, n, grpc::Slice::STATIC_SLICE)};
  return grpc::ByteBuffer(slices, n > 0 ? 2 : 1);
}

absl::Status DecodeTensorChunk(const grpc::ByteBuffer& in, uint8_t* out,
                               size_t capacity, TensorChunk* chunk) {
  grpc::ByteBuffer copy(in);  // shares the slices; the reader consumes it
  grpc::ProtoBufferReader reader(&copy);
  CodedInputStream stream(&reader);
  const auto bad = [] {
    return absl::DataLossError("malformed Tensor message from the server");
  };
  *chunk = TensorChunk();
  while (uint32_t tag = stream.ReadTag()) {
    const int field = static_cast<int>(tag >> 3);
    uint64_t value = 0;
    switch (field) {
      case 1: {
        uint32_t n;
        if (!stream.ReadVarint32(&n) ||
            !stream.ReadString(&chunk->name, static_cast<int>(n))) {
          return bad();
        }
        break;
      }
      case 3:
        if ((tag & 7) == 2) {  // packed
          uint32_t n;
          if (!stream.ReadVarint32(&n)) return bad();
          const auto limit = stream.PushLimit(static_cast<int>(n));
          while (stream.BytesUntilLimit() > 0) {
            if (!stream.ReadVarint64(&value)) return bad();
            chunk->shape.push_back(static_cast<int64_t>(value));
          }
          stream.PopLimit(limit);
        } else {
          if (!stream.ReadVarint64(&value)) return bad();
          chunk->shape.push_back(static_cast<int64_t>(value));
        }
        break;
      case 2: case 4: case 5: case 6: case 7: case 8:
        if (!stream.ReadVarint64(&value)) return bad();
        if (field == 2) chunk->dtype = static_cast<int>(value);
        if (field == 4) chunk->version = value;
        if (field == 5) chunk->unchanged = value != 0;
        if (field == 6) chunk->row_start = static_cast<int64_t>(value);
        if (field == 7) chunk->offset = static_cast<int64_t>(value);
        if (field == 8) chunk->total_bytes = static_cast<int64_t>(value);
        break;
      case 15: {
        uint32_t n;
        if (!stream.ReadVarint32(&n)) return bad();
        const uint64_t offset = static_cast<uint64_t>(chunk->offset);
        if (offset > capacity || n > capacity - offset) {
          return absl::InvalidArgumentError(absl::StrCat(
              "variable ", chunk->name, " sent ", n, " bytes at offset ",
              offset, "; the caller's buffer has ", capacity));
        }
        if (!stream.ReadRaw(out + offset, static_cast<int>(n))) return bad();
        chunk->data_bytes = n;
        break;
      }
      default:
        if (!SkipField(&stream, tag)) return bad();
    }
  }
  return absl::OkStatus();
}

}  // namespace varscope::internal
