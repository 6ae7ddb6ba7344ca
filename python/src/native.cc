// varscope._native: a thin pybind11 binding of the C++ client. Everything
// with semantics (sessions, scope stacks, recovery, routing, TLS, tokens,
// streaming) stays in the C++ client; this file only converts values.
// TensorFlow's names and Python behaviour live in varscope/*.py.
//
// Every call that waits on the network releases the GIL. Scope guards are
// per thread in the C++ client, as Python's threads are OS threads.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "varscope/client.h"

namespace py = pybind11;

namespace varscope::python {
namespace {

// Raises the Python exception varscope.errors makes for `status`.
[[noreturn]] void Raise(const absl::Status& status) {
  py::object error = py::module_::import("varscope.errors")
                         .attr("_from_status")(static_cast<int>(status.code()),
                                               std::string(status.message()),
                                               ErrorReason(status), ErrorMetadata(status));
  PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(error.ptr())), error.ptr());
  throw py::error_already_set();
}

void Check(const absl::Status& status) {
  if (!status.ok()) Raise(status);
}

template <typename T>
T Value(absl::StatusOr<T> result) {
  if (!result.ok()) Raise(result.status());
  return *std::move(result);
}

// A C-contiguous array's bytes; `array` must outlive the span.
absl::Span<const uint8_t> BytesOf(const py::array& array) {
  if (!(array.flags() & py::array::c_style)) {
    throw py::value_error("varscope needs C-contiguous arrays (np.ascontiguousarray)");
  }
  return absl::Span<const uint8_t>(static_cast<const uint8_t*>(array.data()),
                                   static_cast<size_t>(array.nbytes()));
}

Tensor TensorOf(DataType dtype, const py::array& array) {
  Tensor tensor;
  tensor.dtype = dtype;
  tensor.shape.assign(array.shape(), array.shape() + array.ndim());
  absl::Span<const uint8_t> bytes = BytesOf(array);
  tensor.data.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  return tensor;
}

absl::Duration Seconds(double seconds) { return absl::Seconds(seconds); }

// Runs `call` (a network wait) without the GIL.
template <typename Call>
auto Unlocked(Call call) {
  py::gil_scoped_release release;
  return call();
}

// A variable-scope guard that Python opens in __enter__ and closes in
// __exit__ (on the same thread, innermost first, as `with` blocks do).
struct ScopeGuard {
  std::optional<VariableScope> scope;
  VariableScope& get() {
    if (!scope) throw py::value_error("the variable scope is closed");
    return *scope;
  }
};

// Scope defaults to change: each argument is () to leave that default, or
// (value,) to set it, where None removes an initializer or partitioner.
ScopeDefaults DefaultsOf(const py::tuple& initializer, const py::tuple& dtype,
                         const py::tuple& partitioner) {
  ScopeDefaults defaults;
  if (!initializer.empty()) {
    defaults.initializer = initializer[0].cast<std::optional<Initializer>>();
  }
  if (!dtype.empty()) defaults.dtype = dtype[0].cast<DataType>();
  if (!partitioner.empty()) {
    defaults.partitioner = partitioner[0].cast<std::optional<Partitioner>>();
  }
  return defaults;
}

struct NameGuard {
  std::optional<NameScope> scope;
};

