#include "server/cluster/stream_proxies.h"

#include <grpcpp/generic/generic_stub.h>

#include <atomic>
#include <deque>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "server/service/handle.h"
#include "server/service/status_convert.h"
#include "varscope/v1/variable_data.grpc.pb.h"

namespace varscope::cluster {
namespace {

constexpr char kPullStream[] = "/varscope.v1.VariableData/PullStream";
constexpr char kPushStream[] = "/varscope.v1.VariableData/PushStream";

// ---------------------------------------------------------------------------
// PullStream: one request up, chunks down, one chunk in flight.

class PullRelay final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  PullRelay(const Routing& routing, int owner, service::Admission call,
            const grpc::ByteBuffer& request, absl::Time deadline)
      : call_(std::move(call)), request_(request), stub_(routing.peers().channel(owner)),
        upstream_(this) {
    routing.peers().Prepare(&upstream_.context, deadline, &call_);
    stub_.PrepareBidiStreamingCall(&upstream_.context, kPullStream, grpc::StubOptions(),
                                   &upstream_);
    upstream_.StartWrite(&request_);
    upstream_.StartWritesDone();
    upstream_.StartRead(&chunk_);
    // Held until the relay issues no more reads upstream: upstream's
    // OnDone (which finishes this reactor) never comes between a chunk
    // read and the next read.
    upstream_.AddHold();
    upstream_.StartCall();
  }

  void OnWriteDone(bool ok) override {
    if (ok) {
      upstream_.StartRead(&chunk_);
    } else {
      upstream_.context.TryCancel();  // the client went away
      upstream_.RemoveHold();
    }
  }
  void OnCancel() override { upstream_.context.TryCancel(); }
  void OnDone() override { delete this; }  // after Finish, so after upstream's OnDone

 private:
  struct Upstream final : grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
    explicit Upstream(PullRelay* relay) : relay(relay) {}
    void OnReadDone(bool ok) override {
      if (ok) {
        relay->StartWrite(&relay->chunk_);
      } else {
        RemoveHold();  // the last chunk came
      }
    }
    void OnDone(const grpc::Status& status) override { relay->Finish(status); }
    PullRelay* relay;
    grpc::ClientContext context;
  };

  service::Admission call_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer chunk_;
  grpc::GenericStub stub_;
  Upstream upstream_;
};

// ---------------------------------------------------------------------------
// PushStream: chunks up (the first names the variable, so the owner is
// known only then), one response down.

class PushRelay final : public grpc::ServerReadReactor<grpc::ByteBuffer> {
 public:
  PushRelay(const Routing& routing, service::Admission call, grpc::ByteBuffer* response,
            absl::Time deadline)
      : routing_(routing), call_(std::move(call)), response_(response), deadline_(deadline),
        upstream_(this) {
    StartRead(&chunk_);
  }

  void OnReadDone(bool ok) override {
    if (!started_) {
      if (!ok) return Fail(absl::InvalidArgumentError("the PushStream sent no message"));
      v1::PushChunk first;
      if (!Parse(chunk_, &first) || !first.has_update()) {
        return Fail(absl::InvalidArgumentError(
            "the first PushStream message must hold the update (name, op, dtype)"));
      }
      if (absl::Status s = call_.CheckName(first.update().name()); !s.ok()) return Fail(s);
      Start(routing_.OwnerOf(first.update().name()));
      return;
    }
    if (ok) {
      upstream_.StartWrite(&chunk_);
    } else {
      upstream_.StartWritesDone();  // the client sent everything
      upstream_.RemoveHold();
    }
  }
  void OnCancel() override {
    if (started_) upstream_.context.TryCancel();
  }
  void OnDone() override { delete this; }

