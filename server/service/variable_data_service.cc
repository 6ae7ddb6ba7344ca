#include "server/service/variable_data_service.h"

#include <google/protobuf/io/coded_stream.h>
#include <grpcpp/support/proto_buffer_reader.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "server/core/namespace/names.h"
#include "server/core/base/status_macros.h"
#include "server/service/data_convert.h"
#include "server/service/handle.h"
#include "server/service/status_convert.h"
#include "server/service/tensor_coding.h"
#include "server/service/waiting_reactor.h"

namespace varscope::service {
namespace {

constexpr int64_t kDefaultChunkBytes = int64_t{1} << 20;
constexpr int64_t kMinChunkBytes = int64_t{4} << 10;
constexpr uint32_t kDefaultWatchBuffer = 1024;
constexpr absl::Duration kDefaultWait = absl::Seconds(30);
constexpr absl::Duration kMaxWait = absl::Hours(1);



TensorFrame FrameOf(const core::ReadResult& r) {
  TensorFrame f;
  f.name = r.name;
  f.dtype = static_cast<int>(r.dtype);
  f.shape = r.unchanged ? r.shape : r.data_shape;
  f.version = r.version;
  f.unchanged = r.unchanged;
  f.row_start = r.row_start;
  f.owner = r.buffer;
  f.bytes = r.buffer ? r.buffer->data() + r.offset : nullptr;
  f.length = r.length;
  return f;
}

absl::Duration WaitTimeout(int64_t timeout_ms) {
  if (timeout_ms <= 0) return kDefaultWait;
  return std::min(absl::Milliseconds(timeout_ms), kMaxWait);
}

absl::Status TooLarge(size_t bytes, int limit, absl::string_view instead) {
  return absl::ResourceExhaustedError(absl::StrCat(
      "the response would be ", bytes, " bytes, above the server's ",
      "--max_message_bytes of ", limit, "; use ", instead));
}

// Streams one snapshot in chunks. Each chunk's data is a zero-copy slice.
class PullStreamReactor : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  PullStreamReactor(Admission call, absl::StatusOr<core::ReadResult> read,
                    int64_t chunk_bytes, grpc::CallbackServerContext* ctx)
      : call_(std::move(call)), chunk_bytes_(chunk_bytes) {
    if (!read.ok()) {
      LogFailure("PullStream", read.status());
      Finish(ToGrpcStatus(read.status()));
      return;
    }
    read_ = *std::move(read);
    WriteNext();
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "stream broken"));
      return;
    }
    WriteNext();
  }
  void OnDone() override { delete this; }

 private:
  void WriteNext() {
    TensorFrame frame;
    if (sent_ == 0) {  // the first chunk describes the tensor
      frame = FrameOf(read_);
    } else {
      frame.owner = read_.buffer;
    }
    const int64_t n = std::min(chunk_bytes_, read_.length - sent_);
    frame.offset = sent_;
    frame.total_bytes = read_.length;
    frame.bytes = read_.buffer ? read_.buffer->data() + read_.offset + sent_
                               : nullptr;
    frame.length = n;
    std::vector<grpc::Slice> slices;
    AppendTensor(frame, 0, &slices);
    current_ = ToByteBuffer(slices);
    sent_ += n;
    if (sent_ >= read_.length) {
      StartWriteAndFinish(&current_, grpc::WriteOptions(), grpc::Status::OK);
    } else {
      StartWrite(&current_);
    }
  }

  const Admission call_;  // holds the client's in-flight slot
  const int64_t chunk_bytes_;
  core::ReadResult read_;
  int64_t sent_ = 0;
  grpc::ByteBuffer current_;  // the write in flight
};