void BindTypes(py::module_& m) {
  py::enum_<DataType>(m, "DataType")
      .value("UNSPECIFIED", DataType::kUnspecified)
      .value("FLOAT", DataType::kFloat)
      .value("DOUBLE", DataType::kDouble)
      .value("INT32", DataType::kInt32)
      .value("UINT8", DataType::kUInt8)
      .value("INT16", DataType::kInt16)
      .value("INT8", DataType::kInt8)
      .value("INT64", DataType::kInt64)
      .value("BOOL", DataType::kBool)
      .value("BFLOAT16", DataType::kBFloat16)
      .value("HALF", DataType::kHalf);
  py::enum_<Reuse>(m, "Reuse")
      .value("INHERIT", Reuse::kInherit)
      .value("REUSE", Reuse::kReuse)
      .value("AUTO_REUSE", Reuse::kAutoReuse);
  py::enum_<UpdateOp>(m, "UpdateOp")
      .value("ASSIGN", UpdateOp::kAssign)
      .value("ADD", UpdateOp::kAdd)
      .value("SUB", UpdateOp::kSub)
      .value("APPLY_GRADIENT", UpdateOp::kApplyGradient);

  py::class_<Initializer> init(m, "Initializer");
  py::enum_<Initializer::Mode>(init, "Mode")
      .value("FAN_IN", Initializer::Mode::kFanIn)
      .value("FAN_OUT", Initializer::Mode::kFanOut)
      .value("FAN_AVG", Initializer::Mode::kFanAvg);
  py::enum_<Initializer::Distribution>(init, "Distribution")
      .value("TRUNCATED_NORMAL", Initializer::Distribution::kTruncatedNormal)
      .value("UNTRUNCATED_NORMAL", Initializer::Distribution::kUntruncatedNormal)
      .value("UNIFORM", Initializer::Distribution::kUniform);
  init.def_static("zeros", &Initializer::Zeros)
      .def_static("ones", &Initializer::Ones)
      .def_static("constant", &Initializer::Constant)
      .def_static("random_uniform", &Initializer::RandomUniform)
      .def_static("random_normal", &Initializer::RandomNormal)
      .def_static("truncated_normal", &Initializer::TruncatedNormal)
      .def_static("uniform_unit_scaling", &Initializer::UniformUnitScaling)
      .def_static("variance_scaling", &Initializer::VarianceScaling)
      .def_static("glorot_uniform", &Initializer::GlorotUniform)
      .def_static("glorot_normal", &Initializer::GlorotNormal)
      .def_static("lecun_uniform", &Initializer::LecunUniform)
      .def_static("lecun_normal", &Initializer::LecunNormal)
      .def_static("he_uniform", &Initializer::HeUniform)
      .def_static("he_normal", &Initializer::HeNormal)
      .def_static("orthogonal", &Initializer::Orthogonal)
      .def_static("identity", &Initializer::Identity)
      .def_static("from_value", [](DataType dtype, const py::array& value) {
        return Initializer::FromValue(TensorOf(dtype, value));
      });

  py::class_<Partitioner>(m, "Partitioner")
      .def_static("fixed_size", &Partitioner::FixedSize)
      .def_static("min_max", &Partitioner::MinMax)
      .def_static("variable_axis_size", &Partitioner::VariableAxisSize)
      .def_static("explicit", &Partitioner::Explicit);

  py::class_<OptimizerConfig>(m, "OptimizerConfig")
      .def_static("sgd", &OptimizerConfig::Sgd)
      .def_static("momentum", &OptimizerConfig::Momentum)
      .def_static("adagrad", &OptimizerConfig::Adagrad)
      .def_static("adam", &OptimizerConfig::Adam)
      .def_static("rmsprop", &OptimizerConfig::RmsProp)
      .def_static("ftrl", [](double learning_rate, std::optional<double> power,
                             std::optional<double> initial_accumulator_value,
                             std::optional<double> l1, std::optional<double> l2) {
        OptimizerConfig c = OptimizerConfig::Ftrl(learning_rate);
        c.learning_rate_power = power;
        c.initial_accumulator_value = initial_accumulator_value;
        c.l1 = l1;
        c.l2 = l2;
        return c;
      });

  py::class_<PartSlice>(m, "PartSlice")
      .def_readonly("full_name", &PartSlice::full_name)
      .def_readonly("full_shape", &PartSlice::full_shape)
      .def_readonly("offset", &PartSlice::offset)
      .def_readonly("index", &PartSlice::index);
  py::class_<VariableInfo>(m, "VariableInfo")
      .def_readonly("name", &VariableInfo::name)
      .def_readonly("tensor_name", &VariableInfo::tensor_name)
      .def_readonly("dtype", &VariableInfo::dtype)
      .def_readonly("shape", &VariableInfo::shape)
      .def_readonly("version", &VariableInfo::version)
      .def_readonly("trainable", &VariableInfo::trainable)
      .def_readonly("collections", &VariableInfo::collections)
      .def_readonly("slice", &VariableInfo::slice)
      .def_readonly("partitioned", &VariableInfo::partitioned)
      .def_readonly("parts", &VariableInfo::parts)
      .def_readonly("partitions", &VariableInfo::partitions);
  py::class_<ScopeInfo>(m, "ScopeInfo")
      .def_readonly("name", &ScopeInfo::name)
      .def_readonly("name_scope", &ScopeInfo::name_scope)
      .def_readonly("original_name_scope", &ScopeInfo::original_name_scope)
      .def_readonly("reuse", &ScopeInfo::reuse)
      .def_readonly("initializer", &ScopeInfo::initializer)
      .def_readonly("dtype", &ScopeInfo::dtype)
      .def_readonly("partitioner", &ScopeInfo::partitioner)
      .def_readonly("root", &ScopeInfo::root);
  py::class_<UpdateResult>(m, "UpdateResult")
      .def_readonly("name", &UpdateResult::name)
      .def_readonly("version", &UpdateResult::version)
      .def_readonly("applied", &UpdateResult::applied)
      .def_readonly("stale", &UpdateResult::stale)
      .def_readonly("accumulated", &UpdateResult::accumulated)
      .def_readonly("sync_step", &UpdateResult::sync_step);
  py::class_<TrainingState>(m, "TrainingState")
      .def_readonly("name", &TrainingState::name)
      .def_readonly("optimizer", &TrainingState::optimizer)
      .def_readonly("slots", &TrainingState::slots)
      .def_readonly("optimizer_steps", &TrainingState::optimizer_steps)
      .def_readonly("replicas_to_aggregate", &TrainingState::replicas_to_aggregate);
  py::class_<WatchEvent> event(m, "WatchEvent");
  py::enum_<WatchEvent::Kind>(event, "Kind")
      .value("CREATED", WatchEvent::Kind::kCreated)
      .value("UPDATED", WatchEvent::Kind::kUpdated)
      .value("DELETED", WatchEvent::Kind::kDeleted)
      .value("RESYNC", WatchEvent::Kind::kResync)
      .value("EXISTING", WatchEvent::Kind::kExisting);
  event.def_readonly("kind", &WatchEvent::kind)
      .def_readonly("name", &WatchEvent::name)
      .def_readonly("version", &WatchEvent::version)
      .def("__repr__", [](const WatchEvent& e) {
        return "WatchEvent(" + e.name + ", version=" + std::to_string(e.version) + ")";
      });
}

