// File: client_data.h (internal)
// The data-plane half of varscope::Client: pulls, pushes, sparse rows,
// optimizers, version waits and watches over the VariableData service.
// These calls need no session, so they bypass session recovery.
//
// Thread-safety: all methods may be called concurrently.
#ifndef VARSCOPE_CLIENT_SRC_CLIENT_DATA_H_
#define VARSCOPE_CLIENT_SRC_CLIENT_DATA_H_

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <memory>

#include "varscope/client.h"
#include "varscope/v1/variable_data.grpc.pb.h"

namespace varscope {

class Client::Data {
 public:
  // Tensors of at least this many bytes move as streams of chunks.
  static constexpr size_t kStreamBytes = size_t{1} << 20;
  // Chunk payload: 1 MiB less room for the message header, so a stream
  // also fits a server whose message limit is 1 MiB.
  static constexpr size_t kChunkBytes = (size_t{1} << 20) - 4096;

  Data(std::shared_ptr<grpc::Channel> channel, ClientOptions options)
      : stub_(v1::VariableData::NewStub(channel)),
        generic_(channel),
        options_(std::move(options)) {}

  absl::StatusOr<PullResult> Pull(absl::string_view name, DataType dtype,
                                  void* out, size_t bytes,
                                  const PullOptions& options);
  absl::StatusOr<v1::PullResponse> PullMany(const std::vector<std::string>& names);
  absl::StatusOr<std::vector<v1::UpdateResult>> PushMany(
      const std::vector<PushItem>& items);
  absl::StatusOr<v1::UpdateResult> PushStream(const PushItem& item);
  absl::StatusOr<v1::Tensor> Gather(absl::string_view name,
                                    const std::vector<int64_t>& indices);
  absl::StatusOr<std::vector<v1::TrainingState>> SetOptimizer(
      const std::vector<std::string>& names,
      const v1::OptimizerConfig& optimizer, int replicas);
  absl::StatusOr<v1::TrainingState> DescribeTraining(absl::string_view name);
  absl::StatusOr<uint64_t> WaitVersion(absl::string_view name, uint64_t version,
                                       absl::Duration timeout);
  std::unique_ptr<WatchStream> Watch(absl::string_view prefix,
                                     bool send_initial, uint32_t buffer);

 private:
  void SetDeadline(grpc::ClientContext* context, size_t bytes = 0,
                   absl::Duration extra = absl::ZeroDuration()) const;
  absl::StatusOr<PullResult> PullUnary(const v1::Selector& selector,
                                       DataType dtype, void* out, size_t bytes);
  absl::StatusOr<PullResult> PullStream(const v1::Selector& selector,
                                        DataType dtype, void* out, size_t bytes);

  std::unique_ptr<v1::VariableData::Stub> stub_;
  grpc::GenericStub generic_;  // raw streams for large tensors
  const ClientOptions options_;
};

}  // namespace varscope

#endif  // VARSCOPE_CLIENT_SRC_CLIENT_DATA_H_