// Collects a streamed update into one buffer, then pushes it. Chunks after
// the first are decoded by hand so their bytes are copied once, from the
// received slices straight into the buffer.
class PushStreamReactor : public grpc::ServerReadReactor<grpc::ByteBuffer> {
 public:
  PushStreamReactor(Admission call, core::DataPlane* data, grpc::ByteBuffer* response)
      : call_(std::move(call)), data_(data), response_(response) {
    StartRead(&chunk_);
  }
  void OnReadDone(bool ok) override {
    absl::Status status = ok ? Consume() : Apply();
    if (!status.ok() || !ok) {
      LogFailure("PushStream", status);
      Finish(ToGrpcStatus(status));
      return;
    }
    StartRead(&chunk_);
  }
  void OnDone() override { delete this; }

 private:
  absl::Status Consume() {
    if (!buffer_) {
      v1::PushChunk first;
      VARSCOPE_RETURN_IF_ERROR(ParseRequest(chunk_, &first));
      if (!first.has_update()) {
        return absl::InvalidArgumentError(
            "the first PushStream message must carry the update");
      }
      header_ = first.update();
      VARSCOPE_RETURN_IF_ERROR(call_.CheckName(header_.name()));
      VARSCOPE_ASSIGN_OR_RETURN(core::Update update, FromProto(header_));
      VARSCOPE_ASSIGN_OR_RETURN(expected_, data_->DataBytes(update));
      try {
        buffer_ = data_->NewBuffer(expected_);
      } catch (const std::bad_alloc&) {
        return absl::ResourceExhaustedError("out of memory for the push");
      }
      VARSCOPE_RETURN_IF_ERROR(Append(header_.data().data(), header_.data().size()));
      header_.clear_data();
      return Append(first.data().data(), first.data().size());
    }
    // Later chunks: PushChunk.data (field 2) only.
    grpc::ByteBuffer copy(chunk_);
    grpc::ProtoBufferReader reader(&copy);
    google::protobuf::io::CodedInputStream in(&reader);
    while (uint32_t tag = in.ReadTag()) {
      uint32_t n = 0;
      if (tag != ((2 << 3) | 2)) {
        return absl::InvalidArgumentError(
            "PushStream messages after the first carry only data");
      }
      if (!in.ReadVarint32(&n)) {
        return absl::InvalidArgumentError("malformed PushChunk");
      }
      if (static_cast<int64_t>(n) > expected_ - received_) {
        return TooMuch();
      }
      if (!in.ReadRaw(buffer_->data() + received_, static_cast<int>(n))) {
        return absl::InvalidArgumentError("truncated PushChunk");
      }
      received_ += n;
    }
    return absl::OkStatus();
  }
  absl::Status Append(const char* bytes, size_t n) {
    if (static_cast<int64_t>(n) > expected_ - received_) return TooMuch();
    std::memcpy(buffer_->data() + received_, bytes, n);
    received_ += static_cast<int64_t>(n);
    return absl::OkStatus();
  }
  absl::Status TooMuch() const {
    return absl::InvalidArgumentError(
        absl::StrCat("PushStream to ", header_.name(), " sent more than the ",
                     expected_, " bytes the update needs; nothing applied"));
  }
  absl::Status Apply() {
    if (!buffer_) {
      return absl::InvalidArgumentError("PushStream ended without an update");
    }
    if (received_ != expected_) {
      return absl::InvalidArgumentError(
          absl::StrCat("PushStream to ", header_.name(), " ended after ",
                       received_, " of ", expected_, " bytes; nothing applied"));
    }
    VARSCOPE_ASSIGN_OR_RETURN(core::Update update, FromProto(header_));
    const bool whole_assign = update.op == core::UpdateOp::kAssign &&
                              !update.rows && !update.indices;
    if (whole_assign) {
      update.owned_value = buffer_;  // installed without another copy
    } else {
      update.data = absl::string_view(
          reinterpret_cast<const char*>(buffer_->data()), buffer_->size());
    }
    VARSCOPE_ASSIGN_OR_RETURN(std::vector<core::UpdateResult> results,
                              data_->Push({std::move(update)}));
    v1::PushResponse response;
    ToProto(results[0], response.add_results());
    grpc::Slice slice(response.SerializeAsString());
    *response_ = grpc::ByteBuffer(&slice, 1);
    return absl::OkStatus();
  }

