#include "client_data.h"

#include <grpcpp/support/proto_buffer_reader.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "raw_stream.h"
#include "status_util.h"

namespace varscope {
namespace {

using internal::FromGrpc;

v1::Selector SelectorOf(absl::string_view name, const PullOptions& options) {
  v1::Selector selector;
  selector.set_name(std::string(name));
  if (options.rows) {
    selector.mutable_rows()->set_start(options.rows->start);
    selector.mutable_rows()->set_count(options.rows->count);
  }
  selector.set_if_newer_than(options.if_newer_than);
  return selector;
}

absl::Status CheckDType(const v1::Tensor& t, DataType dtype) {
  if (dtype != v1::DT_INVALID && t.dtype() != dtype) {
    return absl::InvalidArgumentError(absl::StrCat(
        "variable ", t.name(), " is ", v1::DataType_Name(t.dtype()),
        ", the caller asked for ", v1::DataType_Name(dtype)));
  }
  return absl::OkStatus();
}

absl::Status SizeMismatch(const v1::Tensor& t, size_t got, size_t want) {
  return absl::InvalidArgumentError(
      absl::StrCat("variable ", t.name(), " holds ", got,
                   " bytes here; the caller's buffer has ", want));
}

void FillUpdate(const PushItem& item, v1::Update* update) {
  update->set_name(item.name);
  update->set_op(item.op);
  update->set_dtype(item.dtype);
  const PushOptions& o = item.options;
  if (o.rows) {
    update->mutable_rows()->set_start(o.rows->start);
    update->mutable_rows()->set_count(o.rows->count);
  }
  update->mutable_indices()->Assign(o.indices.begin(), o.indices.end());
  if (o.expected_version) update->set_expected_version(*o.expected_version);
  if (o.optimizer) *update->mutable_optimizer() = *o.optimizer;
  if (o.step) update->set_step(*o.step);
}

class Watcher : public WatchStream {
 public:
  Watcher(v1::VariableData::Stub* stub, const v1::WatchRequest& request) {
    reader_ = stub->Watch(&context_, request);
  }
  ~Watcher() override {
    if (finished_) return;
    Cancel();
    v1::WatchEvent ignored;
    while (reader_->Read(&ignored)) {
    }
    reader_->Finish();
  }
  bool Next(v1::WatchEvent* event) override {
    if (reader_->Read(event)) return true;
    if (!finished_) {
      finished_ = true;
      status_ = FromGrpc(reader_->Finish());
    }
    return false;
  }
  void Cancel() override { context_.TryCancel(); }
  absl::Status status() override { return status_; }

