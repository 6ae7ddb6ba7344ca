// A table of malformed requests over real gRPC: each gets the right code and
// leaves the store unchanged.
#include <grpcpp/grpcpp.h>

#include <functional>

#include "tests/test_server.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "varscope/v1/variable_store.grpc.pb.h"

namespace varscope::testing {
namespace {

namespace pb = ::varscope::v1;

class BadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    service::ServerOptions options;
    options.store.max_variable_bytes = 1 << 20;
    options.max_message_bytes = 1 << 20;
    server_ = StartTestServer(options);
    grpc::ChannelArguments args;
    args.SetMaxSendMessageSize(8 << 20);
    stub_ = pb::VariableStore::NewStub(grpc::CreateCustomChannel(
        server_->address(), grpc::InsecureChannelCredentials(), args));
    grpc::ClientContext ctx;
    pb::OpenSessionRequest open;
    pb::OpenSessionResponse session;
    ASSERT_TRUE(stub_->OpenSession(&ctx, open, &session).ok());
    session_ = session.session_id();
    grpc::ClientContext sctx;
    pb::OpenScopeRequest scope;
    scope.set_session_id(session_);
    scope.set_name("outer");
    pb::Scope outer;
    ASSERT_TRUE(stub_->OpenScope(&sctx, scope, &outer).ok());
    outer_ = outer.scope_id();
    grpc::ClientContext ictx;
    scope.set_parent_scope_id(outer_);
    scope.set_name("inner");
    pb::Scope inner;
    ASSERT_TRUE(stub_->OpenScope(&ictx, scope, &inner).ok());
    inner_ = inner.scope_id();
    // One existing variable so reuse paths can be exercised.
    grpc::ClientContext gctx;
    pb::GetVariableRequest get;
    get.set_scope("existing");
    get.set_name("v");
    get.mutable_shape()->add_dims(2);
    pb::GetVariableResponse v;
    ASSERT_TRUE(stub_->GetVariable(&gctx, get, &v).ok());
    // A second session, whose handles this session may not use.
    grpc::ClientContext octx;
    pb::OpenSessionResponse other;
    ASSERT_TRUE(stub_->OpenSession(&octx, open, &other).ok());
    other_root_ = other.root_scope_id();
  }

  pb::GetVariableRequest Get(const std::string& name) {
    pb::GetVariableRequest r;
    r.set_session_id(session_);
    r.set_scope_id(inner_);
    r.set_name(name);
    r.mutable_shape()->add_dims(2);
    return r;
  }

  std::unique_ptr<service::Server> server_;
  std::unique_ptr<pb::VariableStore::Stub> stub_;
  uint64_t session_ = 0, outer_ = 0, inner_ = 0, other_root_ = 0;
};

struct Case {
  std::string what;
  grpc::StatusCode code;
  std::function<grpc::Status(pb::VariableStore::Stub&, grpc::ClientContext*)> call;
};

