#include "server/cluster/cluster_store_service.h"

#include <algorithm>
#include <map>
#include <memory>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/core/base/error_info.h"
#include "server/core/base/status_macros.h"
#include "varscope/v1/cluster.pb.h"
#include "server/core/namespace/names.h"
#include "server/service/handle.h"
#include "server/service/page_token.h"
#include "server/service/proto_convert.h"
#include "server/service/status_convert.h"

namespace varscope::cluster {
namespace {

using Reactor = ClusterStoreService::Reactor;

constexpr char kStore[] = "/varscope.v1.VariableStore/";

std::string PathOf(const char* full_method) {
  // "varscope.v1.VariableStore.GetVariable" -> "/varscope.v1.VariableStore/GetVariable"
  std::string path = absl::StrCat("/", full_method);
  path[path.rfind('.')] = '/';
  return path;
}

// Whether a creation attempt lost to a name already in use (try the next).
bool NameTaken(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::ALREADY_EXISTS ||
         (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT &&
          status.error_message().find("partitioned version") != std::string::npos);
}

// The merge of one listing page from every shard. Each shard returns names
// after the cursor in order; a name past the last one of a shard that has
// more may still be missing from that shard's page, so the merged page
// ends at the smallest such last name.
template <typename Key, typename Item>
struct PageMerge {
  std::map<Key, Item> items;
  std::optional<Key> limit;  // set when a shard had more
  void Cut(const Key& last_of_full_shard) {
    if (!limit || last_of_full_shard < *limit) limit = last_of_full_shard;
  }
};

}  // namespace

int ClusterStoreService::RemoteHome(uint64_t session) const {
  if (session == 0) return -1;
  const int home = routing_->spec().HomeOf(session);
  return home >= 0 && home != routing_->self() ? home : -1;
}

template <typename Request, typename Response>
Reactor* ClusterStoreService::ToHome(Context* ctx, const char* full_method, int home,
                                     const Request& request, Response* response) {
  absl::StatusOr<service::Admission> call = routing_->gate().Admit(*ctx, full_method);
  if (!call.ok()) return FinishNow(ctx, call.status());
  return routing_->Forward(ctx, *std::move(call), home, PathOf(full_method), request, response);
}

Reactor* ClusterStoreService::OpenSession(Context* ctx, const v1::OpenSessionRequest* request,
                                          v1::OpenSessionResponse* response) {
  return local_->OpenSession(ctx, request, response);  // this shard is its home
}

#define VARSCOPE_BY_SESSION(Method, Request, Response)                                  \
  Reactor* ClusterStoreService::Method(Context* ctx, const Request* request,            \
                                       Response* response) {                            \
    if (!routing_->FromPeer(*ctx)) {                                                    \
      if (const int home = RemoteHome(request->session_id()); home >= 0) {              \
        return ToHome(ctx, "varscope.v1.VariableStore." #Method, home, *request,         \
                      response);                                                        \
      }                                                                                 \
    }                                                                                   \
    return local_->Method(ctx, request, response);                                      \
  }

VARSCOPE_BY_SESSION(KeepAlive, v1::KeepAliveRequest, v1::KeepAliveResponse)
VARSCOPE_BY_SESSION(CloseSession, v1::CloseSessionRequest, v1::CloseSessionResponse)
VARSCOPE_BY_SESSION(UpdateScope, v1::UpdateScopeRequest, v1::Scope)
VARSCOPE_BY_SESSION(ReuseVariables, v1::ReuseVariablesRequest, v1::Scope)
VARSCOPE_BY_SESSION(CloseScope, v1::CloseScopeRequest, v1::CloseScopeResponse)
VARSCOPE_BY_SESSION(OpName, v1::OpNameRequest, v1::OpNameResponse)

#undef VARSCOPE_BY_SESSION

Reactor* ClusterStoreService::OpenScope(Context* ctx, const v1::OpenScopeRequest* request,
                                        v1::Scope* response) {
  if (!routing_->FromPeer(*ctx)) {
    if (const int home = RemoteHome(request->session_id()); home >= 0) {
      return ToHome(ctx, "varscope.v1.VariableStore.OpenScope", home, *request, response);
    }
  }
  // Re-entering a scope of a session homed elsewhere: fetch it from there.
  if (request->target_case() == v1::OpenScopeRequest::kReenterScopeId) {
    const int captured_home = RemoteHome(request->reenter_scope_id());
    if (captured_home >= 0) return ReenterForeign(ctx, *request, captured_home, response);
  }
  return local_->OpenScope(ctx, request, response);
}

Reactor* ClusterStoreService::ReenterForeign(Context* ctx, const v1::OpenScopeRequest& request,
                                             int home, v1::Scope* response) {
  absl::StatusOr<service::Admission> admitted =
      routing_->gate().Admit(*ctx, "varscope.v1.VariableStore.OpenScope");
  if (!admitted.ok()) return FinishNow(ctx, admitted.status());
  auto call = std::make_shared<service::Admission>(*std::move(admitted));
  if (absl::Status s = sessions_->CheckOwner(request.session_id(), call->owner()); !s.ok()) {
    return FinishNow(ctx, s);
  }
  v1::CaptureScopeRequest capture;
  capture.set_scope_id(request.reenter_scope_id());
  capture.set_owner(call->owner());
  Reactor* reactor = ctx->DefaultReactor();
  core::SessionManager* sessions = sessions_;
  routing_->peers().Call<v1::CapturedScope>(
      home, "/varscope.v1.Peer/CaptureScope", capture, Routing::DeadlineOf(*ctx),
      [reactor, request, response, call, sessions](const grpc::Status& status,
                                                   v1::CapturedScope captured) {
        if (!status.ok()) {
          reactor->Finish(status);
          return;
        }
        absl::Status result = [&]() -> absl::Status {
          v1::OpenScopeRequest local_form = request;
          local_form.clear_reenter_scope_id();
          VARSCOPE_ASSIGN_OR_RETURN(core::OpenScopeRequest open, service::FromProto(local_form));
          core::CapturedScope state;
          state.root = captured.root();
          state.name = captured.name();
          VARSCOPE_ASSIGN_OR_RETURN(state.reuse, service::FromProto(captured.reuse()));
          if (captured.has_initializer()) {
            VARSCOPE_ASSIGN_OR_RETURN(state.initializer,
                                      service::FromProto(captured.initializer()));
          }
          VARSCOPE_ASSIGN_OR_RETURN(state.dtype, service::FromProto(captured.dtype()));
          if (captured.has_partitioner()) {
            VARSCOPE_ASSIGN_OR_RETURN(state.partitioner,
                                      service::FromProto(captured.partitioner()));
          }
          state.original_name_scope = captured.original_name_scope();
          open.reenter_state = std::move(state);
          VARSCOPE_ASSIGN_OR_RETURN(core::ScopeInfo scope,
                                    sessions->OpenScope(request.session_id(), open));
          service::ToProto(scope, response);
          return absl::OkStatus();
        }();
        reactor->Finish(service::ToGrpcStatus(result));
      },
      call.get());
  return reactor;
}

Reactor* ClusterStoreService::GetHere(Context* ctx, const v1::GetVariableRequest* request,
                                      v1::GetVariableResponse* response) {
  absl::StatusOr<core::ScopeContext> scope =
      request->session_id() == 0
          ? [&]() -> absl::StatusOr<core::ScopeContext> {
              VARSCOPE_ASSIGN_OR_RETURN(core::Reuse reuse, service::FromProto(request->reuse()));
              return core::ScopeContextForPath(request->scope(), reuse);
            }()
          : sessions_->ScopeContextFor(request->session_id(), request->scope_id());
  // Without a partitioner, or waiting for someone else's creation, nothing
  // is created on another shard: the local service answers (and reports
  // bad requests).
  if (!scope.ok() || request->name().empty() ||
      (!request->has_partitioner() && !scope->partitioner.has_value()) ||
      (request->wait_ms() > 0 && scope->reuse == core::Reuse::kReuse)) {
    return local_->GetVariable(ctx, request, response);
  }
  constexpr char kMethod[] = "varscope.v1.VariableStore.GetVariable";
  absl::StatusOr<service::Admission> admitted = routing_->gate().Admit(*ctx, kMethod);
  if (admitted.ok() && request->session_id() != 0) {
    if (absl::Status s = sessions_->CheckOwner(request->session_id(), admitted->owner());
        !s.ok()) {
      admitted = s;
    }
  }
  absl::StatusOr<core::GetVariableRequest> get =
      admitted.ok() ? service::FromProto(*request) : admitted.status();
  if (!get.ok()) return service::Finish(ctx, kMethod, get.status());
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  parts_->GetVariable(reactor, std::make_shared<service::Admission>(*std::move(admitted)),
                      *scope, *std::move(get), response, Routing::DeadlineOf(*ctx));
  return reactor;
}

Reactor* ClusterStoreService::GetVariable(Context* ctx, const v1::GetVariableRequest* request,
                                          v1::GetVariableResponse* response) {
  if (routing_->FromPeer(*ctx)) return GetHere(ctx, request, response);
  if (request->session_id() == 0) {  // one-shot: the path is absolute
    const std::string full_name = core::JoinName(request->scope(), request->name());
    const int owner = routing_->OwnerOf(full_name);
    if (owner == routing_->self()) return GetHere(ctx, request, response);
    absl::StatusOr<service::Admission> call =
        routing_->gate().Admit(*ctx, "varscope.v1.VariableStore.GetVariable");
    if (call.ok()) {
      if (absl::Status s = call->CheckName(full_name); !s.ok()) call = s;
    }
    if (!call.ok()) return FinishNow(ctx, call.status());
    return routing_->Forward(ctx, *std::move(call), owner,
                             absl::StrCat(kStore, "GetVariable"), *request, response);
  }
  if (const int home = RemoteHome(request->session_id()); home >= 0) {
    return ToHome(ctx, "varscope.v1.VariableStore.GetVariable", home, *request, response);
  }
  // Resolved here, where the session lives; errors (unknown session or
  // scope) are the local handler's to report.
  absl::StatusOr<core::ScopeContext> scope =
      sessions_->ScopeContextFor(request->session_id(), request->scope_id());
  if (!scope.ok() || request->name().empty()) {
    return local_->GetVariable(ctx, request, response);
  }
  const std::string full_name = core::JoinName(scope->name, request->name());
  const int owner = routing_->OwnerOf(full_name);
  if (owner == routing_->self()) return GetHere(ctx, request, response);
  return GetAtOwner(ctx, *request, *scope, full_name, owner, response);
}

Reactor* ClusterStoreService::GetAtOwner(Context* ctx, const v1::GetVariableRequest& request,
                                         const core::ScopeContext& scope,
                                         const std::string& full_name, int owner,
                                         v1::GetVariableResponse* response) {
  absl::StatusOr<service::Admission> call =
      routing_->gate().Admit(*ctx, "varscope.v1.VariableStore.GetVariable");
  if (call.ok()) {
    absl::Status s = sessions_->CheckOwner(request.session_id(), call->owner());
    if (s.ok()) s = call->CheckName(full_name);
    if (!s.ok()) call = s;
  }
  if (!call.ok()) return FinishNow(ctx, call.status());
  // The one-shot form carries everything the scope contributes: its path,
  // its effective reuse flag and its defaults (the request's own override
  // them, as in the scope).
  v1::GetVariableRequest at_owner = request;
  at_owner.set_session_id(0);
  at_owner.set_scope_id(0);
  at_owner.set_scope(scope.name);
  at_owner.set_reuse(service::ToProto(scope.reuse));
  if (!request.has_initializer() && scope.initializer.has_value()) {
    service::ToProto(*scope.initializer, at_owner.mutable_initializer());
  }
  if (request.dtype() == v1::DT_UNSPECIFIED && scope.dtype != core::DType::kInvalid) {
    at_owner.set_dtype(service::ToProto(scope.dtype));
  }
  if (!request.has_partitioner() && scope.partitioner.has_value()) {
    service::ToProto(*scope.partitioner, at_owner.mutable_partitioner());
  }
  return routing_->Forward(ctx, *std::move(call), owner, absl::StrCat(kStore, "GetVariable"),
                           at_owner, response);
}

namespace {

// tf.Variable in a cluster: candidate names from the session (homed here),
// each created on the shard that owns it, the next tried when one is taken.
class NewVariableLoop : public std::enable_shared_from_this<NewVariableLoop> {
 public:
  NewVariableLoop(grpc::ServerUnaryReactor* reactor, const v1::NewVariableRequest& request,
                  v1::Variable* response, std::shared_ptr<service::Admission> call,
                  core::VariableStore* store, core::SessionManager* sessions,
                  const Routing* routing, absl::Time deadline)
      : reactor_(reactor), request_(request), response_(response), call_(std::move(call)),
        store_(store), sessions_(sessions), routing_(routing), deadline_(deadline) {}

