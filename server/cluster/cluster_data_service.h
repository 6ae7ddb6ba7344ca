// File: cluster_data_service.h
// varscope.v1.VariableData of a cluster shard: routes each call to the
// shard that owns its variables and answers locally (through the shard's
// own VariableDataService) what this shard owns. Calls naming variables of
// several shards are split: each shard applies its part atomically, and a
// push or SetOptimizer that applied on some shards but failed on others
// answers ABORTED, reason PARTIALLY_APPLIED, listing what applied. Watch
// fans out to every shard. Pushes and SetOptimizer calls pass the shard's
// cut gate (cut_gate.h): while a cluster checkpoint pauses the shard they
// wait, and a PushStream starting then is refused UNAVAILABLE (retry).
//
// Thread-safety: handlers run concurrently on gRPC's callback threads.
#ifndef VARSCOPE_SERVER_CLUSTER_CLUSTER_DATA_SERVICE_H_
#define VARSCOPE_SERVER_CLUSTER_CLUSTER_DATA_SERVICE_H_

#include <string>
#include <vector>

#include "server/cluster/cut_gate.h"
#include "server/cluster/routing.h"
#include "server/service/variable_data_service.h"

namespace varscope::cluster {

class ClusterDataService final : public service::internal::DataBase {
 public:
  // Not owned; all must outlive the service.
  ClusterDataService(service::VariableDataService* local, const Routing* routing,
                     CutGate* cuts)
      : local_(local), routing_(routing), cuts_(cuts) {}

  using Context = grpc::CallbackServerContext;
  grpc::ServerUnaryReactor* Pull(Context* ctx, const grpc::ByteBuffer* request,
                                 grpc::ByteBuffer* response) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* PullStream(
      Context* ctx, const grpc::ByteBuffer* request) override;
  grpc::ServerUnaryReactor* Gather(Context* ctx, const grpc::ByteBuffer* request,
                                   grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* Push(Context* ctx, const v1::PushRequest* request,
                                 v1::PushResponse* response) override;
  grpc::ServerReadReactor<grpc::ByteBuffer>* PushStream(
      Context* ctx, grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* SetOptimizer(Context* ctx,
                                         const v1::SetOptimizerRequest* request,
                                         v1::SetOptimizerResponse* response) override;
  grpc::ServerUnaryReactor* DescribeTraining(Context* ctx,
                                             const v1::DescribeTrainingRequest* request,
                                             v1::TrainingState* response) override;
  grpc::ServerUnaryReactor* WaitVersion(Context* ctx, const v1::WaitVersionRequest* request,
                                        v1::WaitVersionResponse* response) override;
  grpc::ServerWriteReactor<v1::WatchEvent>* Watch(Context* ctx,
                                                  const v1::WatchRequest* request) override;

 private:
  // While a cluster cut pauses this shard: admits the call now, keeps it,
  // and once the shard resumes sends it to this shard's front again.
  template <typename Request, typename Response>
  grpc::ServerUnaryReactor* KeepForLater(Context* ctx, const char* full_method,
                                         const char* path, const std::vector<std::string>& names,
                                         const Request& request, Response* response);

  service::VariableDataService* const local_;  // Not owned.
  const Routing* const routing_;               // Not owned.
  CutGate* const cuts_;                        // Not owned.
};

}  // namespace varscope::cluster

#endif  // VARSCOPE_SERVER_CLUSTER_CLUSTER_DATA_SERVICE_H_