TEST_F(BadInputTest, EachMalformedRequestGetsItsCodeAndChangesNothing) {
  using C = grpc::StatusCode;
  auto get = [](pb::GetVariableRequest r) {
    return [r](pb::VariableStore::Stub& s, grpc::ClientContext* c) {
      pb::GetVariableResponse v;
      return s.GetVariable(c, r, &v);
    };
  };
  auto open = [](pb::OpenScopeRequest r) {
    return [r](pb::VariableStore::Stub& s, grpc::ClientContext* c) {
      pb::Scope v;
      return s.OpenScope(c, r, &v);
    };
  };
  std::vector<Case> cases;
  auto add_get = [&](std::string what, C code,
                     std::function<void(pb::GetVariableRequest&)> edit) {
    pb::GetVariableRequest r = Get("ok_name");
    edit(r);
    cases.push_back({std::move(what), code, get(r)});
  };
  add_get("empty name", C::INVALID_ARGUMENT, [](auto& r) { r.clear_name(); });
  add_get("colon in name", C::INVALID_ARGUMENT, [](auto& r) { r.set_name("v:0"); });
  add_get("space in name", C::INVALID_ARGUMENT, [](auto& r) { r.set_name("a b"); });
  add_get("control byte", C::INVALID_ARGUMENT, [](auto& r) { r.set_name("a\x01"); });
  add_get("double slash", C::INVALID_ARGUMENT, [](auto& r) { r.set_name("a//b"); });
  add_get("trailing slash", C::INVALID_ARGUMENT, [](auto& r) { r.set_name("a/"); });
  add_get("name over 1024 bytes", C::INVALID_ARGUMENT,
          [](auto& r) { r.set_name(std::string(1100, 'a')); });
  add_get("negative dim", C::INVALID_ARGUMENT, [](auto& r) { r.mutable_shape()->add_dims(-2); });
  add_get("rank 33", C::INVALID_ARGUMENT, [](auto& r) {
    r.clear_shape();
    for (int i = 0; i < 33; ++i) r.mutable_shape()->add_dims(1);
  });
  add_get("element count overflow", C::INVALID_ARGUMENT, [](auto& r) {
    r.clear_shape();
    r.mutable_shape()->add_dims(1LL << 40);
    r.mutable_shape()->add_dims(1LL << 40);
  });
  add_get("over max_variable_bytes", C::RESOURCE_EXHAUSTED, [](auto& r) {
    r.clear_shape();
    r.mutable_shape()->add_dims(1 << 20);
  });
  add_get("partial shape on create", C::INVALID_ARGUMENT,
          [](auto& r) { r.mutable_shape()->add_dims(-1); });
  add_get("no shape on create", C::INVALID_ARGUMENT, [](auto& r) { r.clear_shape(); });
  add_get("unknown dtype", C::INVALID_ARGUMENT,
          [](auto& r) { r.set_dtype(static_cast<pb::DataType>(99)); });
  add_get("reference dtype", C::INVALID_ARGUMENT,
          [](auto& r) { r.set_dtype(static_cast<pb::DataType>(101)); });
  add_get("string dtype", C::INVALID_ARGUMENT,
          [](auto& r) { r.set_dtype(static_cast<pb::DataType>(7)); });
  add_get("complex dtype", C::INVALID_ARGUMENT,
          [](auto& r) { r.set_dtype(static_cast<pb::DataType>(8)); });
  add_get("unknown session", C::NOT_FOUND, [](auto& r) { r.set_session_id(999); });
  add_get("unknown scope handle", C::NOT_FOUND, [](auto& r) { r.set_scope_id(999); });
  add_get("another session's handle", C::NOT_FOUND,
          [this](auto& r) { r.set_scope_id(other_root_); });
  add_get("scope handle without session", C::INVALID_ARGUMENT,
          [](auto& r) { r.set_session_id(0); });
  add_get("one-shot fields with session", C::INVALID_ARGUMENT,
          [](auto& r) { r.set_scope("x"); });
  add_get("unknown one-shot reuse", C::INVALID_ARGUMENT, [](auto& r) {
    r.set_session_id(0);
    r.set_scope_id(0);
    r.set_reuse(static_cast<pb::Reuse>(9));
  });
  add_get("empty initializer", C::INVALID_ARGUMENT,
          [](auto& r) { r.mutable_initializer(); });
  add_get("value with wrong byte length", C::INVALID_ARGUMENT, [](auto& r) {
    r.clear_shape();
    auto* v = r.mutable_initializer()->mutable_value();
    v->set_dtype(pb::DT_FLOAT);
    v->add_shape(3);
    v->set_data("abc");
  });
  add_get("value and shape", C::INVALID_ARGUMENT, [](auto& r) {
    auto* v = r.mutable_initializer()->mutable_value();
    v->set_dtype(pb::DT_FLOAT);
    v->add_shape(2);
    v->set_data(std::string(8, '\0'));
  });
  add_get("normal initializer on int", C::INVALID_ARGUMENT, [](auto& r) {
    r.set_dtype(pb::DT_INT32);
    r.mutable_initializer()->mutable_random_normal();
  });
  add_get("unknown variance scaling mode", C::INVALID_ARGUMENT, [](auto& r) {
    r.mutable_initializer()->mutable_variance_scaling()->set_mode(
        static_cast<pb::VarianceScaling::Mode>(5));
  });
  add_get("too many constant values", C::INVALID_ARGUMENT, [](auto& r) {
    for (int i = 0; i < 3; ++i) r.mutable_initializer()->mutable_constant()->add_values(i);
  });
  add_get("partitioner with zero shards", C::INVALID_ARGUMENT,
          [](auto& r) { r.mutable_partitioner()->mutable_fixed_size(); });
  add_get("partitioner asking for empty parts", C::INVALID_ARGUMENT, [](auto& r) {
    r.mutable_partitioner()->mutable_explicit_partitions()->add_partitions(3);
  });
  add_get("bad collection name", C::INVALID_ARGUMENT,
          [](auto& r) { r.mutable_collections()->add_names("has space"); });
  add_get("local and trainable", C::INVALID_ARGUMENT, [](auto& r) {
    r.set_local(true);
    r.set_trainable(true);
  });
  {
    pb::GetVariableRequest r;
    r.set_scope("existing");
    r.set_name("v");
    r.mutable_shape()->add_dims(3);
    r.set_reuse(pb::REUSE);
    cases.push_back({"reuse with wrong shape", C::INVALID_ARGUMENT, get(r)});
    r.clear_shape();
    r.set_dtype(pb::DT_INT32);
    cases.push_back({"reuse with wrong dtype", C::INVALID_ARGUMENT, get(r)});
    r.set_dtype(pb::DT_UNSPECIFIED);
    r.set_reuse(pb::REUSE_UNSPECIFIED);
    r.mutable_shape()->add_dims(2);
    cases.push_back({"existing without reuse", C::ALREADY_EXISTS, get(r)});
    r.set_name("absent");
    r.set_reuse(pb::REUSE);
    cases.push_back({"absent under REUSE", C::NOT_FOUND, get(r)});
    r.set_scope("_bad");
    cases.push_back({"one-shot scope invalid at root", C::INVALID_ARGUMENT, get(r)});
  }
  {
    pb::OpenScopeRequest r;
    r.set_session_id(session_);
    cases.push_back({"OpenScope without a name", C::INVALID_ARGUMENT, open(r)});
    r.set_name("x");
    r.set_kind(static_cast<pb::ScopeKind>(4));
    cases.push_back({"OpenScope unknown kind", C::INVALID_ARGUMENT, open(r)});
    r.set_kind(pb::VARIABLE_SCOPE);
    r.set_reuse(static_cast<pb::Reuse>(3));
    cases.push_back({"OpenScope unknown reuse", C::INVALID_ARGUMENT, open(r)});
    r.set_reuse(pb::REUSE_UNSPECIFIED);
    r.set_parent_scope_id(4242);
    cases.push_back({"OpenScope unknown parent", C::NOT_FOUND, open(r)});
    r.set_parent_scope_id(other_root_);
    cases.push_back({"OpenScope under another session's scope", C::NOT_FOUND, open(r)});
    r.set_parent_scope_id(0);
    r.set_reenter_scope_id(4242);
    cases.push_back({"OpenScope re-entering an unknown handle", C::NOT_FOUND, open(r)});
    r.set_reenter_scope_id(0);
    r.set_kind(pb::NAME_SCOPE);
    cases.push_back({"NAME_SCOPE re-entering a scope", C::INVALID_ARGUMENT, open(r)});
    r.set_kind(pb::VARIABLE_SCOPE);
    r.set_parent_scope_id(0);
    r.set_session_id(77);
    cases.push_back({"OpenScope unknown session", C::NOT_FOUND, open(r)});
  }
  cases.push_back({"close a scope that is not innermost", C::FAILED_PRECONDITION,
                   [this](pb::VariableStore::Stub& s, grpc::ClientContext* c) {
                     pb::CloseScopeRequest r;
                     r.set_session_id(session_);
                     r.set_scope_id(outer_);
                     pb::CloseScopeResponse resp;
                     return s.CloseScope(c, r, &resp);
                   }});
  cases.push_back({"KeepAlive of unknown session", C::NOT_FOUND,
                   [](pb::VariableStore::Stub& s, grpc::ClientContext* c) {
                     pb::KeepAliveRequest r;
                     r.set_session_id(31337);
                     pb::KeepAliveResponse resp;
                     return s.KeepAlive(c, r, &resp);
                   }});
  cases.push_back({"message over the size limit", C::RESOURCE_EXHAUSTED,
                   [this](pb::VariableStore::Stub& s, grpc::ClientContext* c) {
                     pb::GetVariableRequest r = Get("huge");
                     r.clear_shape();
                     auto* v = r.mutable_initializer()->mutable_value();
                     v->set_dtype(pb::DT_UINT8);
                     v->add_shape(2 << 20);
                     v->set_data(std::string(2 << 20, 'x'));
                     pb::GetVariableResponse out;
                     return s.GetVariable(c, r, &out);
                   }});
  cases.push_back({"NewVariable without value", C::INVALID_ARGUMENT,
                   [this](pb::VariableStore::Stub& s, grpc::ClientContext* c) {
                     pb::NewVariableRequest r;
                     r.set_session_id(session_);
                     pb::Variable out;
                     return s.NewVariable(c, r, &out);
                   }});
  cases.push_back({"DescribeVariable of unknown name", C::NOT_FOUND,
                   [](pb::VariableStore::Stub& s, grpc::ClientContext* c) {
                     pb::DescribeVariableRequest r;
                     r.set_name("nope");
                     pb::Variable out;
                     return s.DescribeVariable(c, r, &out);
                   }});
  cases.push_back({"OpName empty", C::INVALID_ARGUMENT,
                   [this](pb::VariableStore::Stub& s, grpc::ClientContext* c) {
                     pb::OpNameRequest r;
                     r.set_session_id(session_);
                     pb::OpNameResponse out;
                     return s.OpName(c, r, &out);
                   }});
  cases.push_back({"UpdateScope without a mask", C::INVALID_ARGUMENT,
                   [this](pb::VariableStore::Stub& s, grpc::ClientContext* c) {
                     pb::UpdateScopeRequest r;
                     r.set_session_id(session_);
                     r.set_scope_id(inner_);
                     r.set_dtype(pb::DT_HALF);
                     pb::Scope out;
                     return s.UpdateScope(c, r, &out);
                   }});
  cases.push_back({"UpdateScope unknown mask path", C::INVALID_ARGUMENT,
                   [this](pb::VariableStore::Stub& s, grpc::ClientContext* c) {
                     pb::UpdateScopeRequest r;
                     r.set_session_id(session_);
                     r.set_scope_id(inner_);
                     r.mutable_update_mask()->add_paths("reuse");
                     pb::Scope out;
                     return s.UpdateScope(c, r, &out);
                   }});
  cases.push_back({"UpdateScope unsupported dtype", C::INVALID_ARGUMENT,
                   [this](pb::VariableStore::Stub& s, grpc::ClientContext* c) {
                     pb::UpdateScopeRequest r;
                     r.set_session_id(session_);
                     r.set_scope_id(inner_);
                     r.set_dtype(pb::DT_STRING);
                     r.mutable_update_mask()->add_paths("dtype");
                     pb::Scope out;
                     return s.UpdateScope(c, r, &out);
                   }});
  cases.push_back({"UpdateScope of another session's scope", C::NOT_FOUND,
                   [this](pb::VariableStore::Stub& s, grpc::ClientContext* c) {
                     pb::UpdateScopeRequest r;
                     r.set_session_id(session_);
                     r.set_scope_id(other_root_);
                     r.mutable_update_mask()->add_paths("dtype");
                     pb::Scope out;
                     return s.UpdateScope(c, r, &out);
                   }});
  cases.push_back({"ListVariables with a forged page token", C::INVALID_ARGUMENT,
                   [](pb::VariableStore::Stub& s, grpc::ClientContext* c) {
                     pb::ListVariablesRequest r;
                     r.set_page_token("not-a-token");
                     pb::ListVariablesResponse out;
                     return s.ListVariables(c, r, &out);
                   }});
  cases.push_back({"ListScopes with a negative page size", C::INVALID_ARGUMENT,
                   [](pb::VariableStore::Stub& s, grpc::ClientContext* c) {
                     pb::ListScopesRequest r;
                     r.set_page_size(-1);
                     pb::ListScopesResponse out;
                     return s.ListScopes(c, r, &out);
                   }});
  ASSERT_GE(cases.size(), 45u);

  const size_t variables_before = server_->store().num_variables();
  const int64_t bytes_before = server_->store().total_bytes();
  for (const Case& c : cases) {
    grpc::ClientContext ctx;
    const grpc::Status status = c.call(*stub_, &ctx);
    EXPECT_EQ(status.error_code(), c.code)
        << c.what << ": " << status.error_message();
    EXPECT_FALSE(status.error_message().empty()) << c.what;
    EXPECT_EQ(server_->store().num_variables(), variables_before) << c.what;
    EXPECT_EQ(server_->store().total_bytes(), bytes_before) << c.what;
  }
}