 private:
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<v1::WatchEvent>> reader_;
  bool finished_ = false;
  absl::Status status_;
};

}  // namespace

void Client::Data::SetDeadline(grpc::ClientContext* context, size_t bytes,
                               absl::Duration extra) const {
  // Large transfers get extra time: one second per 64 MiB on top of the
  // per-call timeout (so a 1 GiB pull is not cut off at 30 s on slow links).
  const absl::Duration transfer = absl::Seconds(bytes / (size_t{64} << 20));
  context->set_deadline(std::chrono::system_clock::now() +
                        absl::ToChronoNanoseconds(options_.rpc_timeout +
                                                  transfer + extra));
}

absl::StatusOr<PullResult> Client::Data::Pull(absl::string_view name,
                                              DataType dtype, void* out,
                                              size_t bytes,
                                              const PullOptions& options) {
  const v1::Selector selector = SelectorOf(name, options);
  return bytes >= kStreamBytes ? PullStream(selector, dtype, out, bytes)
                               : PullUnary(selector, dtype, out, bytes);
}

absl::StatusOr<PullResult> Client::Data::PullUnary(const v1::Selector& selector,
                                                   DataType dtype, void* out,
                                                   size_t bytes) {
  v1::PullRequest request;
  *request.add_variables() = selector;
  v1::PullResponse response;
  grpc::ClientContext context;
  SetDeadline(&context, bytes);
  if (grpc::Status s = stub_->Pull(&context, request, &response); !s.ok()) {
    return FromGrpc(s);
  }
  const v1::Tensor& t = response.tensors(0);
  if (absl::Status s = CheckDType(t, dtype); !s.ok()) return s;
  PullResult result;
  result.version = t.version();
  result.unchanged = t.unchanged();
  result.shape.assign(t.shape().begin(), t.shape().end());
  if (t.unchanged()) return result;
  if (t.data().size() != bytes) return SizeMismatch(t, t.data().size(), bytes);
  std::memcpy(out, t.data().data(), bytes);
  return result;
}

absl::StatusOr<PullResult> Client::Data::PullStream(
    const v1::Selector& selector, DataType dtype, void* out, size_t bytes) {
  v1::PullStreamRequest request;
  *request.mutable_variable() = selector;
  request.set_chunk_bytes(kChunkBytes);
  const std::string wire = request.SerializeAsString();
  grpc::ClientContext context;
  SetDeadline(&context, bytes);
  PullResult result;
  bool sent = false, first = true;
  size_t received = 0;
  absl::Status status = internal::RawStreamingCall(
      &generic_, &context, "/varscope.v1.VariableData/PullStream",
      [&](grpc::ByteBuffer* next) {
        if (sent) return false;
        sent = true;
        grpc::Slice slice(wire);
        *next = grpc::ByteBuffer(&slice, 1);
        return true;
      },
      [&](const grpc::ByteBuffer& in) -> absl::Status {
        internal::TensorChunk chunk;
        absl::Status s = internal::DecodeTensorChunk(
            in, static_cast<uint8_t*>(out), bytes, &chunk);
        if (!s.ok()) return s;
        if (first) {
          first = false;
          if (dtype != v1::DT_INVALID && chunk.dtype != dtype) {
            return absl::InvalidArgumentError(absl::StrCat(
                "variable ", chunk.name, " is ",
                v1::DataType_Name(static_cast<v1::DataType>(chunk.dtype)),
                ", the caller asked for ", v1::DataType_Name(dtype)));
          }
          if (!chunk.unchanged && static_cast<size_t>(chunk.total_bytes) != bytes) {
            return absl::InvalidArgumentError(absl::StrCat(
                "variable ", chunk.name, " holds ", chunk.total_bytes,
                " bytes here; the caller's buffer has ", bytes));
          }
          result.version = chunk.version;
          result.unchanged = chunk.unchanged;
          result.shape = chunk.shape;
        }
        received += static_cast<size_t>(chunk.data_bytes);
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  if (!result.unchanged && received != bytes) {
    return absl::DataLossError(absl::StrCat("the stream ended after ",
                                            received, " of ", bytes, " bytes"));
  }
  return result;
}

absl::StatusOr<v1::PullResponse> Client::Data::PullMany(
    const std::vector<std::string>& names) {
  v1::PullRequest request;
  for (const std::string& name : names) request.add_variables()->set_name(name);
  v1::PullResponse response;
  grpc::ClientContext context;
  SetDeadline(&context);
  grpc::Status status = stub_->Pull(&context, request, &response);
  if (!status.ok()) return FromGrpc(status);
  return response;
}

absl::StatusOr<std::vector<v1::UpdateResult>> Client::Data::PushMany(
    const std::vector<PushItem>& items) {
  if (items.size() == 1 && items[0].bytes >= kStreamBytes) {
    absl::StatusOr<v1::UpdateResult> one = PushStream(items[0]);
    if (!one.ok()) return one.status();
    return std::vector<v1::UpdateResult>{*std::move(one)};
  }
  v1::PushRequest request;
  size_t total = 0;
  for (const PushItem& item : items) {
    v1::Update* update = request.add_updates();
    FillUpdate(item, update);
    update->set_data(item.data, item.bytes);
    total += item.bytes;
  }
  v1::PushResponse response;
  grpc::ClientContext context;
  SetDeadline(&context, total);
  grpc::Status status = stub_->Push(&context, request, &response);
  if (!status.ok()) return FromGrpc(status);
  return std::vector<v1::UpdateResult>(response.results().begin(),
                                       response.results().end());
}

absl::StatusOr<v1::UpdateResult> Client::Data::PushStream(const PushItem& item) {
  // The first message carries the update; the others are PushChunk.data
  // (field 2) slices pointing straight at the caller's bytes.
  v1::PushChunk head;
  FillUpdate(item, head.mutable_update());
  const std::string wire = head.SerializeAsString();
  const char* data = static_cast<const char*>(item.data);
  grpc::ClientContext context;
  SetDeadline(&context, item.bytes);
  bool header_sent = false;
  size_t sent = 0;
  v1::PushResponse response;
  absl::Status status = internal::RawStreamingCall(
      &generic_, &context, "/varscope.v1.VariableData/PushStream",
      [&](grpc::ByteBuffer* next) {
        if (!header_sent) {
          header_sent = true;
          grpc::Slice slice(wire);
          *next = grpc::ByteBuffer(&slice, 1);
          return true;
        }
        if (sent >= item.bytes) return false;
        const size_t n = std::min(kChunkBytes, item.bytes - sent);
        *next = internal::BytesField(2, data + sent, n);
        sent += n;
        return true;
      },
      [&](const grpc::ByteBuffer& in) -> absl::Status {
        grpc::ByteBuffer copy(in);
        grpc::ProtoBufferReader reader(&copy);
        if (!response.ParseFromZeroCopyStream(&reader)) {
          return absl::DataLossError("malformed PushResponse");
        }
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  if (response.results_size() != 1) {
    return absl::InternalError("PushStream returned no result");
  }
  return response.results(0);
}

absl::StatusOr<v1::Tensor> Client::Data::Gather(
    absl::string_view name, const std::vector<int64_t>& indices) {
  v1::GatherRequest request;
  request.set_name(std::string(name));
  request.mutable_indices()->Assign(indices.begin(), indices.end());
  v1::Tensor response;
  grpc::ClientContext context;
  SetDeadline(&context);
  grpc::Status status = stub_->Gather(&context, request, &response);
  if (!status.ok()) return FromGrpc(status);
  return response;
}

absl::StatusOr<std::vector<v1::TrainingState>> Client::Data::SetOptimizer(
    const std::vector<std::string>& names, const v1::OptimizerConfig& optimizer,
    int replicas) {
  v1::SetOptimizerRequest request;
  for (const std::string& n : names) request.add_names(n);
  *request.mutable_optimizer() = optimizer;
  request.set_replicas_to_aggregate(replicas);
  v1::SetOptimizerResponse response;
  grpc::ClientContext context;
  SetDeadline(&context);
  grpc::Status status = stub_->SetOptimizer(&context, request, &response);
  if (!status.ok()) return FromGrpc(status);
  return std::vector<v1::TrainingState>(response.variables().begin(),
                                        response.variables().end());
}

absl::StatusOr<v1::TrainingState> Client::Data::DescribeTraining(
    absl::string_view name) {
  v1::DescribeTrainingRequest request;
  request.set_name(std::string(name));
  v1::TrainingState response;
  grpc::ClientContext context;
  SetDeadline(&context);
  grpc::Status status = stub_->DescribeTraining(&context, request, &response);
  if (!status.ok()) return FromGrpc(status);
  return response;
}

absl::StatusOr<uint64_t> Client::Data::WaitVersion(absl::string_view name,
                                                   uint64_t version,
                                                   absl::Duration timeout) {
  v1::WaitVersionRequest request;
  request.set_name(std::string(name));
  request.set_version(version);
  request.set_timeout_ms(std::max<int64_t>(1, absl::ToInt64Milliseconds(timeout)));
  v1::WaitVersionResponse response;
  grpc::ClientContext context;
  SetDeadline(&context, 0, timeout);
  grpc::Status status = stub_->WaitVersion(&context, request, &response);
  if (!status.ok()) return FromGrpc(status);
  return response.version();
}

std::unique_ptr<WatchStream> Client::Data::Watch(absl::string_view prefix,
                                                 bool send_initial,
                                                 uint32_t buffer) {
  v1::WatchRequest request;
  request.set_prefix(std::string(prefix));
  request.set_send_initial(send_initial);
  request.set_buffer_events(buffer);
  return std::make_unique<Watcher>(stub_.get(), request);
}

// ---- Client and Variable forwarding ----

absl::StatusOr<PullResult> Client::Pull(absl::string_view name, DataType dtype,
                                        void* out, size_t bytes,
                                        const PullOptions& options) {
  return data_->Pull(name, dtype, out, bytes, options);
}
absl::StatusOr<v1::PullResponse> Client::PullMany(
    const std::vector<std::string>& names) {
  return data_->PullMany(names);
}
absl::StatusOr<v1::UpdateResult> Client::Push(absl::string_view name,
                                              UpdateOp op, DataType dtype,
                                              const void* data, size_t bytes,
                                              const PushOptions& options) {
  PushItem item;
  item.name = std::string(name);
  item.op = op;
  item.dtype = dtype;
  item.data = data;
  item.bytes = bytes;
  item.options = options;
  absl::StatusOr<std::vector<v1::UpdateResult>> r = data_->PushMany({item});
  if (!r.ok()) return r.status();
  return (*r)[0];
}
absl::StatusOr<std::vector<v1::UpdateResult>> Client::PushMany(
    const std::vector<PushItem>& items) {
  return data_->PushMany(items);
}
absl::StatusOr<v1::Tensor> Client::Gather(absl::string_view name,
                                          const std::vector<int64_t>& indices) {
  return data_->Gather(name, indices);
}
absl::StatusOr<std::vector<v1::TrainingState>> Client::SetOptimizer(
    const std::vector<std::string>& names, const v1::OptimizerConfig& optimizer,
    int replicas_to_aggregate) {
  return data_->SetOptimizer(names, optimizer, replicas_to_aggregate);
}
absl::StatusOr<v1::TrainingState> Client::DescribeTraining(
    absl::string_view name) {
  return data_->DescribeTraining(name);
}
absl::StatusOr<uint64_t> Client::WaitVersion(absl::string_view name,
                                             uint64_t version,
                                             absl::Duration timeout) {
  return data_->WaitVersion(name, version, timeout);
}
std::unique_ptr<WatchStream> Client::Watch(absl::string_view prefix,
                                           bool send_initial,
                                           uint32_t buffer_events) {
  return data_->Watch(prefix, send_initial, buffer_events);
}
std::future<absl::StatusOr<PullResult>> Client::PullAsync(
    std::string name, DataType dtype, void* out, size_t bytes,
    PullOptions options) {
  return std::async(std::launch::async, [=, name = std::move(name)] {
    return data_->Pull(name, dtype, out, bytes, options);
  });
}
std::future<absl::StatusOr<v1::UpdateResult>> Client::PushAsync(
    std::string name, UpdateOp op, DataType dtype, const void* data,
    size_t bytes, PushOptions options) {
  return std::async(std::launch::async, [=, name = std::move(name)] {
    return Push(name, op, dtype, data, bytes, options);
  });
}

int64_t Variable::num_elements() const {
  int64_t n = 1;
  for (int64_t d : proto_.shape()) n *= d;
  return n;
}

int64_t Variable::RowElements() const {
  int64_t n = 1;
  for (int i = 1; i < proto_.shape_size(); ++i) n *= proto_.shape(i);
  return n;
}

absl::Status Variable::CheckType(DataType dtype) const {
  if (proto_.partitioned()) {
    return absl::FailedPreconditionError(absl::StrCat(
        name(), " is partitioned; pull and push its parts (name/part_i)"));
  }
  if (proto_.dtype() != dtype) {
    return absl::InvalidArgumentError(
        absl::StrCat("variable ", name(), " is ",
                     v1::DataType_Name(proto_.dtype()), ", not ",
                     v1::DataType_Name(dtype)));
  }
  return absl::OkStatus();
}

absl::StatusOr<PullResult> Variable::Pull(void* out, size_t bytes,
                                          const PullOptions& options) {
  if (client_ == nullptr) {
    return absl::FailedPreconditionError("this Variable has no client");
  }
  absl::StatusOr<PullResult> r =
      client_->Pull(name(), proto_.dtype(), out, bytes, options);
  if (r.ok()) proto_.set_version(r->version);
  return r;
}

absl::StatusOr<v1::UpdateResult> Variable::PushBytes(UpdateOp op,
                                                     DataType dtype,
                                                     const void* data,
                                                     size_t bytes,
                                                     const PushOptions& options) {
  if (client_ == nullptr) {
    return absl::FailedPreconditionError("this Variable has no client");
  }
  absl::StatusOr<v1::UpdateResult> r =
      client_->Push(name(), op, dtype, data, bytes, options);
  if (r.ok()) proto_.set_version(r->version());
  return r;
}

absl::StatusOr<uint64_t> Variable::WaitForNewerThan(
    std::optional<uint64_t> version, absl::Duration timeout) {
  if (client_ == nullptr) {
    return absl::FailedPreconditionError("this Variable has no client");
  }
  absl::StatusOr<uint64_t> v =
      client_->WaitVersion(name(), version.value_or(proto_.version()), timeout);
  if (v.ok()) proto_.set_version(*v);
  return v;
}

}  // namespace varscope
