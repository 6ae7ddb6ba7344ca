#include "server/core/storage/log_records.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "server/core/base/status_macros.h"
#include "server/core/storage/json_forms_internal.h"

namespace varscope::core {
namespace {

using nlohmann::json;

// Push operations by explicit name.
constexpr struct {
  UpdateOp op;
  const char* name;
} kOps[] = {{UpdateOp::kAssign, "ASSIGN"},
            {UpdateOp::kAdd, "ADD"},
            {UpdateOp::kSub, "SUB"},
            {UpdateOp::kApplyGradient, "APPLY_GRADIENT"}};

const char* OpToName(UpdateOp op) {
  for (const auto& o : kOps) {
    if (o.op == op) return o.name;
  }
  return "?";
}

absl::StatusOr<UpdateOp> OpFromName(const std::string& name) {
  for (const auto& o : kOps) {
    if (name == o.name) return o.op;
  }
  return absl::DataLossError(absl::StrCat("unknown push operation '", name, "'"));
}

std::string Header(LogRecordKind kind, const json& body) {
  std::string header;
  header.push_back(static_cast<char>(kLogFormatVersion));
  header.push_back(static_cast<char>(kind));
  header += body.dump();
  return header;
}

absl::string_view BytesOf(const TensorBuffer& buffer) {
  return absl::string_view(reinterpret_cast<const char*>(buffer.data()),
                           buffer.size());
}

// Takes `n` bytes of the record's data, in order.
class DataReader {
 public:
  explicit DataReader(absl::string_view data) : data_(data) {}
  absl::StatusOr<absl::string_view> Take(size_t n, absl::string_view what) {
    if (n > data_.size() - offset_) {
      return absl::DataLossError(absl::StrCat("a log record's ", what, " is cut short"));
    }
    absl::string_view out = data_.substr(offset_, n);
    offset_ += n;
    return out;
  }