// The rich error form: grpc-status-details-bin holds a google.rpc.Status
// whose details carry an ErrorInfo (what grpcurl -format-error prints).
TEST_F(BadInputTest, ErrorsCarryGoogleRpcErrorInfo) {
  grpc::ClientContext ctx;
  pb::KeepAliveRequest r;
  r.set_session_id(424242);
  pb::KeepAliveResponse resp;
  const grpc::Status status = stub_->KeepAlive(&ctx, r, &resp);
  ASSERT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(status.error_details()));
  EXPECT_EQ(details.code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(details.message(), status.error_message());
  ASSERT_EQ(details.details_size(), 1);
  google::rpc::ErrorInfo info;
  ASSERT_TRUE(details.details(0).UnpackTo(&info));
  EXPECT_EQ(info.reason(), "SESSION_NOT_FOUND");
  EXPECT_EQ(info.domain(), "varscope.dev");
  EXPECT_EQ(info.metadata().at("session_id"), "424242");

  // A variable error names the variable.
  grpc::ClientContext get_ctx;
  pb::GetVariableRequest get;
  get.set_scope("existing");
  get.set_name("v");
  get.mutable_shape()->add_dims(2);
  pb::GetVariableResponse out;
  const grpc::Status exists = stub_->GetVariable(&get_ctx, get, &out);
  ASSERT_EQ(exists.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  ASSERT_TRUE(details.ParseFromString(exists.error_details()));
  ASSERT_TRUE(details.details(0).UnpackTo(&info));
  EXPECT_EQ(info.reason(), "VARIABLE_EXISTS");
  EXPECT_EQ(info.metadata().at("variable"), "existing/v");
}

TEST_F(BadInputTest, OneShotGetVariableForGrpcurl) {
  grpc::ClientContext ctx;
  pb::GetVariableRequest r;
  r.set_scope("scope1/scope2");
  r.set_name("w");
  r.mutable_shape()->add_dims(784);
  r.mutable_shape()->add_dims(256);
  r.set_reuse(pb::AUTO_REUSE);
  pb::GetVariableResponse got;
  ASSERT_TRUE(stub_->GetVariable(&ctx, r, &got).ok());
  EXPECT_EQ(got.variable().name(), "scope1/scope2/w");
  EXPECT_EQ(got.variable().tensor_name(), "scope1/scope2/w:0");
  EXPECT_TRUE(got.created());
  EXPECT_EQ(got.variable().num_bytes(), 784 * 256 * 4);
  grpc::ClientContext list_ctx;
  pb::ListScopesRequest list;
  pb::ListScopesResponse tree;
  ASSERT_TRUE(stub_->ListScopes(&list_ctx, list, &tree).ok());
  ASSERT_GE(tree.scopes_size(), 1);
  EXPECT_EQ(tree.scopes(0).name(), "");  // the root first
  EXPECT_EQ(tree.scopes(0).total_variables(), 2);
}

}  // namespace
}  // namespace varscope::testing