void BindWatch(py::module_& m) {
  py::class_<WatchStream, std::unique_ptr<WatchStream>>(m, "WatchStream")
      .def("next",
           [](WatchStream& stream) -> std::optional<WatchEvent> {
             WatchEvent event;
             bool more;
             {
               py::gil_scoped_release release;
               more = stream.Next(&event);
             }
             if (more) return event;
             absl::Status status = stream.status();
             if (!status.ok() && !absl::IsCancelled(status)) Raise(status);
             return std::nullopt;
           })
      .def("cancel", &WatchStream::Cancel, py::call_guard<py::gil_scoped_release>());
}

void BindScopes(py::module_& m) {
  py::class_<CapturedScope>(m, "CapturedScope")
      .def_property_readonly("name", &CapturedScope::name)
      .def_property_readonly("handle", &CapturedScope::handle);
  py::class_<ScopeGuard>(m, "ScopeGuard")
      .def("close",
           [](ScopeGuard& g) {
             if (!g.scope) return;
             absl::Status status;
             {
               py::gil_scoped_release release;
               status = g.scope->Close();
             }
             g.scope.reset();
             Check(status);
           })
      .def("capture", [](ScopeGuard& g) { return g.get().Capture(); })
      .def("info", [](ScopeGuard& g) { return g.get().info(); })
      .def("reuse_variables",
           [](ScopeGuard& g) {
             VariableScope& scope = g.get();
             Check(Unlocked([&] { return scope.ReuseVariables(); }));
           })
      .def("set_defaults", [](ScopeGuard& g, py::tuple initializer, py::tuple dtype,
                              py::tuple partitioner) {
        const ScopeDefaults defaults = DefaultsOf(initializer, dtype, partitioner);
        VariableScope& scope = g.get();
        Check(Unlocked([&] { return scope.SetDefaults(defaults); }));
      });
  py::class_<NameGuard>(m, "NameGuard")
      .def("close", [](NameGuard& g) {
        if (!g.scope) return;
        absl::Status status = Unlocked([&] { return g.scope->Close(); });
        g.scope.reset();
        Check(status);
      })
      .def_property_readonly("name_scope", [](NameGuard& g) {
        return g.scope ? g.scope->name_scope() : std::string();
      });
}

