// A bare gRPC echo server: the fastest way we know to move payloads from
// memory over gRPC 1.51 (callback API, raw methods, 1 MiB stream chunks).
// Fetches send zero-copy slices over a preallocated payload; sends copy the
// received bytes exactly once, into a preallocated sink, as varscope's push
// copies them once into the tensor. bench/ compares varscope against it.
//
// Usage: echo_server --port_file=FILE [--max_bytes=268435456]
#include <grpcpp/grpcpp.h>
#include <google/protobuf/io/coded_stream.h>
#include <grpcpp/support/proto_buffer_reader.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "echo.grpc.pb.h"

ABSL_FLAG(std::string, port_file, "", "write the bound port here");
ABSL_FLAG(int64_t, max_bytes, int64_t{256} << 20, "largest payload");

namespace {

using varscope::bench::Echo;

// Appends the wire bytes of Blob{data = payload} as header + zero-copy slice.
grpc::ByteBuffer BlobOf(const uint8_t* data, size_t n) {
  uint8_t header[16];
  size_t h = 0;
  if (n > 0) {
    header[h++] = 0x0A;  // field 1, length-delimited
    uint64_t v = n;
    while (v >= 0x80) {
      header[h++] = static_cast<uint8_t>(v | 0x80);
      v >>= 7;
    }
    header[h++] = static_cast<uint8_t>(v);
  }
  grpc::Slice slices[2] = {grpc::Slice(header, h),
                           grpc::Slice(data, n, grpc::Slice::STATIC_SLICE)};
  return grpc::ByteBuffer(slices, n > 0 ? 2 : 1);
}

// Copies every data field of a received Blob into `out` at `*offset`,
// straight from the received slices into the sink: one copy, as varscope's
// push does (the sink wraps around; its contents are never read).
bool CopyBlob(const grpc::ByteBuffer& in, uint8_t* out, size_t capacity,
              size_t* offset) {
  grpc::ByteBuffer copy(in);  // shares the slices
  grpc::ProtoBufferReader reader(&copy);
  google::protobuf::io::CodedInputStream stream(&reader);
  while (const uint32_t tag = stream.ReadTag()) {
    uint32_t n;
    if (tag != 0x0A || !stream.ReadVarint32(&n)) return false;
    while (n > 0) {
      const size_t step = std::min<size_t>(n, capacity - *offset);
      if (!stream.ReadRaw(out + *offset, static_cast<int>(step))) return false;
      *offset = (*offset + step) % capacity;
      n -= static_cast<uint32_t>(step);
    }
  }
  return true;
}

class EchoService final
    : public Echo::WithRawCallbackMethod_Small<
          Echo::WithRawCallbackMethod_FetchUnary<Echo::WithRawCallbackMethod_Fetch<
              Echo::WithRawCallbackMethod_SendUnary<
                  Echo::WithRawCallbackMethod_Send<Echo::Service>>>>> {
 public:
  explicit EchoService(size_t max_bytes)
      : payload_(max_bytes, 0x5A), sink_(max_bytes) {}

  grpc::ServerUnaryReactor* Small(grpc::CallbackServerContext* ctx,
                                  const grpc::ByteBuffer*,
                                  grpc::ByteBuffer* response) override {
    *response = BlobOf(payload_.data(), 60);
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* FetchUnary(grpc::CallbackServerContext* ctx,
                                       const grpc::ByteBuffer* request,
                                       grpc::ByteBuffer* response) override {
    varscope::bench::FetchRequest req;
    grpc::ByteBuffer copy(*request);
    grpc::ProtoBufferReader reader(&copy);
    req.ParseFromZeroCopyStream(&reader);
    *response = BlobOf(payload_.data(), Clamp(req.bytes()));
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerWriteReactor<grpc::ByteBuffer>* Fetch(
      grpc::CallbackServerContext*, const grpc::ByteBuffer* request) override {
    varscope::bench::FetchRequest req;
    grpc::ByteBuffer copy(*request);
    grpc::ProtoBufferReader reader(&copy);
    req.ParseFromZeroCopyStream(&reader);
    return new FetchReactor(payload_.data(), Clamp(req.bytes()),
                            req.chunk_bytes() > 0 ? req.chunk_bytes() : 1 << 20);
  }

  grpc::ServerUnaryReactor* SendUnary(grpc::CallbackServerContext* ctx,
                                      const grpc::ByteBuffer* request,
                                      grpc::ByteBuffer* response) override {
    size_t offset = 0;
    CopyBlob(*request, sink_.data(), sink_.size(), &offset);
    *response = BlobOf(payload_.data(), 0);
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerReadReactor<grpc::ByteBuffer>* Send(
      grpc::CallbackServerContext*, grpc::ByteBuffer* response) override {
    return new SendReactor(sink_.data(), sink_.size(), response);
  }

 private:
  size_t Clamp(int64_t n) const {
    return static_cast<size_t>(std::max<int64_t>(
        0, std::min<int64_t>(n, static_cast<int64_t>(payload_.size()))));
  }

  class FetchReactor : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
   public:
    FetchReactor(const uint8_t* data, size_t bytes, size_t chunk)
        : data_(data), bytes_(bytes), chunk_(chunk) {
      Next();
    }
    void OnWriteDone(bool ok) override {
      if (!ok) return Finish(grpc::Status::CANCELLED);
      Next();
    }
    void OnDone() override { delete this; }

   private:
    void Next() {
      const size_t n = std::min(chunk_, bytes_ - sent_);
      current_ = BlobOf(data_ + sent_, n);
      sent_ += n;
      if (sent_ >= bytes_) {
        StartWriteAndFinish(&current_, grpc::WriteOptions(), grpc::Status::OK);
      } else {
        StartWrite(&current_);
      }
    }
    const uint8_t* data_;
    const size_t bytes_, chunk_;
    size_t sent_ = 0;
    grpc::ByteBuffer current_;
  };

  class SendReactor : public grpc::ServerReadReactor<grpc::ByteBuffer> {
   public:
    SendReactor(uint8_t* sink, size_t capacity, grpc::ByteBuffer* response)
        : sink_(sink), capacity_(capacity), response_(response) {
      StartRead(&chunk_);
    }
    void OnReadDone(bool ok) override {
      if (!ok) {
        static const uint8_t kNothing = 0;
        *response_ = BlobOf(&kNothing, 0);
        return Finish(grpc::Status::OK);
      }
      CopyBlob(chunk_, sink_, capacity_, &offset_);
      StartRead(&chunk_);
    }
    void OnDone() override { delete this; }

   private:
    uint8_t* sink_;
    size_t capacity_, offset_ = 0;
    grpc::ByteBuffer* response_;
    grpc::ByteBuffer chunk_;
  };

  std::vector<uint8_t> payload_;
  std::vector<uint8_t> sink_;
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  EchoService service(absl::GetFlag(FLAGS_max_bytes));
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.SetMaxReceiveMessageSize(64 << 20);
  builder.SetMaxSendMessageSize(64 << 20);
  // Large HTTP/2 frames: fewer frame headers and flow-control updates.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_FRAME_SIZE, 1 << 20);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  if (!server) return 1;
  if (const std::string f = absl::GetFlag(FLAGS_port_file); !f.empty()) {
    std::ofstream(f) << port << "\n";
  }
  server->Wait();
  return 0;
}
