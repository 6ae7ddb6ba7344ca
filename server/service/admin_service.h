// File: admin_service.h
// gRPC handlers of varscope.v1.Admin. Checkpoint work does disk I/O, which
// must not run inside a gRPC reaction, so each call is queued on the
// server's worker thread, which finishes the reactor when done.
//
// Thread-safety: handlers may run concurrently; the worker runs jobs one
// at a time.
#ifndef VARSCOPE_SERVER_SERVICE_ADMIN_SERVICE_H_
#define VARSCOPE_SERVER_SERVICE_ADMIN_SERVICE_H_

#include <deque>
#include <functional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/core/storage/checkpoint.h"
#include "server/core/namespace/session_manager.h"
#include "server/service/call_gate.h"
#include "varscope/v1/admin.grpc.pb.h"

namespace varscope::service {

// One background thread running queued jobs in order.
class Worker {
 public:
  Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  // Runs the jobs already queued, then joins.
  ~Worker();
  void Post(std::function<void()> job) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Loop();
  absl::Mutex mu_;
  std::deque<std::function<void()>> jobs_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

class AdminService final : public ::varscope::v1::Admin::CallbackService {
 public:
  // Not owned. `checkpointer` is null without --data_dir.
  // Facts GetStats reports that the service cannot see for itself.
  struct ServerFacts {
    std::string version;
    absl::Time started;
    bool tls_enabled = false;
    int shard = 0;  // index in the cluster; 0 for a single server
  };
  AdminService(core::Checkpointer* checkpointer, core::VariableStore* store,
               core::SessionManager* sessions, core::Env* env, Worker* worker,
               CallGate* gate, ServerFacts facts)
      : checkpointer_(checkpointer),
        store_(store),
        sessions_(sessions),
        env_(env),
        worker_(worker),
        gate_(gate),
        facts_(std::move(facts)) {}

  using Context = grpc::CallbackServerContext;
  grpc::ServerUnaryReactor* Save(Context* ctx, const v1::SaveRequest* request,
                                 v1::CheckpointInfo* response) override;
  grpc::ServerUnaryReactor* ListCheckpoints(
      Context* ctx, const v1::ListCheckpointsRequest* request,
      v1::ListCheckpointsResponse* response) override;
  grpc::ServerUnaryReactor* Restore(Context* ctx,
                                    const v1::RestoreRequest* request,
                                    v1::RestoreResponse* response) override;
  grpc::ServerUnaryReactor* Import(Context* ctx,
                                   const v1::ImportRequest* request,
                                   v1::ImportResponse* response) override;
  grpc::ServerUnaryReactor* GetStats(Context* ctx,
                                     const v1::GetStatsRequest* request,
                                     v1::ServerStats* response) override;
  grpc::ServerUnaryReactor* ListSessions(Context* ctx,
                                         const v1::ListSessionsRequest* request,
                                         v1::ListSessionsResponse* response) override;

 private:
  template <typename Body>
  grpc::ServerUnaryReactor* Queue(Context* ctx, const char* method,
                                  bool needs_data_dir, Body body);

  core::Checkpointer* const checkpointer_;  // Not owned; may be null.
  core::VariableStore* const store_;        // Not owned.
  core::SessionManager* const sessions_;    // Not owned.
  core::Env* const env_;                    // Not owned.
  Worker* const worker_;                    // Not owned.
  CallGate* const gate_;                    // Not owned.
  const ServerFacts facts_;
};

void ToProto(const core::CheckpointInfo& info, v1::CheckpointInfo* out);

}  // namespace varscope::service

#endif  // VARSCOPE_SERVER_SERVICE_ADMIN_SERVICE_H_
