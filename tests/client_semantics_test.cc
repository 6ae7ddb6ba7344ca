// The TensorFlow-semantics suite run through the client library against a
// real server on 127.0.0.1.
#include <variant>

#include "tests/semantics_suite.h"
#include "tests/test_server.h"
#include "varscope/client.h"

namespace varscope::testing {
namespace {

class ClientDriver : public Driver {
 public:
  ClientDriver() : server_(StartTestServer()) {
    client_ = *Client::Connect(server_->address());
  }
  ~ClientDriver() override {
    while (!guards_.empty()) guards_.pop_back();  // innermost first
  }

  absl::Status Enter(const std::string& name, EnterOptions options) override {
    ScopeOptions scope;
    scope.reuse = static_cast<v1::Reuse>(options.reuse);
    scope.auxiliary_name_scope = options.auxiliary_name_scope;
    scope.dtype = static_cast<v1::DataType>(options.dtype);
    return Push(VariableScope::Open(*client_, name, scope));
  }
  absl::Status EnterDefault(const std::string& default_name) override {
    return Push(VariableScope::OpenDefault(*client_, default_name));
  }
  absl::Status EnterNameScope(const std::string& name) override {
    auto scope = NameScope::Open(*client_, name);
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
  absl::Status Reenter(int token, R reuse) override {
    ScopeOptions options;
    options.reuse = static_cast<v1::Reuse>(reuse);
    return Push(VariableScope::Reenter(*client_, captured_[token], options));
  }
  absl::Status Exit() override {
    absl::Status s = std::visit([](auto& g) { return g.Close(); }, guards_.back());
    guards_.pop_back();
    return s;
  }
  absl::Status ReuseVariables() override { return client_->ReuseVariables(); }
  absl::StatusOr<VarResult> Get(const std::string& name,
                                std::optional<std::vector<int64_t>> shape,
                                int dtype) override {
    VariableOptions options;
    if (shape) {
      options.shape = *shape;
      options.scalar = shape->empty();
    }
    options.dtype = static_cast<v1::DataType>(dtype);
    auto v = client_->GetVariable(name, options);
    if (!v.ok()) return v.status();
    return VarResult{v->name(), v->created(), v->shape(), v->dtype(),
                     v->trainable(),
                     {v->proto().collections().begin(),
                      v->proto().collections().end()}};
  }
  absl::StatusOr<std::string> OpName(const std::string& name) override {
    return client_->OpName(name);
  }
  absl::StatusOr<std::string> NewVariable(const std::string& name) override {
    v1::TensorValue value;
    value.set_dtype(v1::DT_FLOAT);
    const float one = 1;
    value.set_data(&one, sizeof(one));
    auto v = client_->NewVariable(name, value);
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
  absl::Status Push(absl::StatusOr<VariableScope> scope) {
    if (!scope.ok()) return scope.status();
    guards_.emplace_back(*std::move(scope));
    return absl::OkStatus();
  }

  std::unique_ptr<service::Server> server_;
  std::unique_ptr<Client> client_;
  std::vector<std::variant<VariableScope, varscope::NameScope>> guards_;
  std::vector<CapturedScope> captured_;
};

INSTANTIATE_TYPED_TEST_SUITE_P(Client, SemanticsTest, ClientDriver);

}  // namespace
}  // namespace varscope::testing
