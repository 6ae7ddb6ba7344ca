// The TensorFlow-semantics suite run directly on the core.
#include "server/core/base/error_info.h"
#include "server/core/namespace/session_manager.h"
#include "tests/semantics_suite.h"

namespace varscope::testing {
namespace {

class CoreDriver : public Driver {
 public:
  CoreDriver() : store_(core::StoreOptions{}), sessions_(&store_, &clock_, {}) {
    auto session = sessions_.OpenSession("core-driver", absl::ZeroDuration());
    session_ = session->id;
    root_ = session->root_scope;
  }

  absl::Status Enter(const std::string& name, EnterOptions options) override {
    core::OpenScopeRequest request = VariableScope(options);
    request.name = name;
    return Open(request);
  }
  absl::Status EnterDefault(const std::string& default_name) override {
    core::OpenScopeRequest request;
    request.default_name = default_name;
    return Open(request);
  }
  absl::Status EnterNameScope(const std::string& name) override {
    core::OpenScopeRequest request;
    request.kind = core::ScopeKind::kNameScope;
    request.name = name;
    return Open(request);
  }
  int Capture() override {
    captured_.push_back(stack_.back().id);
    return static_cast<int>(captured_.size() - 1);
  }
  int CaptureRoot() override {
    captured_.push_back(root_);
    return static_cast<int>(captured_.size() - 1);
  }
  absl::Status Reenter(int token, EnterOptions options) override {
    core::OpenScopeRequest request = VariableScope(options);
    request.reenter = captured_[token];
    return Open(request);
  }
  absl::Status SwitchSession() override {
    auto session = sessions_.OpenSession("core-driver-2", absl::ZeroDuration());
    if (!session.ok()) return session.status();
    session_ = session->id;
    root_ = session->root_scope;
    stack_.clear();
    return absl::OkStatus();
  }
  absl::Status SetDtype(int dtype) override {
    core::ScopeDefaultsUpdate update;
    update.dtype = static_cast<core::DType>(dtype);
    return sessions_.UpdateScope(session_, Current(), update).status();
  }
  absl::StatusOr<RootView> Root() override {
    auto handles = sessions_.ListHandles(session_);
    if (!handles.ok()) return handles.status();
    const core::ScopeInfo& root = handles->front();
    EXPECT_TRUE(root.root);
    EXPECT_EQ(root.id, root_);
    return RootView{static_cast<R>(root.reuse), static_cast<int>(root.dtype)};
  }
  std::string Reason(const absl::Status& status) override {
    auto info = core::GetErrorInfo(status);
    return info ? info->reason : "";
  }
  absl::Status Exit() override {
    absl::Status s = sessions_.CloseScope(session_, stack_.back().id);
    if (s.ok()) stack_.pop_back();
    return s;
  }
  absl::Status ReuseVariables() override {
    return sessions_.ReuseVariables(session_, Current()).status();
  }
  absl::StatusOr<VarResult> Get(const std::string& name,
                                std::optional<std::vector<int64_t>> shape,
                                int dtype) override {
    core::GetVariableRequest request;
    request.name = name;
    if (shape) request.shape = core::ShapeSpec::Of(*shape);
    // As the service converts the wire's number.
    absl::StatusOr<core::DType> checked = core::DTypeFromNumber(dtype);
    if (!checked.ok()) return checked.status();
    request.dtype = *checked;
    return Result(sessions_.GetVariable(session_, Current(), request));
  }
  absl::StatusOr<VarResult> GetLocal(const std::string& name,
                                     std::vector<int64_t> shape) override {
    core::GetVariableRequest request;
    request.name = name;
    request.shape = core::ShapeSpec::Of(shape);
    request.local = true;
    return Result(sessions_.GetVariable(session_, Current(), request));
  }
  absl::StatusOr<std::string> OpName(const std::string& name, bool preview) override {
    return sessions_.OpName(session_, Current(), name, preview);
  }
  absl::StatusOr<std::string> NewVariable(const std::string& name) override {
    core::NewVariableRequest request;
    request.name = name;
    core::InitializerSpec value;
    value.kind = core::InitializerSpec::Kind::kValue;
    value.value.dtype = core::DType::kFloat;
    const float one = 1;
    value.value.buffer = core::TensorBuffer::CopyOf(&one, sizeof(one));
    request.variable.initializer = value;
    auto info = sessions_.NewVariable(session_, Current(), request);
    if (!info.ok()) return info.status();
    return info->name + ":0";
  }
  std::string NameScope() override {
    return stack_.empty() ? "" : stack_.back().name_scope;
  }
  std::string ScopeName() override {
    return stack_.empty() ? "" : stack_.back().name;
  }

 private:
  // 0 names the calling session's root.
  uint64_t Current() const { return stack_.empty() ? 0 : stack_.back().id; }
  static core::OpenScopeRequest VariableScope(const EnterOptions& options) {
    core::OpenScopeRequest request;
    request.reuse = static_cast<core::Reuse>(options.reuse);
    request.auxiliary_name_scope = options.auxiliary_name_scope;
    request.dtype = static_cast<core::DType>(options.dtype);
    request.default_name = options.default_name;
    return request;
  }
  static absl::StatusOr<VarResult> Result(absl::StatusOr<core::VariableInfo> info) {
    if (!info.ok()) return info.status();
    return VarResult{info->name + ":0", info->created, info->shape,
                     static_cast<int>(info->dtype), info->trainable,
                     info->collections};
  }
  absl::Status Open(core::OpenScopeRequest request) {
    request.parent = Current();
    auto info = sessions_.OpenScope(session_, request);
    if (!info.ok()) return info.status();
    stack_.push_back(*info);
    return absl::OkStatus();
  }

  core::FakeClock clock_;
  core::VariableStore store_;
  core::SessionManager sessions_;
  uint64_t session_ = 0;
  uint64_t root_ = 0;
  std::vector<core::ScopeInfo> stack_;
  std::vector<uint64_t> captured_;
};

INSTANTIATE_TYPED_TEST_SUITE_P(Core, SemanticsTest, CoreDriver);

}  // namespace
}  // namespace varscope::testing