// pull/push/gather by full name; Python's Variable keeps its client.
void BindValues(py::class_<Client, std::shared_ptr<Client>>& client) {
  client
      .def("pull",
           [](Client& c, const std::string& name, DataType dtype, py::array out,
              std::optional<std::pair<int64_t, int64_t>> rows, uint64_t if_newer_than) {
             // (the Python side passes an ndarray, never something to convert:
             // a converted copy would receive the bytes instead)
             // `out` is a fresh C-contiguous array of exactly the data's size:
             // the bytes land in it, no extra copy.
             PullOptions options;
             if (rows) options.rows = RowRange{rows->first, rows->second};
             options.if_newer_than = if_newer_than;
             BytesOf(out);  // C-contiguous, and writeable (mutable_data checks)
             auto bytes = absl::Span<uint8_t>(static_cast<uint8_t*>(out.mutable_data()),
                                              static_cast<size_t>(out.nbytes()));
             absl::StatusOr<PullResult> result;
             {
               py::gil_scoped_release release;
               result = c.Pull(name, dtype, bytes, options);
             }
             PullResult r = Value(std::move(result));
             return py::make_tuple(r.version, r.unchanged);
           })
      .def("push",
           [](Client& c, const std::string& name, UpdateOp op, DataType dtype,
              const py::array& data, std::vector<int64_t> indices,
              std::optional<uint64_t> expected_version, std::optional<OptimizerConfig> optimizer,
              std::optional<int64_t> step) {
             PushOptions options;
             options.indices = std::move(indices);
             options.expected_version = expected_version;
             options.optimizer = std::move(optimizer);
             options.step = step;
             absl::Span<const uint8_t> bytes = BytesOf(data);
             absl::StatusOr<UpdateResult> result;
             {
               py::gil_scoped_release release;
               result = c.Push(name, op, dtype, bytes, options);
             }
             return Value(std::move(result));
           })
      .def("push_many",
           [](Client& c, const std::vector<std::tuple<std::string, UpdateOp, DataType,
                                                      py::array, std::vector<int64_t>>>& items) {
             std::vector<PushItem> push;
             for (const auto& [name, op, dtype, data, indices] : items) {
               PushItem item;
               item.name = name;
               item.op = op;
               item.dtype = dtype;
               item.data = BytesOf(data);
               item.indices = indices;
               push.push_back(std::move(item));
             }
             absl::StatusOr<std::vector<UpdateResult>> result;
             {
               py::gil_scoped_release release;
               result = c.PushMany(push);
             }
             return Value(std::move(result));
           })
      .def("gather",
           [](Client& c, const std::string& name, const std::vector<int64_t>& indices) {
             absl::StatusOr<Tensor> result;
             {
               py::gil_scoped_release release;
               result = c.Gather(name, indices);
             }
             Tensor t = Value(std::move(result));
             return py::make_tuple(t.shape, py::bytes(t.data));
           })
      .def("wait_version", [](Client& c, const std::string& name, uint64_t version,
                              double timeout) {
        return Value(Unlocked([&] { return c.WaitVersion(name, version, Seconds(timeout)); }));
      });
}