 private:
  struct Upstream final : grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
    explicit Upstream(PushRelay* relay) : relay(relay) {}
    void OnWriteDone(bool ok) override {
      if (ok) {
        relay->StartRead(&relay->chunk_);
      } else {
        RemoveHold();  // OnDone reports why
      }
    }
    void OnReadDone(bool ok) override {
      if (ok) *relay->response_ = std::move(relay->reply_);
    }
    void OnDone(const grpc::Status& status) override { relay->Finish(status); }
    PushRelay* relay;
    grpc::ClientContext context;
  };

  void Start(int owner) {
    started_ = true;
    stub_ = std::make_unique<grpc::GenericStub>(routing_.peers().channel(owner));
    routing_.peers().Prepare(&upstream_.context, deadline_, &call_);
    stub_->PrepareBidiStreamingCall(&upstream_.context, kPushStream, grpc::StubOptions(),
                                    &upstream_);
    upstream_.StartWrite(&chunk_);
    upstream_.StartRead(&reply_);
    // Held while the relay may still read from the client and write up:
    // upstream's OnDone (which finishes this reactor) comes only after.
    upstream_.AddHold();
    upstream_.StartCall();
  }
  void Fail(const absl::Status& status) { Finish(service::ToGrpcStatus(status)); }

  const Routing& routing_;
  service::Admission call_;
  grpc::ByteBuffer* const response_;
  const absl::Time deadline_;
  std::atomic<bool> started_{false};  // read by OnCancel on another thread
  grpc::ByteBuffer chunk_;
  grpc::ByteBuffer reply_;
  std::unique_ptr<grpc::GenericStub> stub_;
  Upstream upstream_;
};

// ---------------------------------------------------------------------------
// Watch: every shard's events into one stream, through a bounded queue
// (overflow: the queue is dropped for one RESYNC, as a shard does).

class WatchMerge final : public grpc::ServerWriteReactor<v1::WatchEvent> {
 public:
  WatchMerge(const Routing& routing, service::Admission call, const v1::WatchRequest& request,
             absl::Time deadline)
      : routing_(routing), call_(std::move(call)), request_(request),
        capacity_(request.buffer_events() > 0 ? request.buffer_events() : 1024) {
    const int shards = routing.spec().size();
    // All built before any starts: a failing one cancels the others.
    for (int shard = 0; shard < shards; ++shard) {
      upstreams_.push_back(std::make_unique<Upstream>(this, shard));
      Upstream& up = *upstreams_.back();
      routing.peers().Prepare(&up.context, deadline, &call_);
      up.stub = v1::VariableData::NewStub(routing.peers().channel(shard));
    }
    {
      absl::MutexLock lock(&mu_);
      live_upstreams_ = shards;
    }
    for (auto& up : upstreams_) {
      up->stub->async()->Watch(&up->context, &request_, up.get());
      up->StartRead(&up->event);
      up->StartCall();
    }
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      CancelAllLocked();
      return;
    }
    queue_.pop_front();
    PumpLocked();
  }
  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    CancelAllLocked();
  }
  void OnDone() override {
    bool last;
    {
      absl::MutexLock lock(&mu_);
      server_done_ = true;
      last = live_upstreams_ == 0;
    }
    if (last) delete this;
  }

 private:
  struct Upstream final : grpc::ClientReadReactor<v1::WatchEvent> {
    Upstream(WatchMerge* merge, int shard) : merge(merge), shard(shard) {}
    void OnReadDone(bool ok) override {
      if (!ok) return;
      merge->Add(event);
      StartRead(&event);
    }
    void OnDone(const grpc::Status& status) override { merge->UpstreamDone(shard, status); }
    WatchMerge* merge;
    int shard;
    grpc::ClientContext context;
    std::unique_ptr<v1::VariableData::Stub> stub;
    v1::WatchEvent event;
  };

  void Add(const v1::WatchEvent& event) {
    // Peers answer with every name; this caller's token may see fewer.
    if (!event.name().empty() && !call_.MayTouch(event.name())) return;
    absl::MutexLock lock(&mu_);
    if (finishing_) return;
    if (queue_.size() >= capacity_ + (writing_ ? 1 : 0)) {
      // Too far behind: drop what is queued (but not the event being
      // written) and say so once.
      while (queue_.size() > (writing_ ? 1u : 0u)) queue_.pop_back();
      v1::WatchEvent resync;
      resync.set_kind(v1::WatchEvent::RESYNC);
      queue_.push_back(resync);
    } else {
      queue_.push_back(event);
    }
    PumpLocked();
  }

  void UpstreamDone(int shard, const grpc::Status& status) {
    bool destroy = false;
    {
      absl::MutexLock lock(&mu_);
      --live_upstreams_;
      // The first failure ends the watch (unless we are ending it anyway).
      if (!finishing_) {
        finishing_ = true;
        final_ = status.ok()
                     ? grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                    absl::StrCat(routing_.peers().Describe(shard),
                                                 " ended its part of the watch"))
                     : grpc::Status(status.error_code(),
                                    absl::StrCat(routing_.peers().Describe(shard), ": ",
                                                 status.error_message()),
                                    status.error_details());
        CancelAllLocked();
      }
      if (live_upstreams_ == 0) {
        if (!finished_) {
          finished_ = true;
          Finish(final_);
        }
        destroy = server_done_;
      }
    }
    if (destroy) delete this;
  }

  void PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || queue_.empty() || finishing_) return;
    writing_ = true;
    StartWrite(&queue_.front());
  }
  void CancelAllLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!finishing_) {
      finishing_ = true;
      final_ = grpc::Status(grpc::StatusCode::CANCELLED, "watch cancelled");
    }
    for (auto& up : upstreams_) up->context.TryCancel();
  }

  const Routing& routing_;
  service::Admission call_;
  const v1::WatchRequest request_;
  const size_t capacity_;
  std::vector<std::unique_ptr<Upstream>> upstreams_;  // set in the constructor

  absl::Mutex mu_;
  std::deque<v1::WatchEvent> queue_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool server_done_ ABSL_GUARDED_BY(mu_) = false;
  int live_upstreams_ ABSL_GUARDED_BY(mu_) = 0;
  grpc::Status final_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

