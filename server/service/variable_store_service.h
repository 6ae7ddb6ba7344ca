// File: variable_store_service.h
// gRPC handlers of varscope.v1.VariableStore on the callback API. Each
// handler converts the request, calls the core, converts the result and
// finishes: no business rules live here.
//
// Thread-safety: handlers run concurrently on gRPC's callback threads; the
// core objects they call are thread-safe. Core calls are short (no I/O, no
// waits except for a racing creator's initialization), so they run inline.
#ifndef VARSCOPE_SERVER_SERVICE_VARIABLE_STORE_SERVICE_H_
#define VARSCOPE_SERVER_SERVICE_VARIABLE_STORE_SERVICE_H_

#include "server/core/namespace/session_manager.h"
#include "server/core/namespace/variable_store.h"
#include "server/service/call_gate.h"
#include "varscope/v1/variable_store.grpc.pb.h"

namespace varscope::service {

class VariableStoreService final
    : public ::varscope::v1::VariableStore::CallbackService {
 public:
  // No argument is owned; all must outlive the service.
  // `names_order`: list collections in name order (a cluster shard, whose
  // listings are merged by name).
  VariableStoreService(core::VariableStore* store,
                       core::SessionManager* sessions, CallGate* gate,
                       bool names_order = false)
      : store_(store), sessions_(sessions), gate_(gate), names_order_(names_order) {}

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
  Reactor* ReuseVariables(Context* ctx,
                          const v1::ReuseVariablesRequest* request,
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
  Reactor* DescribeVariable(Context* ctx,
                            const v1::DescribeVariableRequest* request,
                            v1::Variable* response) override;
  Reactor* DeleteVariable(Context* ctx,
                          const v1::DeleteVariableRequest* request,
                          v1::DeleteVariableResponse* response) override;

 private:
  // PERMISSION_DENIED when `session` was opened with another token.
  absl::Status CheckOwner(const Admission& call, uint64_t session) const;
  // ListScopes' handles part: the session's handles, the root first.
  absl::Status ListHandles(const Admission& call, uint64_t session,
                           v1::ListScopesResponse* response);
  absl::Status RunGetVariable(const v1::GetVariableRequest& request,
                              const Admission& call,
                              v1::GetVariableResponse* response);
  // The full variable name a waiting GetVariable waits for.
  absl::StatusOr<std::string> WaitedName(const v1::GetVariableRequest& request);

  core::VariableStore* const store_;       // Not owned.
  core::SessionManager* const sessions_;   // Not owned.
  CallGate* const gate_;                   // Not owned.
  const bool names_order_;
};

}  // namespace varscope::service

#endif  // VARSCOPE_SERVER_SERVICE_VARIABLE_STORE_SERVICE_H_
