// File: variable_data_service.h
// gRPC handlers of varscope.v1.VariableData. Pull, PullStream and Gather
// (and PushStream's requests) are raw methods: their responses are encoded by tensor_coding.h and point
// at the stored tensor snapshot instead of copying it, and pushed chunks are
// copied once, from the received slices into the new value. Everything else is
// typed. Waiting calls (WaitVersion) and Watch park without a thread and
// are woken by the store's change feed.
//
// Thread-safety: handlers run concurrently on gRPC's callback threads; the
// core objects are thread-safe.
#ifndef VARSCOPE_SERVER_SERVICE_VARIABLE_DATA_SERVICE_H_
#define VARSCOPE_SERVER_SERVICE_VARIABLE_DATA_SERVICE_H_

#include "server/core/data/data_plane.h"
#include "server/core/namespace/variable_store.h"
#include "server/service/call_gate.h"
#include "varscope/v1/variable_data.grpc.pb.h"

namespace varscope::service {

namespace internal {
using DataBase = ::varscope::v1::VariableData::WithRawCallbackMethod_Pull<
    ::varscope::v1::VariableData::WithRawCallbackMethod_PullStream<
        ::varscope::v1::VariableData::WithRawCallbackMethod_Gather<
            ::varscope::v1::VariableData::WithCallbackMethod_Push<
                ::varscope::v1::VariableData::WithRawCallbackMethod_PushStream<
                    ::varscope::v1::VariableData::WithCallbackMethod_SetOptimizer<
                        ::varscope::v1::VariableData::
                            WithCallbackMethod_DescribeTraining<
                                ::varscope::v1::VariableData::
                                    WithCallbackMethod_WaitVersion<
                                        ::varscope::v1::VariableData::
                                            WithCallbackMethod_Watch<
                                                ::varscope::v1::VariableData::
                                                    Service>>>>>>>>>;
}  // namespace internal

class VariableDataService final : public internal::DataBase {
 public:
  // Not owned; all must outlive the service. `max_message_bytes` caps
  // unary responses (larger reads must use PullStream).
  VariableDataService(core::VariableStore* store, core::DataPlane* data,
                      CallGate* gate, int max_message_bytes)
      : store_(store),
        data_(data),
        gate_(gate),
        max_message_bytes_(max_message_bytes) {}

  using Context = grpc::CallbackServerContext;
  grpc::ServerUnaryReactor* Pull(Context* ctx, const grpc::ByteBuffer* request,
                                 grpc::ByteBuffer* response) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* PullStream(
      Context* ctx, const grpc::ByteBuffer* request) override;
  grpc::ServerUnaryReactor* Gather(Context* ctx,
                                   const grpc::ByteBuffer* request,
                                   grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* Push(Context* ctx, const v1::PushRequest* request,
                                 v1::PushResponse* response) override;
  grpc::ServerReadReactor<grpc::ByteBuffer>* PushStream(
      Context* ctx, grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* SetOptimizer(
      Context* ctx, const v1::SetOptimizerRequest* request,
      v1::SetOptimizerResponse* response) override;
  grpc::ServerUnaryReactor* DescribeTraining(
      Context* ctx, const v1::DescribeTrainingRequest* request,
      v1::TrainingState* response) override;
  grpc::ServerUnaryReactor* WaitVersion(
      Context* ctx, const v1::WaitVersionRequest* request,
      v1::WaitVersionResponse* response) override;
  grpc::ServerWriteReactor<v1::WatchEvent>* Watch(
      Context* ctx, const v1::WatchRequest* request) override;

 private:
  core::VariableStore* const store_;  // Not owned.
  core::DataPlane* const data_;       // Not owned.
  CallGate* const gate_;              // Not owned.
  const int max_message_bytes_;
};

}  // namespace varscope::service

#endif  // VARSCOPE_SERVER_SERVICE_VARIABLE_DATA_SERVICE_H_
