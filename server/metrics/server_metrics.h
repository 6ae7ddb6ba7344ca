// File: server_metrics.h
// Everything the metrics endpoint reports about one varscoped, gathered at
// scrape time from the objects that already count it (no second set of
// books): the RPC interceptor, the store, sessions, the data plane, the
// checkpointer and the write-ahead log.
//
// What it reveals: method names, call counts and latencies, counts and
// sizes of variables, sessions and bytes moved. Never a variable's name or
// value, a session's owner, or a token.
//
// Thread-safety: Render may run concurrently with everything it reads.
#ifndef VARSCOPE_SERVER_METRICS_SERVER_METRICS_H_
#define VARSCOPE_SERVER_METRICS_SERVER_METRICS_H_

#include <string>

#include "absl/time/time.h"
#include "server/core/data/data_plane.h"
#include "server/core/namespace/session_manager.h"
#include "server/core/namespace/variable_store.h"
#include "server/core/shared_memory/segments.h"
#include "server/core/storage/checkpoint.h"
#include "server/core/storage/journal.h"
#include "server/metrics/rpc_metrics.h"

namespace varscope::metrics {

// Not owned; each must outlive the endpoint. Null checkpointer and journal
// = no data directory (those families are then left out).
struct MetricSources {
  const RpcMetrics* rpcs = nullptr;
  const core::VariableStore* store = nullptr;
  const core::SessionManager* sessions = nullptr;
  const core::DataPlane* data = nullptr;
  const core::Checkpointer* checkpointer = nullptr;
  const core::Journal* journal = nullptr;
  // Null when same-host shared memory is off.
  const core::SharedSegments* shared_segments = nullptr;
  std::string version;
  absl::Time started;
  int shard = -1;  // this process's index in its cluster; -1 = single server
};

std::string RenderServerMetrics(const MetricSources& sources);

}  // namespace varscope::metrics

#endif  // VARSCOPE_SERVER_METRICS_SERVER_METRICS_H_