grpc::ServerWriteReactor<grpc::ByteBuffer>* ProxyPullStream(grpc::CallbackServerContext* ctx,
                                                            const Routing& routing, int owner,
                                                            const grpc::ByteBuffer& request) {
  absl::StatusOr<service::Admission> call =
      routing.gate().Admit(*ctx, "varscope.v1.VariableData.PullStream");
  v1::PullStreamRequest parsed;
  if (call.ok() && Parse(request, &parsed)) {
    if (absl::Status s = call->CheckName(parsed.variable().name()); !s.ok()) call = s;
  }
  if (!call.ok()) {
    return new service::Rejected<grpc::ServerWriteReactor<grpc::ByteBuffer>>(call.status());
  }
  return new PullRelay(routing, owner, *std::move(call), request, Routing::DeadlineOf(*ctx));
}

grpc::ServerReadReactor<grpc::ByteBuffer>* ProxyPushStream(grpc::CallbackServerContext* ctx,
                                                           const Routing& routing,
                                                           grpc::ByteBuffer* response) {
  absl::StatusOr<service::Admission> call =
      routing.gate().Admit(*ctx, "varscope.v1.VariableData.PushStream");
  if (!call.ok()) {
    return new service::Rejected<grpc::ServerReadReactor<grpc::ByteBuffer>>(call.status());
  }
  return new PushRelay(routing, *std::move(call), response, Routing::DeadlineOf(*ctx));
}

grpc::ServerWriteReactor<v1::WatchEvent>* WatchEveryShard(grpc::CallbackServerContext* ctx,
                                                          const Routing& routing,
                                                          const v1::WatchRequest& request) {
  absl::StatusOr<service::Admission> call =
      routing.gate().Admit(*ctx, "varscope.v1.VariableData.Watch");
  if (!call.ok()) {
    return new service::Rejected<grpc::ServerWriteReactor<v1::WatchEvent>>(call.status());
  }
  return new WatchMerge(routing, *std::move(call), request, Routing::DeadlineOf(*ctx));
}

}  // namespace varscope::cluster