  void Next() {
    if (++attempts_ > 1000) {
      return Finish(absl::AbortedError("NewVariable could not find a free name"));
    }
    core::SessionManager::NameMarks marks;
    auto taken_here = [this](const std::string& name) {
      return routing_->OwnerOf(name) == routing_->self() && store_->NameInUse(name);
    };
    absl::StatusOr<std::string> candidate = sessions_->NextVariableName(
        request_.session_id(), request_.scope_id(), request_.name(), taken_here, &marks);
    if (!candidate.ok()) return Finish(candidate.status());
    if (absl::Status s = call_->CheckName(*candidate); !s.ok()) {
      sessions_->GiveBackNames(request_.session_id(), marks);
      return Finish(s);
    }
    const int owner = routing_->OwnerOf(*candidate);
    if (owner == routing_->self()) {
      absl::StatusOr<core::NewVariableRequest> converted = service::FromProto(request_);
      if (!converted.ok()) return GiveBack(marks, converted.status());
      absl::StatusOr<core::VariableInfo> created =
          store_->CreateVariable(*candidate, converted->variable, core::ScopeContext{});
      if (created.ok()) {
        service::ToProto(*created, response_);
        return Finish(absl::OkStatus());
      }
      if (absl::IsAlreadyExists(created.status())) return Next();
      return GiveBack(marks, created.status());
    }
    // Created on its owner with the one-shot GetVariable: at the name's own
    // scope path and without reuse, it creates or says the name is taken.
    const size_t slash = candidate->rfind('/');
    v1::GetVariableRequest create;
    create.set_scope(slash == std::string::npos ? "" : candidate->substr(0, slash));
    create.set_name(slash == std::string::npos ? *candidate : candidate->substr(slash + 1));
    if (request_.has_value()) {
      *create.mutable_initializer()->mutable_value() = request_.value();
    } else {
      if (request_.has_initializer()) *create.mutable_initializer() = request_.initializer();
      if (request_.has_shape()) *create.mutable_shape() = request_.shape();
      create.set_dtype(request_.dtype());
    }
    if (request_.has_trainable()) create.set_trainable(request_.trainable());
    if (request_.has_collections()) *create.mutable_collections() = request_.collections();
    auto self = shared_from_this();
    routing_->peers().Call<v1::GetVariableResponse>(
        owner, absl::StrCat(kStore, "GetVariable"), create, deadline_,
        [self, marks](const grpc::Status& status, v1::GetVariableResponse got) {
          if (status.ok()) {
            *self->response_ = got.variable();
            self->reactor_->Finish(grpc::Status::OK);
          } else if (NameTaken(status)) {
            self->Next();
          } else {
            self->sessions_->GiveBackNames(self->request_.session_id(), marks);
            self->reactor_->Finish(status);
          }
        },
        call_.get());
  }