void BindClient(py::module_& m) {
  // Held by a shared_ptr whose deleter lets other Python threads run while
  // ~Client stops its keep-alive thread and closes the session.
  py::class_<Client, std::shared_ptr<Client>> client(m, "Client");
  client
      .def_static(
          "connect",
          [](const std::string& target, const std::string& token, bool tls,
             const std::string& ca_file, const std::string& cert_file,
             const std::string& key_file, double timeout, bool wait_for_ready,
             const std::string& client_name, bool shared_memory) {
            ClientOptions options;
            options.client_name = client_name;
            options.connection.auth_token = token;
            options.connection.tls.enabled = tls;
            options.connection.tls.ca_file = ca_file;
            options.connection.tls.cert_file = cert_file;
            options.connection.tls.key_file = key_file;
            options.connection.rpc_timeout = Seconds(timeout);
            options.connection.wait_for_ready = wait_for_ready;
            options.connection.shared_memory = shared_memory;
            std::unique_ptr<Client> connected =
                Value(Unlocked([&] { return Client::Connect(target, options); }));
            return std::shared_ptr<Client>(connected.release(), [](Client* c) {
              if (PyGILState_Check()) {
                py::gil_scoped_release release;
                delete c;
              } else {
                delete c;
              }
            });
          },
          py::arg("target"), py::arg("token") = "", py::arg("tls") = false,
          py::arg("ca_file") = "", py::arg("cert_file") = "", py::arg("key_file") = "",
          py::arg("timeout") = 30.0, py::arg("wait_for_ready") = false,
          py::arg("client_name") = "varscope-python", py::arg("shared_memory") = true)
      .def(
          "get_variable",
          [](Client& c, const std::string& name, std::optional<std::vector<int64_t>> shape,
             DataType dtype, std::optional<Initializer> initializer,
             std::optional<bool> trainable,
             std::optional<std::vector<std::string>> collections,
             std::optional<Partitioner> partitioner, bool local, double wait) {
            VariableOptions options;
            if (shape) {
              options.shape = *shape;
              options.scalar = shape->empty();
            }
            options.dtype = dtype;
            options.initializer = std::move(initializer);
            options.trainable = trainable;
            options.collections = std::move(collections);
            options.partitioner = std::move(partitioner);
            options.local = local;
            options.wait = Seconds(wait);
            Variable var = Value(Unlocked([&] { return c.GetVariable(name, options); }));
            return py::make_tuple(var.info(), var.created());
          },
          py::arg("name"), py::arg("shape"), py::arg("dtype"), py::arg("initializer"),
          py::arg("trainable"), py::arg("collections"), py::arg("partitioner"),
          py::arg("local"), py::arg("wait"))
      .def("new_variable",
           [](Client& c, const std::string& name, DataType dtype, const py::array& value,
              std::optional<bool> trainable) {
             Tensor tensor = TensorOf(dtype, value);
             return Value(Unlocked([&] { return c.NewVariable(name, tensor, trainable); }))
                 .info();
           })
      .def("describe",
           [](Client& c, const std::string& name) {
             return Value(Unlocked([&] { return c.DescribeVariable(name); })).info();
           })
      .def("delete",
           [](Client& c, const std::string& name) {
             Check(Unlocked([&] { return c.DeleteVariable(name); }));
           })
      .def("list_variables",
           [](Client& c, const std::string& prefix, const std::string& collection) {
             absl::StatusOr<std::vector<Variable>> listed;
             {
               py::gil_scoped_release release;
               listed = c.ListVariables(prefix, collection);
             }
             std::vector<VariableInfo> infos;
             for (const Variable& v : Value(std::move(listed))) infos.push_back(v.info());
             return infos;
           })
      .def("op_name",
           [](Client& c, const std::string& name, bool preview) {
             return Value(Unlocked([&] { return c.OpName(name, preview); }));
           })
      .def("current_scope",
           [](Client& c) { return Value(Unlocked([&] { return c.CurrentScope(); })); })
      .def("reuse_variables",
           [](Client& c) { Check(Unlocked([&] { return c.ReuseVariables(); })); })
      .def("set_scope_defaults",
           [](Client& c, py::tuple initializer, py::tuple dtype, py::tuple partitioner) {
             const ScopeDefaults defaults = DefaultsOf(initializer, dtype, partitioner);
             Check(Unlocked([&] { return c.SetScopeDefaults(defaults); }));
           })
      .def("root_scope", &Client::RootScope)
      .def(
          "open_scope",
          [](Client& c, const std::string& name, const std::optional<CapturedScope>& reenter,
             Reuse reuse, const std::string& default_name,
             std::optional<Initializer> initializer, DataType dtype,
             std::optional<Partitioner> partitioner, bool auxiliary_name_scope) {
            ScopeOptions options;
            options.reuse = reuse;
            options.default_name = default_name;
            options.initializer = std::move(initializer);
            options.dtype = dtype;
            options.partitioner = std::move(partitioner);
            options.auxiliary_name_scope = auxiliary_name_scope;
            absl::StatusOr<VariableScope> scope;
            {
              py::gil_scoped_release release;
              if (reenter) {
                scope = VariableScope::Reenter(c, *reenter, options);
              } else if (name.empty()) {
                scope = VariableScope::OpenDefault(c, default_name, options);
              } else {
                scope = VariableScope::Open(c, name, options);
              }
            }
            auto guard = std::make_unique<ScopeGuard>();
            guard->scope.emplace(Value(std::move(scope)));
            return guard;
          },
          py::keep_alive<0, 1>())  // the guard uses the Client until it closes
      .def("open_name_scope",
           [](Client& c, const std::string& name) {
             absl::StatusOr<NameScope> scope;
             {
               py::gil_scoped_release release;
               scope = NameScope::Open(c, name);
             }
             auto guard = std::make_unique<NameGuard>();
             guard->scope.emplace(Value(std::move(scope)));
             return guard;
           },
           py::keep_alive<0, 1>())
      .def("set_optimizer",
           [](Client& c, const std::vector<std::string>& names, const OptimizerConfig& config,
              int replicas) {
             return Value(Unlocked([&] { return c.SetOptimizer(names, config, replicas); }));
           })
      .def(
          "watch",
          [](Client& c, const std::string& prefix, bool send_initial) {
            return Unlocked([&] { return c.Watch(prefix, send_initial); });
          },
          py::keep_alive<0, 1>())
      .def_property_readonly("session_id", &Client::session_id)
      .def_property_readonly("session_recoveries", &Client::session_recoveries);
  BindValues(client);
}

}  // namespace

PYBIND11_MODULE(_native, m) {
  m.doc() = "varscope's C++ client, bound for the varscope package";
  BindTypes(m);
  BindWatch(m);
  BindScopes(m);
  BindClient(m);
}

}  // namespace varscope::python