  const Admission call_;  // holds the client's in-flight slot
  core::DataPlane* const data_;
  grpc::ByteBuffer* const response_;
  grpc::ByteBuffer chunk_;
  v1::Update header_;
  std::shared_ptr<core::TensorBuffer> buffer_;
  int64_t expected_ = 0;
  int64_t received_ = 0;
};

// A watch stream. Events queue in a bounded buffer; when it overflows the
// queue is dropped and the watcher gets one RESYNC instead, so writers
// never wait for a slow reader.
class WatchReactor : public grpc::ServerWriteReactor<v1::WatchEvent> {
 public:
  WatchReactor(Admission call, core::VariableStore* store,
               const v1::WatchRequest& request)
      : call_(std::move(call)),
        store_(store),
        state_(std::make_shared<State>(
            this, request.buffer_events() > 0 ? request.buffer_events()
                                              : kDefaultWatchBuffer)) {
    const std::string prefix(core::StripTensorSuffix(request.prefix()));
    subscription_ =
        store_->feed().Subscribe(core::ChangeMatch::Under(prefix), state_);
    if (request.send_initial()) {
      core::ListOptions list;
      list.prefix = prefix;
      state_->EnqueueInitial(store_->List(list).variables);
    }
    state_->Pump();
  }
  void OnWriteDone(bool ok) override { state_->WriteDone(ok); }
  void OnCancel() override {
    state_->Stop(grpc::Status(grpc::StatusCode::CANCELLED, "watch cancelled"));
  }
  void OnDone() override {
    store_->feed().Unsubscribe(subscription_);
    state_->Detach();
    delete this;
  }

 private:
  class State : public core::ChangeListener {
   public:
    State(WatchReactor* reactor, size_t capacity)
        : reactor_(reactor), capacity_(capacity) {}

    void OnChange(const core::ChangeEvent& e) override {
      {
        absl::MutexLock lock(&mu_);
        if (reactor_ == nullptr || finished_ || stop_) return;
        if (!Newer(e.name, e.version)) return;
        if (queue_.size() >= capacity_) {
          // Drop what is queued, not this event: the watcher gets RESYNC
          // and then every event from this one on, so it always ends up
          // seeing the newest change.
          queue_.clear();
          resync_ = true;
        }
        v1::WatchEvent event;
        event.set_name(e.name);
        event.set_version(e.version);
        event.set_kind(ToProto(e.kind));
        queue_.push_back(std::move(event));
      }
      Pump();
    }
    void EnqueueInitial(const std::vector<core::VariableInfo>& vars) {
      absl::MutexLock lock(&mu_);
      for (const core::VariableInfo& info : vars) {
        if (!Newer(info.name, info.version)) continue;  // a live event won
        v1::WatchEvent event;
        event.set_name(info.name);
        event.set_version(info.version);
        event.set_kind(v1::WatchEvent::EXISTING);
        queue_.push_back(std::move(event));
      }
      // The initial listing does not count against the live buffer.
      capacity_ += queue_.size();
    }
    // Starts the next write if none is in flight.
    void Pump() {
      WatchReactor* reactor = nullptr;
      {
        absl::MutexLock lock(&mu_);
        if (reactor_ == nullptr || finished_ || stop_ || writing_) return;
        if (resync_) {
          resync_ = false;
          current_.Clear();
          current_.set_kind(v1::WatchEvent::RESYNC);
        } else if (!queue_.empty()) {
          current_ = std::move(queue_.front());
          queue_.pop_front();
        } else {
          return;
        }
        writing_ = true;
        reactor = reactor_;
      }
      reactor->StartWrite(&current_);
    }
    void WriteDone(bool ok) {
      {
        absl::MutexLock lock(&mu_);
        writing_ = false;
        if (!ok && !stop_) {
          stop_ = grpc::Status(grpc::StatusCode::CANCELLED, "stream broken");
        }
      }
      if (!FinishIfStopped()) Pump();
    }
    // Finishes now, or after the write in flight (gRPC allows one
    // operation of each kind at a time).
    void Stop(const grpc::Status& status) {
      {
        absl::MutexLock lock(&mu_);
        if (!stop_) stop_ = status;
      }
      FinishIfStopped();
    }
    bool FinishIfStopped() {
      WatchReactor* reactor = nullptr;
      grpc::Status status;
      {
        absl::MutexLock lock(&mu_);
        if (!stop_ || writing_ || finished_ || reactor_ == nullptr) {
          return stop_.has_value();
        }
        finished_ = true;
        status = *stop_;
        reactor = reactor_;
      }
      reactor->Finish(status);
      return true;
    }
    void Detach() {
      absl::MutexLock lock(&mu_);
      reactor_ = nullptr;
    }