 private:
  void GiveBack(const core::SessionManager::NameMarks& marks, const absl::Status& status) {
    sessions_->GiveBackNames(request_.session_id(), marks);
    Finish(status);
  }
  void Finish(const absl::Status& status) { reactor_->Finish(service::ToGrpcStatus(status)); }

  grpc::ServerUnaryReactor* const reactor_;
  const v1::NewVariableRequest request_;
  v1::Variable* const response_;
  const std::shared_ptr<service::Admission> call_;
  core::VariableStore* const store_;
  core::SessionManager* const sessions_;
  const Routing* const routing_;
  const absl::Time deadline_;
  int attempts_ = 0;  // one step at a time: never touched concurrently
};

}  // namespace

Reactor* ClusterStoreService::NewVariable(Context* ctx, const v1::NewVariableRequest* request,
                                          v1::Variable* response) {
  if (routing_->FromPeer(*ctx)) return local_->NewVariable(ctx, request, response);
  if (const int home = RemoteHome(request->session_id()); home >= 0) {
    return ToHome(ctx, "varscope.v1.VariableStore.NewVariable", home, *request, response);
  }
  // Checks that need no name first (the local handler's own messages).
  if (!request->has_value() && !request->has_initializer()) {
    return local_->NewVariable(ctx, request, response);
  }
  absl::StatusOr<service::Admission> call =
      routing_->gate().Admit(*ctx, "varscope.v1.VariableStore.NewVariable");
  if (call.ok()) {
    if (absl::Status s = sessions_->CheckOwner(request->session_id(), call->owner()); !s.ok()) {
      call = s;
    }
  }
  if (!call.ok()) return FinishNow(ctx, call.status());
  Reactor* reactor = ctx->DefaultReactor();
  auto loop = std::make_shared<NewVariableLoop>(
      reactor, *request, response, std::make_shared<service::Admission>(*std::move(call)),
      store_, sessions_, routing_, Routing::DeadlineOf(*ctx));
  loop->Next();
  return reactor;
}

Reactor* ClusterStoreService::DescribeVariable(Context* ctx,
                                               const v1::DescribeVariableRequest* request,
                                               v1::Variable* response) {
  if (routing_->FromPeer(*ctx)) return local_->DescribeVariable(ctx, request, response);
  if (absl::Status s = routing_->CheckTopology(*ctx); !s.ok()) return FinishNow(ctx, s);
  absl::StatusOr<service::Admission> admitted =
      routing_->gate().Admit(*ctx, "varscope.v1.VariableStore.DescribeVariable");
  if (admitted.ok()) {
    if (absl::Status s = admitted->CheckName(request->name()); !s.ok()) admitted = s;
  }
  if (!admitted.ok()) return FinishNow(ctx, admitted.status());
  auto call = std::make_shared<service::Admission>(*std::move(admitted));
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  const absl::Time deadline = Routing::DeadlineOf(*ctx);
  // A partitioned variable's parts on other shards: their versions are
  // theirs to tell.
  auto with_versions = [this, reactor, response, call, deadline](const grpc::Status& status) {
    if (!status.ok() || !response->partitioned()) {
      reactor->Finish(status);
      return;
    }
    std::vector<std::pair<int, v1::DescribeVariableRequest>> calls;
    std::vector<int> index;
    for (int i = 0; i < response->parts_size(); ++i) {
      const int owner = routing_->OwnerOf(response->parts(i).name());
      if (owner == routing_->self()) {
        absl::StatusOr<core::VariableInfo> part = store_->Describe(response->parts(i).name());
        if (part.ok()) {
          response->mutable_parts(i)->set_version(part->version);
          response->set_version(std::max(response->version(), part->version));
        }
        continue;
      }
      v1::DescribeVariableRequest part;
      part.set_name(response->parts(i).name());
      calls.emplace_back(owner, std::move(part));
      index.push_back(i);
    }
    FanOut<v1::Variable>(
        &routing_->peers(), absl::StrCat(kStore, "DescribeVariable"), std::move(calls), deadline,
        [reactor, response, call, index](std::vector<std::pair<grpc::Status, v1::Variable>> got) {
          for (size_t k = 0; k < got.size(); ++k) {
            // NOT_FOUND: the part's publish is still being retried (its
            // version stays 0); a shard that does not answer fails the call.
            if (got[k].first.error_code() == grpc::StatusCode::NOT_FOUND) continue;
            if (!got[k].first.ok()) {
              reactor->Finish(got[k].first);
              return;
            }
            response->mutable_parts(index[k])->set_version(got[k].second.version());
            response->set_version(std::max(response->version(), got[k].second.version()));
          }
          reactor->Finish(grpc::Status::OK);
        },
        call.get());
  };
  const int owner = routing_->OwnerOf(request->name());
  if (owner == routing_->self()) {
    absl::StatusOr<core::VariableInfo> info = store_->Describe(request->name());
    if (info.ok()) service::ToProto(*info, response);
    with_versions(service::ToGrpcStatus(info.status()));
    return reactor;
  }
  routing_->peers().Call<v1::Variable>(
      owner, absl::StrCat(kStore, "DescribeVariable"), *request, deadline,
      [response, with_versions](const grpc::Status& status, v1::Variable described) {
        if (status.ok()) *response = std::move(described);
        with_versions(status);
      },
      call.get());
  return reactor;
}

Reactor* ClusterStoreService::DeleteVariable(Context* ctx,
                                             const v1::DeleteVariableRequest* request,
                                             v1::DeleteVariableResponse* response) {
  const bool here =
      routing_->FromPeer(*ctx) || routing_->OwnerOf(request->name()) == routing_->self();
  absl::StatusOr<service::Admission> call =
      routing_->gate().Admit(*ctx, "varscope.v1.VariableStore.DeleteVariable");
  if (call.ok()) {
    if (absl::Status s = call->CheckName(request->name()); !s.ok()) call = s;
  }
  if (!call.ok()) return FinishNow(ctx, call.status());
  if (here) {  // a partitioned variable's parts elsewhere are deleted too
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    parts_->DeleteVariable(reactor, std::make_shared<service::Admission>(*std::move(call)),
                           request->name(), response, Routing::DeadlineOf(*ctx));
    return reactor;
  }
  const int owner = routing_->OwnerOf(request->name());
  return routing_->Forward(ctx, *std::move(call), owner, absl::StrCat(kStore, "DeleteVariable"),
                           *request, response);
}

Reactor* ClusterStoreService::ListVariables(Context* ctx,
                                            const v1::ListVariablesRequest* request,
                                            v1::ListVariablesResponse* response) {
  if (routing_->FromPeer(*ctx)) return local_->ListVariables(ctx, request, response);
  absl::StatusOr<service::Admission> admitted =
      routing_->gate().Admit(*ctx, "varscope.v1.VariableStore.ListVariables");
  if (!admitted.ok()) return FinishNow(ctx, admitted.status());
  absl::StatusOr<size_t> page_size = service::PageSize(request->page_size());
  if (!page_size.ok()) return FinishNow(ctx, page_size.status());
  // Every shard lists in name order (plain variables, then partitioned
  // ones); the cluster's page is the merge, its cursor the last name.
  const std::string query =
      absl::StrCat("variables|", request->prefix(), "|", request->collection(), "|",
                   request->include_partitioned());
  std::optional<core::ListCursor> after;
  if (!request->page_token().empty()) {
    absl::StatusOr<core::ListCursor> cursor =
        service::DecodeCursor(request->page_token(), query);
    if (!cursor.ok()) return FinishNow(ctx, cursor.status());
    after = *cursor;
  }
  v1::ListVariablesRequest part = *request;
  part.set_page_size(static_cast<int32_t>(*page_size));
  part.set_page_token(after ? service::EncodeCursor(*after, query) : "");
  std::vector<std::pair<int, v1::ListVariablesRequest>> calls;
  for (int shard = 0; shard < routing_->spec().size(); ++shard) calls.emplace_back(shard, part);
  Reactor* reactor = ctx->DefaultReactor();
  auto call = std::make_shared<service::Admission>(*std::move(admitted));
  const Routing* routing = routing_;
  const size_t limit = *page_size;
  FanOut<v1::ListVariablesResponse>(
      &routing_->peers(), absl::StrCat(kStore, "ListVariables"), std::move(calls),
      Routing::DeadlineOf(*ctx),
      [reactor, response, call, routing, limit, query](
          std::vector<std::pair<grpc::Status, v1::ListVariablesResponse>> answers) {
        using Key = std::pair<bool, std::string>;  // (partitioned, name)
        PageMerge<Key, v1::Variable> merge;
        for (size_t shard = 0; shard < answers.size(); ++shard) {
          auto& [status, page] = answers[shard];
          if (!status.ok()) {
            reactor->Finish(grpc::Status(status.error_code(),
                                         absl::StrCat(routing->peers().Describe(shard),
                                                      " could not list: ", status.error_message()),
                                         status.error_details()));
            return;
          }
          if (!page.next_page_token().empty() && page.variables_size() > 0) {
            const v1::Variable& last = page.variables(page.variables_size() - 1);
            merge.Cut(Key{last.partitioned(), last.name()});
          }
          for (v1::Variable& v : *page.mutable_variables()) {
            Key key{v.partitioned(), v.name()};
            merge.items.emplace(std::move(key), std::move(v));
          }
        }
        std::optional<Key> last;
        size_t taken = 0;
        bool more = false;
        for (auto& [key, variable] : merge.items) {
          if ((merge.limit && *merge.limit < key) || taken == limit) {
            more = true;
            break;
          }
          ++taken;
          last = key;
          if (call->MayTouch(variable.name())) *response->add_variables() = std::move(variable);
        }
        if ((more || merge.limit) && last) {
          response->set_next_page_token(
              service::EncodeCursor(core::ListCursor{last->first, last->second, 0}, query));
        }
        reactor->Finish(grpc::Status::OK);
      },
      call.get());
  return reactor;
}

Reactor* ClusterStoreService::ListScopes(Context* ctx, const v1::ListScopesRequest* request,
                                         v1::ListScopesResponse* response) {
  if (routing_->FromPeer(*ctx)) return local_->ListScopes(ctx, request, response);
  // Handles live at the session's home.
  if (request->handles_only()) {
    if (const int home = RemoteHome(request->session_id()); home >= 0) {
      return ToHome(ctx, "varscope.v1.VariableStore.ListScopes", home, *request, response);
    }
    return local_->ListScopes(ctx, request, response);
  }
  absl::StatusOr<service::Admission> admitted =
      routing_->gate().Admit(*ctx, "varscope.v1.VariableStore.ListScopes");
  if (!admitted.ok()) return FinishNow(ctx, admitted.status());
  absl::StatusOr<size_t> page_size = service::PageSize(request->page_size());
  if (!page_size.ok()) return FinishNow(ctx, page_size.status());
  const std::string query = absl::StrCat("scopes|", request->prefix());
  std::string after;
  if (!request->page_token().empty()) {
    absl::StatusOr<std::string> decoded = service::DecodeNameToken(query, request->page_token());
    if (!decoded.ok()) return FinishNow(ctx, decoded.status());
    after = *decoded;
  }
  const bool first_page = request->page_token().empty();
  // Each shard's tree covers its own variables: counts add up by name.
  v1::ListScopesRequest part;
  part.set_prefix(request->prefix());
  part.set_page_size(static_cast<int32_t>(*page_size));
  if (!first_page) part.set_page_token(service::EncodeNameToken(query, after));
  std::vector<std::pair<int, v1::ListScopesRequest>> calls;
  for (int shard = 0; shard < routing_->spec().size(); ++shard) calls.emplace_back(shard, part);
  // The session's handles, from its home, on the first page.
  int handles_from = -1;
  if (first_page && request->session_id() != 0) {
    handles_from = routing_->spec().HomeOf(request->session_id());
    if (handles_from < 0) handles_from = routing_->self();
    v1::ListScopesRequest handles;
    handles.set_session_id(request->session_id());
    handles.set_handles_only(true);
    calls.emplace_back(handles_from, handles);
  }
  Reactor* reactor = ctx->DefaultReactor();
  auto call = std::make_shared<service::Admission>(*std::move(admitted));
  const Routing* routing = routing_;
  const size_t limit = *page_size;
  const int shards = routing_->spec().size();
  FanOut<v1::ListScopesResponse>(
      &routing_->peers(), absl::StrCat(kStore, "ListScopes"), std::move(calls),
      Routing::DeadlineOf(*ctx),
      [reactor, response, call, routing, limit, query, shards, handles_from](
          std::vector<std::pair<grpc::Status, v1::ListScopesResponse>> answers) {
        PageMerge<std::string, v1::ScopeNode> merge;
        for (size_t i = 0; i < answers.size(); ++i) {
          auto& [status, page] = answers[i];
          const int shard = i < static_cast<size_t>(shards) ? static_cast<int>(i) : handles_from;
          if (!status.ok()) {
            reactor->Finish(grpc::Status(status.error_code(),
                                         absl::StrCat(routing->peers().Describe(shard),
                                                      ": ", status.error_message()),
                                         status.error_details()));
            return;
          }
          if (i >= static_cast<size_t>(shards)) {  // the handles
            for (v1::Scope& h : *page.mutable_handles()) *response->add_handles() = std::move(h);
            continue;
          }
          for (const v1::ScopeNode& node : page.scopes()) {
            v1::ScopeNode& merged = merge.items[node.name()];
            merged.set_name(node.name());
            merged.set_variables(merged.variables() + node.variables());
            merged.set_total_variables(merged.total_variables() + node.total_variables());
          }
          if (!page.next_page_token().empty() && page.scopes_size() > 0) {
            merge.Cut(page.scopes(page.scopes_size() - 1).name());
          }
        }
        std::optional<std::string> last;
        size_t taken = 0;
        bool more = false;
        for (auto& [name, node] : merge.items) {
          if ((merge.limit && *merge.limit < name) || taken == limit) {
            more = true;
            break;
          }
          ++taken;
          last = name;
          *response->add_scopes() = std::move(node);
        }
        if ((more || merge.limit) && last) {
          response->set_next_page_token(service::EncodeNameToken(query, *last));
        }
        reactor->Finish(grpc::Status::OK);
      },
      call.get());
  return reactor;
}

}  // namespace varscope::cluster
