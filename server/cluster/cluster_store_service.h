// File: cluster_store_service.h
// varscope.v1.VariableStore of a cluster shard. Sessions and their scopes
// live on the shard that opened the session (its home; session ids and
// scope handles carry the home's index): session calls are forwarded
// there. A GetVariable resolves its full name at the home and
// creates-or-fetches on the shard that owns the name, atomically there, so
// reuse rules and racing creators behave as on one server. Listings fan
// out to every shard and merge; a shard that does not answer fails the
// listing, naming it. Everything this shard can answer alone goes to its
// own VariableStoreService.
//
// Thread-safety: handlers run concurrently on gRPC's callback threads.
#ifndef VARSCOPE_SERVER_CLUSTER_CLUSTER_STORE_SERVICE_H_
#define VARSCOPE_SERVER_CLUSTER_CLUSTER_STORE_SERVICE_H_

#include "server/cluster/routing.h"
#include "server/core/namespace/session_manager.h"
#include "server/core/namespace/variable_store.h"
#include "server/cluster/spread_parts.h"
#include "server/service/variable_store_service.h"

namespace varscope::cluster {

class ClusterStoreService final : public v1::VariableStore::CallbackService {
 public:
  // Not owned; all must outlive the service.
  ClusterStoreService(service::VariableStoreService* local, core::VariableStore* store,
                      core::SessionManager* sessions, const Routing* routing,
                      PartSpreader* parts)
      : local_(local), store_(store), sessions_(sessions), routing_(routing), parts_(parts) {}

  using Context = grpc::CallbackServerContext;
  using Reactor = grpc::ServerUnaryReactor;
  Reactor* OpenSession(Context* ctx, const v1::OpenSessionRequest* request,
                       v1::OpenSessionResponse* response) override;
  Reactor* KeepAlive(Context* ctx, const v1::KeepAliveRequest* request,
                     v1::KeepAliveResponse* response) override;
  Reactor* CloseSession(Context* ctx, const v1::CloseSessionRequest* request,
                        v1::CloseSessionResponse* response) override;
  Reactor* OpenScope(Context* ctx, const v1::OpenScopeRequest* request,
                     v1::Scope* response) override;
  Reactor* UpdateScope(Context* ctx, const v1::UpdateScopeRequest* request,
                       v1::Scope* response) override;
  Reactor* ReuseVariables(Context* ctx, const v1::ReuseVariablesRequest* request,
                          v1::Scope* response) override;
  Reactor* CloseScope(Context* ctx, const v1::CloseScopeRequest* request,
                      v1::CloseScopeResponse* response) override;
  Reactor* GetVariable(Context* ctx, const v1::GetVariableRequest* request,
                       v1::GetVariableResponse* response) override;
  Reactor* NewVariable(Context* ctx, const v1::NewVariableRequest* request,
                       v1::Variable* response) override;
  Reactor* OpName(Context* ctx, const v1::OpNameRequest* request,
                  v1::OpNameResponse* response) override;
  Reactor* ListVariables(Context* ctx, const v1::ListVariablesRequest* request,
                         v1::ListVariablesResponse* response) override;
  Reactor* ListScopes(Context* ctx, const v1::ListScopesRequest* request,
                      v1::ListScopesResponse* response) override;
  Reactor* DescribeVariable(Context* ctx, const v1::DescribeVariableRequest* request,
                            v1::Variable* response) override;
  Reactor* DeleteVariable(Context* ctx, const v1::DeleteVariableRequest* request,
                          v1::DeleteVariableResponse* response) override;

 private:
  // The session's home shard when it is not this one, else -1.
  int RemoteHome(uint64_t session) const;
  // Forwards a session call to the session's home.
  template <typename Request, typename Response>
  Reactor* ToHome(Context* ctx, const char* full_method, int home, const Request& request,
                  Response* response);
  // GetVariable of a session homed here whose name another shard owns.
  Reactor* GetAtOwner(Context* ctx, const v1::GetVariableRequest& request,
                      const core::ScopeContext& scope, const std::string& full_name,
                      int owner, v1::GetVariableResponse* response);
  // GetVariable answered by this shard, the owner of the name: with a
  // partitioner in effect it may create parts on other shards.
  Reactor* GetHere(Context* ctx, const v1::GetVariableRequest* request,
                   v1::GetVariableResponse* response);
  // OpenScope re-entering a scope of a session homed on `home`.
  Reactor* ReenterForeign(Context* ctx, const v1::OpenScopeRequest& request, int home,
                          v1::Scope* response);

  service::VariableStoreService* const local_;  // Not owned.
  core::VariableStore* const store_;            // Not owned.
  core::SessionManager* const sessions_;        // Not owned.
  const Routing* const routing_;                // Not owned.
  PartSpreader* const parts_;                   // Not owned.
};

}  // namespace varscope::cluster

#endif  // VARSCOPE_SERVER_CLUSTER_CLUSTER_STORE_SERVICE_H_