 private:
  absl::string_view data_;
  size_t offset_ = 0;
};

absl::Status DecodeCreation(const json& body, DataReader& data,
                            DecodedRecord* out) {
  out->creation.revision = out->revision;
  for (const json& v : body.at("variables")) {
    VARSCOPE_ASSIGN_OR_RETURN(VariableState state, VariableStateFromJson(v));
    VARSCOPE_ASSIGN_OR_RETURN(
        absl::string_view bytes,
        data.Take(v.at("value_bytes").get<size_t>(), "initial values"));
    state.value = TensorBuffer::CopyOf(bytes.data(), bytes.size());
    out->creation.variables.push_back(std::move(state));
  }
  if (body.contains("partitioned")) {
    VARSCOPE_ASSIGN_OR_RETURN(PartitionedState p,
                              PartitionedStateFromJson(body["partitioned"]));
    out->creation.partitioned = std::move(p);
  }
  return absl::OkStatus();
}

absl::Status DecodePush(const json& body, DataReader& data, DecodedRecord* out) {
  for (const json& u : body.at("updates")) {
    Update update;
    update.name = u.at("name").get<std::string>();
    VARSCOPE_ASSIGN_OR_RETURN(update.op, OpFromName(u.at("op").get<std::string>()));
    VARSCOPE_ASSIGN_OR_RETURN(update.dtype, DTypeFromJson(u.at("dtype")));
    if (u.contains("rows")) {
      update.rows = RowRange{u["rows"].at(0).get<int64_t>(),
                             u["rows"].at(1).get<int64_t>()};
    }
    const size_t index_count = u.value("index_count", size_t{0});
    if (u.contains("sparse")) {
      VARSCOPE_ASSIGN_OR_RETURN(
          absl::string_view raw,
          data.Take(index_count * sizeof(int64_t), "indices"));
      std::vector<int64_t> indices(index_count);
      if (index_count > 0) std::memcpy(indices.data(), raw.data(), raw.size());
      update.indices = std::move(indices);
    }
    VARSCOPE_ASSIGN_OR_RETURN(
        update.data, data.Take(u.at("data_bytes").get<size_t>(), "pushed data"));
    if (u.contains("optimizer")) {
      VARSCOPE_ASSIGN_OR_RETURN(update.optimizer, OptimizerFromJson(u["optimizer"]));
    }
    if (u.contains("step")) update.step = u["step"].get<int64_t>();
    update.expected_version = u.at("version_before").get<uint64_t>();
    out->updates.push_back(std::move(update));
  }
  return absl::OkStatus();
}

absl::Status DecodeBody(LogRecordKind kind, const json& body,
                        DataReader& data, DecodedRecord* out) {
  switch (kind) {
    case LogRecordKind::kCreation:
      out->revision = body.at("revision").get<uint64_t>();
      return DecodeCreation(body, data, out);
    case LogRecordKind::kDeletion:
      out->name = body.at("name").get<std::string>();
      return absl::OkStatus();
    case LogRecordKind::kPush:
      out->revision = body.at("revision").get<uint64_t>();
      return DecodePush(body, data, out);
    case LogRecordKind::kTraining:
      out->revision = body.at("revision").get<uint64_t>();
      out->names = body.at("names").get<std::vector<std::string>>();
      out->config.replicas_to_aggregate = body.at("replicas").get<int>();
      if (body.contains("optimizer")) {
        VARSCOPE_ASSIGN_OR_RETURN(out->config.optimizer,
                                  OptimizerFromJson(body["optimizer"]));
      }
      return absl::OkStatus();
    case LogRecordKind::kRevisionCeiling:
      out->revision = body.at("ceiling").get<uint64_t>();
      return absl::OkStatus();
    case LogRecordKind::kRestore:
      out->revision = body.at("revision").get<uint64_t>();
      out->name = body.at("checkpoint").get<std::string>();
      return absl::OkStatus();
  }
  return absl::DataLossError(
      absl::StrCat("unknown log record kind ", static_cast<int>(kind)));
}

}  // namespace

EncodedRecord EncodeCreation(const CreationRecord& record) {
  EncodedRecord out;
  json vars = json::array();
  for (const VariableState& v : record.variables) {
    json j = VariableStateToJson(v);
    j["value_bytes"] = v.value->size();
    vars.push_back(std::move(j));
    out.data.push_back(BytesOf(*v.value));
  }
  json body = {{"revision", record.revision}, {"variables", std::move(vars)}};
  if (record.partitioned) body["partitioned"] = PartitionedStateToJson(*record.partitioned);
  out.header = Header(LogRecordKind::kCreation, body);
  return out;
}

EncodedRecord EncodeDeletion(absl::string_view name) {
  return {Header(LogRecordKind::kDeletion, {{"name", std::string(name)}}), {}};
}

EncodedRecord EncodePush(const PushRecord& record) {
  EncodedRecord out;
  json updates = json::array();
  for (const LoggedUpdate& logged : record.updates) {
    const Update& u = *logged.update;
    json j = {{"name", logged.name},
              {"op", OpToName(u.op)},
              {"dtype", DTypeToJson(u.dtype)},
              {"version_before", logged.version_before},
              {"data_bytes", u.data.size()}};
    if (u.rows) j["rows"] = {u.rows->start, u.rows->count};
    if (u.optimizer) j["optimizer"] = OptimizerToJson(*u.optimizer);
    if (u.step) j["step"] = *u.step;
    if (u.indices) {
      j["sparse"] = true;
      j["index_count"] = u.indices->size();
      out.data.emplace_back(reinterpret_cast<const char*>(u.indices->data()),
                            u.indices->size() * sizeof(int64_t));
    }
    out.data.push_back(u.data);
    updates.push_back(std::move(j));
  }
  out.header = Header(LogRecordKind::kPush,
                      {{"revision", record.revision}, {"updates", std::move(updates)}});
  return out;
}

EncodedRecord EncodeTraining(const TrainingRecord& record) {
  json body = {{"revision", record.revision},
               {"names", record.names},
               {"replicas", record.config.replicas_to_aggregate}};
  if (record.config.optimizer) body["optimizer"] = OptimizerToJson(*record.config.optimizer);
  return {Header(LogRecordKind::kTraining, body), {}};
}

EncodedRecord EncodeRevisionCeiling(uint64_t ceiling) {
  return {Header(LogRecordKind::kRevisionCeiling, {{"ceiling", ceiling}}), {}};
}

EncodedRecord EncodeRestore(absl::string_view checkpoint, uint64_t revision) {
  return {Header(LogRecordKind::kRestore,
                 {{"checkpoint", std::string(checkpoint)}, {"revision", revision}}),
          {}};
}

absl::StatusOr<DecodedRecord> DecodeRecord(const JournalRecord& record) {
  const std::string& header = record.header;
  if (header.size() < 2 || static_cast<uint8_t>(header[0]) != kLogFormatVersion) {
    return absl::DataLossError(absl::StrCat(
        "a log record of format ",
        header.empty() ? -1 : static_cast<int>(static_cast<uint8_t>(header[0])),
        "; this varscope reads format ", kLogFormatVersion,
        " (a log written by another version: restore its checkpoint instead)"));
  }
  DecodedRecord out;
  out.kind = static_cast<LogRecordKind>(static_cast<uint8_t>(header[1]));
  const json body = json::parse(header.begin() + 2, header.end(), nullptr, false);
  if (!body.is_object()) {
    return absl::DataLossError("a log record's body is not a JSON object");
  }
  DataReader data(record.data);
  try {
    VARSCOPE_RETURN_IF_ERROR(DecodeBody(out.kind, body, data, &out));
  } catch (const json::exception& e) {
    return absl::DataLossError(absl::StrCat("malformed log record: ", e.what()));
  }
  return out;
}

}  // namespace varscope::core
