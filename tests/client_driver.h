// The TensorFlow-semantics suite's driver through the C++ client library,
// against any target: an in-process server, or the shards of a cluster.
#ifndef VARSCOPE_TESTS_CLIENT_DRIVER_H_
#define VARSCOPE_TESTS_CLIENT_DRIVER_H_

#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "tests/semantics_suite.h"
#include "varscope/client.h"

namespace varscope::testing {

// The semantics suite's driver through the client library. `Target`
// provides Address(n): where the n-th session connects (a single server,
// or the shards of a cluster in turn).
template <typename Target>
class ClientDriverOf : public Driver {
 public:
  ClientDriverOf() { clients_.push_back(*Client::Connect(target_.Address(0))); }
  ~ClientDriverOf() override { CloseAll(); }

  absl::Status Enter(const std::string& name, EnterOptions options) override {
    return Push(VariableScope::Open(client(), name, Options(options)));
  }
  absl::Status EnterDefault(const std::string& default_name) override {
    return Push(VariableScope::OpenDefault(client(), default_name));
  }
  absl::Status EnterNameScope(const std::string& name) override {
    auto scope = NameScope::Open(client(), name);
    if (!scope.ok()) return scope.status();
    guards_.emplace_back(*std::move(scope));
    return absl::OkStatus();
  }
  int Capture() override {
    for (auto it = guards_.rbegin(); it != guards_.rend(); ++it) {
      if (auto* vs = std::get_if<VariableScope>(&*it)) {
        captured_.push_back(vs->Capture());
        break;
      }
    }
    return static_cast<int>(captured_.size() - 1);
  }
  int CaptureRoot() override {
    captured_.push_back(client().RootScope());
    return static_cast<int>(captured_.size() - 1);
  }
  absl::Status Reenter(int token, EnterOptions options) override {
    return Push(VariableScope::Reenter(client(), captured_[token], Options(options)));
  }
  absl::Status SwitchSession() override {
    CloseAll();
    auto next = Client::Connect(target_.Address(static_cast<int>(clients_.size())));
    if (!next.ok()) return next.status();
    clients_.push_back(*std::move(next));  // the first stays connected
    return absl::OkStatus();
  }
  absl::Status SetDtype(int dtype) override {
    ScopeDefaults defaults;
    defaults.dtype = static_cast<DataType>(dtype);
    for (auto it = guards_.rbegin(); it != guards_.rend(); ++it) {
      if (auto* vs = std::get_if<VariableScope>(&*it)) return vs->SetDefaults(defaults);
    }
    return client().SetScopeDefaults(defaults);
  }
  absl::StatusOr<RootView> Root() override {
    ListScopesArgs args;
    args.session = client().session_id();
    auto page = client().ListScopes(args);
    if (!page.ok()) return page.status();
    if (page->handles.empty() || !page->handles.front().root) {
      return absl::InternalError("ListScopes did not list the root first");
    }
    const ScopeInfo& root = page->handles.front();
    return RootView{static_cast<R>(root.reuse), static_cast<int>(root.dtype)};
  }
  std::string Reason(const absl::Status& status) override {
    return ErrorReason(status);
  }
  absl::Status Exit() override {
    absl::Status s = std::visit([](auto& g) { return g.Close(); }, guards_.back());
    guards_.pop_back();
    return s;
  }
  absl::Status ReuseVariables() override { return client().ReuseVariables(); }
  absl::StatusOr<VarResult> Get(const std::string& name,
                                std::optional<std::vector<int64_t>> shape,
                                int dtype) override {
    VariableOptions options;
    if (shape) {
      options.shape = *shape;
      options.scalar = shape->empty();
    }
    options.dtype = static_cast<DataType>(dtype);
    return Result(client().GetVariable(name, options));
  }
  absl::StatusOr<VarResult> GetLocal(const std::string& name,
                                     std::vector<int64_t> shape) override {
    VariableOptions options;
    options.shape = std::move(shape);
    return Result(client().GetLocalVariable(name, options));
  }
  absl::StatusOr<std::string> OpName(const std::string& name, bool preview) override {
    return client().OpName(name, preview);
  }
  absl::StatusOr<std::string> NewVariable(const std::string& name) override {
    auto v = client().NewVariable(name, Tensor::Of<float>({1}, {}));
    if (!v.ok()) return v.status();
    return v->name();
  }
  std::string NameScope() override {
    if (guards_.empty()) return "";
    return std::visit([](auto& g) { return g.name_scope(); }, guards_.back());
  }
  std::string ScopeName() override {
    for (auto it = guards_.rbegin(); it != guards_.rend(); ++it) {
      if (auto* vs = std::get_if<VariableScope>(&*it)) return vs->name();
    }
    return "";
  }

 private:
  Client& client() { return *clients_.back(); }
  static ScopeOptions Options(const EnterOptions& options) {
    ScopeOptions scope;
    scope.reuse = static_cast<Reuse>(options.reuse);
    scope.auxiliary_name_scope = options.auxiliary_name_scope;
    scope.dtype = static_cast<DataType>(options.dtype);
    scope.default_name = options.default_name;
    return scope;
  }
  static absl::StatusOr<VarResult> Result(absl::StatusOr<Variable> v) {
    if (!v.ok()) return v.status();
    return VarResult{v->name(), v->created(), v->shape(), static_cast<int>(v->dtype()),
                     v->trainable(), v->info().collections};
  }
  absl::Status Push(absl::StatusOr<VariableScope> scope) {
    if (!scope.ok()) return scope.status();
    guards_.emplace_back(*std::move(scope));
    return absl::OkStatus();
  }
  void CloseAll() {
    while (!guards_.empty()) guards_.pop_back();  // innermost first
  }

  Target target_;
  std::vector<std::unique_ptr<Client>> clients_;
  std::vector<std::variant<VariableScope, varscope::NameScope>> guards_;
  std::vector<CapturedScope> captured_;
};

}  // namespace varscope::testing

#endif  // VARSCOPE_TESTS_CLIENT_DRIVER_H_
