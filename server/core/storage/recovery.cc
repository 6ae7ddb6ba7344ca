#include "server/core/storage/recovery.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "server/core/storage/state_json.h"
#include "server/core/base/status_macros.h"

namespace varscope::core {
namespace {

using nlohmann::json;

absl::Status ApplyCreate(VariableStore* store, const json& header,
                         const std::string& data) {
  StoreSnapshot add;
  size_t offset = 0;
  for (const json& v : header.at("variables")) {
    VARSCOPE_ASSIGN_OR_RETURN(VariableState state, VariableStateFromJson(v));
    const size_t bytes = v.at("value_bytes").get<size_t>();
    if (bytes > data.size() - offset) {
      return absl::DataLossError("a create record's values are cut short");
    }
    auto value = TensorBuffer::CopyOf(data.data() + offset, bytes);
    offset += bytes;
    state.value = std::move(value);
    add.variables.push_back(std::move(state));
  }
  if (header.contains("partitioned")) {
    VARSCOPE_ASSIGN_OR_RETURN(PartitionedState p,
                              PartitionedStateFromJson(header["partitioned"]));
    add.partitioned.push_back(std::move(p));
  }
  return store->Insert(std::move(add));
}

absl::Status ApplyPush(VariableStore* store, DataPlane* data_plane,
                       const json& header, const std::string& data) {
  std::vector<Update> updates;
  std::vector<std::vector<int64_t>> indices_storage;
  size_t offset = 0;
  for (const json& u : header.at("updates")) {
    const std::string name = u.at("name").get<std::string>();
    const size_t index_count = u.at("index_count").get<size_t>();
    const size_t data_bytes = u.at("data_bytes").get<size_t>();
    if (index_count * sizeof(int64_t) + data_bytes > data.size() - offset) {
      return absl::DataLossError("a push record's data is cut short");
    }
    Update update;
    update.name = name;
    update.op = static_cast<UpdateOp>(u.at("op").get<int>());
    update.dtype = static_cast<DType>(u.at("dtype").get<int>());
    if (u.contains("rows")) {
      update.rows = RowRange{u["rows"][0].get<int64_t>(), u["rows"][1].get<int64_t>()};
    }
    if (u.contains("index_count") && index_count > 0) {
      std::vector<int64_t> indices(index_count);
      std::memcpy(indices.data(), data.data() + offset, index_count * sizeof(int64_t));
      update.indices = std::move(indices);
    }
    offset += index_count * sizeof(int64_t);
    update.data = absl::string_view(data.data() + offset, data_bytes);
    offset += data_bytes;
    if (u.contains("optimizer")) update.optimizer = OptimizerFromJson(u["optimizer"]);
    if (u.contains("step")) update.step = u["step"].get<int64_t>();
    const uint64_t before = u.at("version_before").get<uint64_t>();
    absl::StatusOr<VariableHandle> var = store->Find(name);
    if (!var.ok()) continue;  // deleted later in the log
    const uint64_t now = var->cell->version();
    if (now > before) continue;  // the checkpoint already has it
    if (now < before) {
      return absl::DataLossError(absl::StrCat(
          "the log is missing updates of ", name, ": it is at version ", now,
          " and the next logged push expects version ", before));
    }
    update.expected_version = before;
    updates.push_back(std::move(update));
  }
  if (updates.empty()) return absl::OkStatus();
  return data_plane->Push(std::move(updates)).status();
}

}  // namespace

absl::Status ApplyJournalRecord(VariableStore* store, DataPlane* data,
                                const JournalRecord& record) {
  try {
    const json header = json::parse(record.header);
    const std::string op = header.at("op").get<std::string>();
    if (op == "create") return ApplyCreate(store, header, record.data);
    if (op == "push") return ApplyPush(store, data, header, record.data);
    if (op == "delete") {
      const std::string name = header.at("name").get<std::string>();
      absl::StatusOr<std::vector<std::string>> removed = store->Delete(name);
      if (!removed.ok() && !absl::IsNotFound(removed.status())) return removed.status();
      return absl::OkStatus();
    }
    if (op == "training") {
      TrainingConfig config;
      config.replicas_to_aggregate = header.at("replicas").get<int>();
      if (header.contains("optimizer")) config.optimizer = OptimizerFromJson(header["optimizer"]);
      absl::Status s = data->SetTraining({header.at("name").get<std::string>()}, config);
      return absl::IsNotFound(s) ? absl::OkStatus() : s;
    }
    return absl::DataLossError(absl::StrCat("unknown log record '", op, "'"));
  } catch (const json::exception& e) {
    return absl::DataLossError(absl::StrCat("malformed log record: ", e.what()));
  }
}

}  // namespace varscope::core