   private:
    // Each name's versions reach the watcher strictly increasing: an event
    // no newer than what was already queued for the name (a live event
    // that raced the initial listing) is dropped. Deletions reset it.
    bool Newer(const std::string& name, uint64_t version)
        ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      if (version == 0) {
        last_.erase(name);
        return true;
      }
      uint64_t& last = last_[name];
      if (version <= last) return false;
      last = version;
      return true;
    }

    absl::Mutex mu_;
    absl::flat_hash_map<std::string, uint64_t> last_ ABSL_GUARDED_BY(mu_);
    WatchReactor* reactor_ ABSL_GUARDED_BY(mu_);
    size_t capacity_ ABSL_GUARDED_BY(mu_);
    std::deque<v1::WatchEvent> queue_ ABSL_GUARDED_BY(mu_);
    bool resync_ ABSL_GUARDED_BY(mu_) = false;
    bool writing_ ABSL_GUARDED_BY(mu_) = false;
    bool finished_ ABSL_GUARDED_BY(mu_) = false;
    std::optional<grpc::Status> stop_ ABSL_GUARDED_BY(mu_);
    // The message of the write in flight; changed only while !writing_.
    v1::WatchEvent current_;
  };

  const Admission call_;  // holds the client's in-flight slot
  core::VariableStore* const store_;  // Not owned.
  std::shared_ptr<State> state_;
  uint64_t subscription_ = 0;
};

}  // namespace

