#include "server/service/variable_store_service.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <functional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "server/core/namespace/names.h"
#include "server/core/namespace/scope_tree.h"
#include "server/core/base/status_macros.h"
#include "server/core/base/error_info.h"
#include "server/service/handle.h"
#include "server/service/page_token.h"
#include "server/service/proto_convert.h"
#include "server/service/status_convert.h"
#include "server/service/waiting_reactor.h"

namespace varscope::service {

using Reactor = VariableStoreService::Reactor;
using Context = VariableStoreService::Context;

absl::Status VariableStoreService::CheckOwner(const Admission& call,
                                              uint64_t session) const {
  if (session == 0) return absl::OkStatus();
  return sessions_->CheckOwner(session, call.owner());
}

Reactor* VariableStoreService::OpenSession(
    Context* ctx, const v1::OpenSessionRequest* request,
    v1::OpenSessionResponse* response) {
  return Handle(ctx, gate_, "varscope.v1.VariableStore.OpenSession",
                [&](const Admission& call) -> absl::Status {
    VARSCOPE_ASSIGN_OR_RETURN(
        core::SessionInfo info,
        sessions_->OpenSession(request->client_name(),
                               absl::Milliseconds(request->lease_ttl_ms()),
                               call.owner()));
    response->set_session_id(info.id);
    response->set_lease_ttl_ms(absl::ToInt64Milliseconds(info.lease));
    response->set_root_scope_id(info.root_scope);
    return absl::OkStatus();
  });
}

Reactor* VariableStoreService::KeepAlive(Context* ctx,
                                         const v1::KeepAliveRequest* request,
                                         v1::KeepAliveResponse* response) {
  return Handle(ctx, gate_, "varscope.v1.VariableStore.KeepAlive",
                [&](const Admission& call) -> absl::Status {
    VARSCOPE_RETURN_IF_ERROR(CheckOwner(call, request->session_id()));
    VARSCOPE_ASSIGN_OR_RETURN(absl::Duration lease,
                              sessions_->KeepAlive(request->session_id()));
    response->set_lease_ttl_ms(absl::ToInt64Milliseconds(lease));
    return absl::OkStatus();
  });
}

Reactor* VariableStoreService::CloseSession(
    Context* ctx, const v1::CloseSessionRequest* request,
    v1::CloseSessionResponse*) {
  return Handle(ctx, gate_, "varscope.v1.VariableStore.CloseSession",
                [&](const Admission& call) -> absl::Status {
    VARSCOPE_RETURN_IF_ERROR(CheckOwner(call, request->session_id()));
    return sessions_->CloseSession(request->session_id());
  });
}

Reactor* VariableStoreService::OpenScope(Context* ctx,
                                         const v1::OpenScopeRequest* request,
                                         v1::Scope* response) {
  return Handle(ctx, gate_, "varscope.v1.VariableStore.OpenScope",
                [&](const Admission& call) -> absl::Status {
    VARSCOPE_RETURN_IF_ERROR(CheckOwner(call, request->session_id()));
    VARSCOPE_ASSIGN_OR_RETURN(core::OpenScopeRequest open, FromProto(*request));
    VARSCOPE_ASSIGN_OR_RETURN(core::ScopeInfo scope,
                              sessions_->OpenScope(request->session_id(), open));
    ToProto(scope, response);
    return absl::OkStatus();
  });
}

Reactor* VariableStoreService::UpdateScope(Context* ctx,
                                           const v1::UpdateScopeRequest* request,
                                           v1::Scope* response) {
  return Handle(ctx, gate_, "varscope.v1.VariableStore.UpdateScope",
                [&](const Admission& call) -> absl::Status {
    VARSCOPE_RETURN_IF_ERROR(CheckOwner(call, request->session_id()));
    VARSCOPE_ASSIGN_OR_RETURN(core::ScopeDefaultsUpdate update, FromProto(*request));
    VARSCOPE_ASSIGN_OR_RETURN(
        core::ScopeInfo scope,
        sessions_->UpdateScope(request->session_id(), request->scope_id(), update));
    ToProto(scope, response);
    return absl::OkStatus();
  });
}

Reactor* VariableStoreService::ReuseVariables(
    Context* ctx, const v1::ReuseVariablesRequest* request,
    v1::Scope* response) {
  return Handle(ctx, gate_, "varscope.v1.VariableStore.ReuseVariables",
                [&](const Admission& call) -> absl::Status {
    VARSCOPE_RETURN_IF_ERROR(CheckOwner(call, request->session_id()));
    VARSCOPE_ASSIGN_OR_RETURN(
        core::ScopeInfo scope,
        sessions_->ReuseVariables(request->session_id(), request->scope_id()));
    ToProto(scope, response);
    return absl::OkStatus();
  });
}

Reactor* VariableStoreService::CloseScope(Context* ctx,
                                          const v1::CloseScopeRequest* request,
                                          v1::CloseScopeResponse*) {
  return Handle(ctx, gate_, "varscope.v1.VariableStore.CloseScope",
                [&](const Admission& call) -> absl::Status {
    VARSCOPE_RETURN_IF_ERROR(CheckOwner(call, request->session_id()));
    return sessions_->CloseScope(request->session_id(), request->scope_id());
  });
}

absl::Status VariableStoreService::RunGetVariable(
    const v1::GetVariableRequest& request, const Admission& call,
    v1::GetVariableResponse* response) {
  VARSCOPE_RETURN_IF_ERROR(CheckOwner(call, request.session_id()));
  VARSCOPE_ASSIGN_OR_RETURN(core::GetVariableRequest get, FromProto(request));
  get.check_name = [&call](absl::string_view name) {
    return call.CheckName(name);
  };
  absl::StatusOr<core::VariableInfo> info;
  if (request.session_id() != 0) {
    info = sessions_->GetVariable(request.session_id(), request.scope_id(), get);
  } else {  // one-shot form: absolute scope path + reuse
    VARSCOPE_ASSIGN_OR_RETURN(core::Reuse reuse, FromProto(request.reuse()));
    VARSCOPE_ASSIGN_OR_RETURN(core::ScopeContext scope,
                              core::ScopeContextForPath(request.scope(), reuse));
    info = store_->GetVariable(scope, get);
  }
  VARSCOPE_RETURN_IF_ERROR(info.status());
  ToProto(*info, response->mutable_variable());
  response->set_created(info->created);
  return absl::OkStatus();
}

Reactor* VariableStoreService::GetVariable(
    Context* ctx, const v1::GetVariableRequest* request,
    v1::GetVariableResponse* response) {
  constexpr char kMethod[] = "varscope.v1.VariableStore.GetVariable";
  if (request->wait_ms() <= 0) {
    return Handle(ctx, gate_, kMethod, [&](const Admission& call) {
      return RunGetVariable(*request, call, response);
    });
  }
  absl::StatusOr<Admission> admitted = gate_->Admit(*ctx, kMethod);
  if (!admitted.ok()) return Finish(ctx, kMethod, admitted.status());
  // Held by the reactor's callbacks: the in-flight slot lasts the wait.
  auto call = std::make_shared<Admission>(std::move(*admitted));
  // Wait for exactly the full name this request resolves to (or the first
  // part of it, partitioned) to be created, until the deadline.
  absl::StatusOr<std::string> full_name = WaitedName(*request);
  if (!full_name.ok()) return Finish(ctx, kMethod, full_name.status());
  const absl::Duration wait =
      std::min(absl::Milliseconds(request->wait_ms()), absl::Hours(1));
  auto last = std::make_shared<absl::Status>();
  auto is_missing = [](const absl::Status& s) {
    // A missing variable, as opposed to a missing session or scope handle
    // (those fail at once).
    return core::HasReason(s, core::kVariableNotFound);
  };
  return WaitingReactor::Start(
      ctx, &store_->feed(),
      core::ChangeMatch::Names({*full_name, *full_name + "/part_0"}), wait,
      [=]() -> std::optional<grpc::Status> {
        response->Clear();
        absl::Status status = RunGetVariable(*request, *call, response);
        if (is_missing(status)) {
          *last = status;
          return std::nullopt;
        }
        return ToGrpcStatus(status);
      },
      [=]() {
        return grpc::Status(
            grpc::StatusCode::NOT_FOUND,
            absl::StrCat(last->message(), " (waited ",
                         absl::FormatDuration(wait), " for it to be created)"));
      });
}

absl::StatusOr<std::string> VariableStoreService::WaitedName(
    const v1::GetVariableRequest& request) {
  const std::string& name = request.name();
  if (request.session_id() == 0) return core::JoinName(request.scope(), name);
  VARSCOPE_ASSIGN_OR_RETURN(
      core::ScopeContext scope,
      sessions_->ScopeContextFor(request.session_id(), request.scope_id()));
  return core::JoinName(scope.name, name);
}

Reactor* VariableStoreService::NewVariable(
    Context* ctx, const v1::NewVariableRequest* request,
    v1::Variable* response) {
  return Handle(ctx, gate_, "varscope.v1.VariableStore.NewVariable",
                [&](const Admission& call) -> absl::Status {
    VARSCOPE_RETURN_IF_ERROR(CheckOwner(call, request->session_id()));
    VARSCOPE_ASSIGN_OR_RETURN(core::NewVariableRequest create,
                              FromProto(*request));
    create.variable.check_name = [&call](absl::string_view name) {
      return call.CheckName(name);
    };
    VARSCOPE_ASSIGN_OR_RETURN(
        core::VariableInfo info,
        sessions_->NewVariable(request->session_id(), request->scope_id(),
                               create));
    ToProto(info, response);
    return absl::OkStatus();
  });
}

Reactor* VariableStoreService::OpName(Context* ctx,
                                      const v1::OpNameRequest* request,
                                      v1::OpNameResponse* response) {
  return Handle(ctx, gate_, "varscope.v1.VariableStore.OpName",
                [&](const Admission& call) -> absl::Status {
    VARSCOPE_RETURN_IF_ERROR(CheckOwner(call, request->session_id()));
    VARSCOPE_ASSIGN_OR_RETURN(
        std::string name,
        sessions_->OpName(request->session_id(), request->scope_id(),
                          request->name(), request->preview()));
    response->set_name(std::move(name));
    return absl::OkStatus();
  });
}

Reactor* VariableStoreService::ListVariables(
    Context* ctx, const v1::ListVariablesRequest* request,
    v1::ListVariablesResponse* response) {
  return Handle(ctx, gate_, "varscope.v1.VariableStore.ListVariables",
                [&](const Admission& call) -> absl::Status {
    core::ListOptions options;
    options.prefix = request->prefix();
    options.collection = request->collection();
    options.include_partitioned = request->include_partitioned();
    options.collection_in_name_order = names_order_;
    VARSCOPE_ASSIGN_OR_RETURN(options.limit, PageSize(request->page_size()));
    const std::string query =
        absl::StrCat("variables|", options.prefix, "|", options.collection, "|",
                     options.include_partitioned);
    if (!request->page_token().empty()) {
      VARSCOPE_ASSIGN_OR_RETURN(options.after,
                                DecodeCursor(request->page_token(), query));
    }
    const core::ListPage page = store_->List(options);
    for (const core::VariableInfo& info : page.variables) {
      if (!call.MayTouch(info.name)) continue;
      ToProto(info, response->add_variables());
    }
    if (page.next) response->set_next_page_token(EncodeCursor(*page.next, query));
    return absl::OkStatus();
  });
}

Reactor* VariableStoreService::ListScopes(Context* ctx,
                                          const v1::ListScopesRequest* request,
                                          v1::ListScopesResponse* response) {
  return Handle(ctx, gate_, "varscope.v1.VariableStore.ListScopes",
                [&](const Admission& call) -> absl::Status {
    VARSCOPE_ASSIGN_OR_RETURN(const size_t page_size, PageSize(request->page_size()));
    std::string after;
    const bool first_page = request->page_token().empty();
    const std::string query = absl::StrCat("scopes|", request->prefix());
    if (!first_page) {
      VARSCOPE_ASSIGN_OR_RETURN(after, DecodeNameToken(query, request->page_token()));
    }
    if (request->handles_only()) {
      if (request->session_id() == 0 || !first_page) {
        return absl::InvalidArgumentError(
            "handles_only lists a session's handles: give session_id and no "
            "page_token");
      }
      return ListHandles(call, request->session_id(), response);
    }
    // Cost: every variable under `prefix` per page (the tree's counts need
    // them all); scopes are far fewer than variables, so pages are few.
    core::ListOptions options;
    options.prefix = request->prefix();
    std::vector<core::VariableInfo> visible = store_->List(options).variables;
    visible.erase(std::remove_if(visible.begin(), visible.end(),
                                 [&](const core::VariableInfo& info) {
                                   return !call.MayTouch(info.name);
                                 }),
                  visible.end());
    // The tree, flattened parent-first in name order, one page of it.
    std::vector<const core::ScopeNode*> nodes;
    const core::ScopeNode tree = core::BuildScopeTree(visible);
    std::function<void(const core::ScopeNode&)> flatten = [&](const core::ScopeNode& n) {
      nodes.push_back(&n);
      for (const core::ScopeNode& child : n.children) flatten(child);
    };
    flatten(tree);
    std::sort(nodes.begin(), nodes.end(),
              [](const core::ScopeNode* a, const core::ScopeNode* b) {
                return a->name < b->name;
              });
    auto it = first_page ? nodes.begin()
                         : std::upper_bound(nodes.begin(), nodes.end(), after,
                                            [](const std::string& name,
                                               const core::ScopeNode* n) {
                                              return name < n->name;
                                            });
    for (; it != nodes.end() && static_cast<size_t>(response->scopes_size()) < page_size;
         ++it) {
      ToProto(**it, response->add_scopes());
    }
    if (it != nodes.end() && response->scopes_size() > 0) {
      response->set_next_page_token(EncodeNameToken(
          query, response->scopes(response->scopes_size() - 1).name()));
    }
    if (request->session_id() != 0 && first_page) {
      return ListHandles(call, request->session_id(), response);
    }
    return absl::OkStatus();
  });
}

absl::Status VariableStoreService::ListHandles(const Admission& call, uint64_t session,
                                               v1::ListScopesResponse* response) {
  VARSCOPE_RETURN_IF_ERROR(CheckOwner(call, session));
  VARSCOPE_ASSIGN_OR_RETURN(std::vector<core::ScopeInfo> handles,
                            sessions_->ListHandles(session));
  for (const core::ScopeInfo& h : handles) ToProto(h, response->add_handles());
  return absl::OkStatus();
}

Reactor* VariableStoreService::DescribeVariable(
    Context* ctx, const v1::DescribeVariableRequest* request,
    v1::Variable* response) {
  return Handle(ctx, gate_, "varscope.v1.VariableStore.DescribeVariable",
                [&](const Admission& call) -> absl::Status {
    VARSCOPE_RETURN_IF_ERROR(call.CheckName(request->name()));
    VARSCOPE_ASSIGN_OR_RETURN(core::VariableInfo info,
                              store_->Describe(request->name()));
    ToProto(info, response);
    return absl::OkStatus();
  });
}

Reactor* VariableStoreService::DeleteVariable(
    Context* ctx, const v1::DeleteVariableRequest* request,
    v1::DeleteVariableResponse* response) {
  return Handle(ctx, gate_, "varscope.v1.VariableStore.DeleteVariable",
                [&](const Admission& call) -> absl::Status {
    VARSCOPE_RETURN_IF_ERROR(call.CheckName(request->name()));
    VARSCOPE_ASSIGN_OR_RETURN(std::vector<std::string> deleted,
                              store_->Delete(request->name()));
    for (std::string& name : deleted) response->add_deleted(std::move(name));
    spdlog::info("deleted {}", request->name());
    return absl::OkStatus();
  });
}

}  // namespace varscope::service