grpc::ServerUnaryReactor* VariableDataService::Pull(
    Context* ctx, const grpc::ByteBuffer* request, grpc::ByteBuffer* response) {
  return Handle(ctx, gate_, "varscope.v1.VariableData.Pull",
                [&](const Admission& call) -> absl::Status {
    v1::PullRequest req;
    VARSCOPE_RETURN_IF_ERROR(ParseRequest(*request, &req));
    if (req.variables_size() == 0) {
      return absl::InvalidArgumentError("Pull needs at least one variable");
    }
    std::vector<grpc::Slice> slices;
    size_t total = 0;
    for (const v1::Selector& selector : req.variables()) {
      VARSCOPE_RETURN_IF_ERROR(call.CheckName(selector.name()));
    }
    for (const v1::Selector& selector : req.variables()) {
      VARSCOPE_ASSIGN_OR_RETURN(core::ReadResult read,
                                data_->Read(FromProto(selector)));
      total += AppendTensor(FrameOf(read), 1, &slices);
      if (total > static_cast<size_t>(max_message_bytes_)) {
        return TooLarge(total, max_message_bytes_,
                        "PullStream for large variables (or pull fewer)");
      }
    }
    *response = ToByteBuffer(slices);
    return absl::OkStatus();
  });
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* VariableDataService::PullStream(
    Context* ctx, const grpc::ByteBuffer* request) {
  using Writer = grpc::ServerWriteReactor<grpc::ByteBuffer>;
  constexpr char kMethod[] = "varscope.v1.VariableData.PullStream";
  absl::StatusOr<Admission> call = gate_->Admit(*ctx, kMethod);
  v1::PullStreamRequest req;
  absl::Status status = call.status();
  if (status.ok()) status = ParseRequest(*request, &req);
  if (status.ok()) status = call->CheckName(req.variable().name());
  if (!status.ok()) {
    LogFailure(kMethod, status);
    return new Rejected<Writer>(status);
  }
  int64_t chunk = req.chunk_bytes() > 0 ? req.chunk_bytes() : kDefaultChunkBytes;
  // Leave room for the chunk's header under the message limit.
  chunk = std::clamp<int64_t>(chunk, kMinChunkBytes,
                              std::max<int64_t>(max_message_bytes_ - 4096,
                                                kMinChunkBytes));
  return new PullStreamReactor(*std::move(call),
                               data_->Read(FromProto(req.variable())), chunk,
                               ctx);
}

grpc::ServerUnaryReactor* VariableDataService::Gather(
    Context* ctx, const grpc::ByteBuffer* request, grpc::ByteBuffer* response) {
  return Handle(ctx, gate_, "varscope.v1.VariableData.Gather",
                [&](const Admission& call) -> absl::Status {
    v1::GatherRequest req;
    VARSCOPE_RETURN_IF_ERROR(ParseRequest(*request, &req));
    VARSCOPE_RETURN_IF_ERROR(call.CheckName(req.name()));
    VARSCOPE_ASSIGN_OR_RETURN(
        core::GatherResult rows,
        data_->Gather(req.name(), {req.indices().begin(), req.indices().end()}));
    TensorFrame frame;
    frame.name = rows.name;
    frame.dtype = static_cast<int>(rows.dtype);
    frame.shape = rows.shape;
    frame.version = rows.version;
    frame.owner = rows.buffer;
    frame.bytes = rows.buffer->data();
    frame.length = static_cast<int64_t>(rows.buffer->size());
    if (frame.length > max_message_bytes_ - 4096) {
      return TooLarge(frame.length, max_message_bytes_, "fewer rows per call");
    }
    std::vector<grpc::Slice> slices;
    AppendTensor(frame, 0, &slices);
    *response = ToByteBuffer(slices);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* VariableDataService::Push(
    Context* ctx, const v1::PushRequest* request, v1::PushResponse* response) {
  return Handle(ctx, gate_, "varscope.v1.VariableData.Push",
                [&](const Admission& call) -> absl::Status {
    if (request->updates_size() == 0) {
      return absl::InvalidArgumentError("Push needs at least one update");
    }
    std::vector<core::Update> updates;
    updates.reserve(request->updates_size());
    for (const v1::Update& update : request->updates()) {
      VARSCOPE_RETURN_IF_ERROR(call.CheckName(update.name()));
      VARSCOPE_ASSIGN_OR_RETURN(core::Update u, FromProto(update));
      updates.push_back(std::move(u));
    }
    VARSCOPE_ASSIGN_OR_RETURN(std::vector<core::UpdateResult> results,
                              data_->Push(std::move(updates)));
    for (const core::UpdateResult& r : results) {
      ToProto(r, response->add_results());
    }
    return absl::OkStatus();
  });
}

grpc::ServerReadReactor<grpc::ByteBuffer>* VariableDataService::PushStream(
    Context* ctx, grpc::ByteBuffer* response) {
  constexpr char kMethod[] = "varscope.v1.VariableData.PushStream";
  absl::StatusOr<Admission> call = gate_->Admit(*ctx, kMethod);
  if (!call.ok()) {
    LogFailure(kMethod, call.status());
    return new Rejected<grpc::ServerReadReactor<grpc::ByteBuffer>>(
        call.status());
  }
  return new PushStreamReactor(*std::move(call), data_, response);
}

grpc::ServerUnaryReactor* VariableDataService::SetOptimizer(
    Context* ctx, const v1::SetOptimizerRequest* request,
    v1::SetOptimizerResponse* response) {
  return Handle(ctx, gate_, "varscope.v1.VariableData.SetOptimizer",
                [&](const Admission& call) -> absl::Status {
    if (request->names_size() == 0) {
      return absl::InvalidArgumentError("SetOptimizer needs variable names");
    }
    core::TrainingConfig config;
    if (request->has_optimizer()) {
      VARSCOPE_ASSIGN_OR_RETURN(config.optimizer,
                                FromProto(request->optimizer()));
    }
    config.replicas_to_aggregate = request->replicas_to_aggregate();
    const std::vector<std::string> names(request->names().begin(),
                                         request->names().end());
    for (const std::string& name : names) {
      VARSCOPE_RETURN_IF_ERROR(call.CheckName(name));
    }
    VARSCOPE_RETURN_IF_ERROR(data_->SetTraining(names, config));
    for (const std::string& name : names) {
      VARSCOPE_ASSIGN_OR_RETURN(core::TrainingInfo info,
                                data_->DescribeTraining(name));
      ToProto(info, core::StripTensorSuffix(name), response->add_variables());
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* VariableDataService::DescribeTraining(
    Context* ctx, const v1::DescribeTrainingRequest* request,
    v1::TrainingState* response) {
  return Handle(ctx, gate_, "varscope.v1.VariableData.DescribeTraining",
                [&](const Admission& call) -> absl::Status {
    VARSCOPE_RETURN_IF_ERROR(call.CheckName(request->name()));
    VARSCOPE_ASSIGN_OR_RETURN(core::TrainingInfo info,
                              data_->DescribeTraining(request->name()));
    ToProto(info, core::StripTensorSuffix(request->name()), response);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* VariableDataService::WaitVersion(
    Context* ctx, const v1::WaitVersionRequest* request,
    v1::WaitVersionResponse* response) {
  constexpr char kMethod[] = "varscope.v1.VariableData.WaitVersion";
  absl::StatusOr<Admission> admitted = gate_->Admit(*ctx, kMethod);
  absl::Status status = admitted.status();
  if (status.ok()) status = admitted->CheckName(request->name());
  if (!status.ok()) return Finish(ctx, kMethod, status);
  // Held by the reactor's callbacks: the in-flight slot lasts the wait.
  auto call = std::make_shared<Admission>(std::move(*admitted));
  const std::string name(core::StripTensorSuffix(request->name()));
  const uint64_t target = request->version();
  const absl::Duration timeout = WaitTimeout(request->timeout_ms());
  core::VariableStore* store = store_;
  return WaitingReactor::Start(
      ctx, &store_->feed(), core::ChangeMatch::Names({name}), timeout,
      [=]() -> std::optional<grpc::Status> {
        (void)call;  // keeps the in-flight slot for the wait's life
        absl::StatusOr<core::VariableHandle> var = store->Find(name);
        if (!var.ok() && !absl::IsNotFound(var.status())) {
          return ToGrpcStatus(var.status());
        }
        if (!var.ok() || var->cell->version() <= target) return std::nullopt;
        response->set_version(var->cell->version());
        return grpc::Status::OK;
      },
      [=]() {
        absl::StatusOr<core::VariableHandle> var = store->Find(name);
        const uint64_t now = var.ok() ? var->cell->version() : 0;
        return grpc::Status(
            grpc::StatusCode::DEADLINE_EXCEEDED,
            absl::StrCat("variable ", name, " is at version ", now,
                         (var.ok() ? "" : " (it does not exist yet)"),
                         " after waiting ", absl::FormatDuration(timeout),
                         " for a version above ", target));
      });
}

grpc::ServerWriteReactor<v1::WatchEvent>* VariableDataService::Watch(
    Context* ctx, const v1::WatchRequest* request) {
  constexpr char kMethod[] = "varscope.v1.VariableData.Watch";
  absl::StatusOr<Admission> call = gate_->Admit(*ctx, kMethod);
  absl::Status status = call.status();
  // A scope-limited token watches one of its prefixes (or below).
  if (status.ok()) status = call->CheckName(request->prefix());
  if (!status.ok()) {
    LogFailure(kMethod, status);
    return new Rejected<grpc::ServerWriteReactor<v1::WatchEvent>>(status);
  }
  return new WatchReactor(*std::move(call), store_, *request);
}

}  // namespace varscope::service
