#include "cli/commands.h"

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "cli/npy.h"
#include "cli/progress.h"
#include "cli/tensor_values.h"
#include "nlohmann/json.hpp"

namespace varscope::cli {
namespace {

using json = nlohmann::json;

// Pulls larger than this go in row chunks, so a terminal can show a bar.
constexpr int64_t kChunkBytes = int64_t{8} << 20;

std::string Shape(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

std::string Bytes(int64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  if (bytes < (1 << 20)) return absl::StrFormat("%.1f KiB", bytes / 1024.0);
  if (bytes < (int64_t{1} << 30)) return absl::StrFormat("%.1f MiB", bytes / 1048576.0);
  return absl::StrFormat("%.2f GiB", bytes / 1073741824.0);
}

json ToJson(const VariableInfo& v) {
  json j = {{"name", v.name},
            {"tensor_name", v.tensor_name},
            {"dtype", std::string(DataTypeName(v.dtype))},
            {"shape", v.shape},
            {"bytes", v.num_bytes},
            {"version", v.version},
            {"trainable", v.trainable},
            {"collections", v.collections}};
  if (v.partitioned) {
    j["partitioned"] = true;
    j["partitions"] = v.partitions;
    json parts = json::array();
    for (const VariableInfo& p : v.parts) parts.push_back(p.name);
    j["parts"] = parts;
  }
  if (v.slice) {
    j["slice"] = {{"full_name", v.slice->full_name},
                  {"full_shape", v.slice->full_shape},
                  {"offset", v.slice->offset},
                  {"index", v.slice->index}};
  }
  return j;
}

json ToJson(const CheckpointInfo& c) {
  return {{"name", c.name},         {"path", c.path},       {"sequence", c.sequence},
          {"bytes", c.bytes},       {"variables", c.variables}, {"created", c.created}};
}

std::string Columns(const VariableInfo& v) {
  return absl::StrCat(DataTypeName(v.dtype), "  ", Shape(v.shape), "  ", Bytes(v.num_bytes),
                      "  v", v.version, v.trainable ? "  trainable" : "",
                      v.partitioned ? absl::StrCat("  partitioned (", v.parts.size(), " parts)")
                                    : "");
}

// Every variable under `prefix`, partitioned ones too, in name order.
absl::StatusOr<std::vector<VariableInfo>> ListAll(const Context& c, const std::string& prefix) {
  std::vector<VariableInfo> all;
  ListVariablesArgs args;
  args.prefix = prefix;
  args.include_partitioned = true;
  do {
    absl::StatusOr<VariablePage> page = c.connection->ListVariables(args, c.call);
    if (!page.ok()) return page.status();
    for (VariableInfo& v : page->variables) all.push_back(std::move(v));
    args.page_token = page->next_page_token;
  } while (!args.page_token.empty());
  std::sort(all.begin(), all.end(),
            [](const VariableInfo& a, const VariableInfo& b) { return a.name < b.name; });
  return all;
}

// The namespace as a tree of scopes; a name can be both a variable and a
// scope (a partitioned variable "emb" over "emb/part_0", ...).
struct Node {
  const VariableInfo* variable = nullptr;
  std::map<std::string, Node> children;
};

void PrintTree(std::ostream& out, const Node& node, int depth) {
  for (const auto& [name, child] : node.children) {
    out << std::string(2 * depth, ' ') << name;
    if (child.variable != nullptr) {
      out << "  " << Columns(*child.variable) << "\n";
    } else {
      out << "/\n";
    }
    PrintTree(out, child, depth + 1);
  }
}

// The value, in row chunks with a bar when it is large and has rows;
// every chunk must come from the same version (else start over), so the
// result is one consistent snapshot like a single pull.
absl::StatusOr<uint64_t> PullValue(const Context& c, const VariableInfo& v, std::string* data) {
  data->assign(static_cast<size_t>(v.num_bytes), '\0');
  auto* bytes = reinterpret_cast<uint8_t*>(data->data());
  Progress bar(absl::StrCat("pull ", v.name), v.num_bytes);
  const int64_t rows = v.shape.empty() ? 0 : v.shape[0];
  const int64_t row_bytes = rows > 0 ? v.num_bytes / rows : 0;
  if (v.num_bytes > kChunkBytes && row_bytes > 0 && row_bytes <= kChunkBytes) {
    const int64_t per_chunk = kChunkBytes / row_bytes;
    for (int attempt = 0; attempt < 3; ++attempt) {
      std::optional<uint64_t> version;
      bool torn = false;
      for (int64_t start = 0; start < rows && !torn; start += per_chunk) {
        PullArgs args;
        args.name = v.name;
        args.rows = RowRange{start, std::min(per_chunk, rows - start)};
        absl::StatusOr<PullResult> got = c.connection->Pull(
            args, v.dtype, absl::MakeSpan(bytes + start * row_bytes, args.rows->count * row_bytes),
            c.call);
        if (!got.ok()) return got.status();
        if (version && *version != got->version) torn = true;  // a write landed in between
        version = got->version;
        bar.Update((start + args.rows->count) * row_bytes);
      }
      if (!torn) return *version;
    }
    // Written to all the time: one pull, without a bar.
  }
  PullArgs args;
  args.name = v.name;
  absl::StatusOr<PullResult> got =
      c.connection->Pull(args, v.dtype, absl::MakeSpan(bytes, data->size()), c.call);
  if (!got.ok()) return got.status();
  return got->version;
}

absl::Status LocalFile(absl::Status status) {
  status.SetPayload(kLocalFilePayload, absl::Cord("1"));
  return status;
}

}  // namespace

bool IsLocalFileError(const absl::Status& status) {
  return status.GetPayload(kLocalFilePayload).has_value();
}

static void PrintJson(const Context& c, const std::vector<VariableInfo>& all) {
  json list = json::array();
  for (const VariableInfo& v : all) list.push_back(ToJson(v));
  *c.out << list.dump(2) << "\n";
}

absl::Status Tree(const Context& c, const std::string& prefix) {
  absl::StatusOr<std::vector<VariableInfo>> all = ListAll(c, prefix);
  if (!all.ok()) return all.status();
  if (c.json) {
    PrintJson(c, *all);  // the same list as ls: a tree is for people
    return absl::OkStatus();
  }
  Node root;
  for (const VariableInfo& v : *all) {
    Node* node = &root;
    for (absl::string_view part : absl::StrSplit(v.name, '/')) {
      node = &node->children[std::string(part)];
    }
    node->variable = &v;
  }
  PrintTree(*c.out, root, 0);
  return absl::OkStatus();
}

absl::Status Ls(const Context& c, const std::string& prefix) {
  absl::StatusOr<std::vector<VariableInfo>> all = ListAll(c, prefix);
  if (!all.ok()) return all.status();
  if (c.json) {
    PrintJson(c, *all);
    return absl::OkStatus();
  }
  for (const VariableInfo& v : *all) *c.out << v.name << "  " << Columns(v) << "\n";
  return absl::OkStatus();
}

absl::Status Describe(const Context& c, const std::string& name) {
  absl::StatusOr<VariableInfo> v = c.connection->DescribeVariable(name, c.call);
  if (!v.ok()) return v.status();
  std::optional<TrainingState> training;
  if (!v->partitioned) {
    absl::StatusOr<TrainingState> t = c.connection->DescribeTraining(v->name, c.call);
    if (!t.ok()) return t.status();
    training = *t;
  }
  if (c.json) {
    json j = ToJson(*v);
    if (training) {
      j["training"] = {{"optimizer", training->optimizer},
                       {"slots", training->slots},
                       {"optimizer_steps", training->optimizer_steps},
                       {"replicas_to_aggregate", training->replicas_to_aggregate},
                       {"sync_step", training->sync_step},
                       {"accumulated", training->accumulated},
                       {"stale_dropped", training->stale_dropped}};
    }
    *c.out << j.dump(2) << "\n";
    return absl::OkStatus();
  }
  std::ostream& out = *c.out;
  out << "name:        " << v->tensor_name << "\n"
      << "dtype:       " << DataTypeName(v->dtype) << "\n"
      << "shape:       " << Shape(v->shape) << "\n"
      << "bytes:       " << v->num_bytes << " (" << Bytes(v->num_bytes) << ")\n"
      << "version:     " << v->version << "\n"
      << "trainable:   " << (v->trainable ? "yes" : "no") << "\n"
      << "collections: " << absl::StrJoin(v->collections, ", ") << "\n";
  if (v->partitioned) {
    out << "partitions:  " << Shape(v->partitions) << "\n";
    for (const VariableInfo& p : v->parts) {
      out << "  " << p.name << "  " << Shape(p.shape) << "\n";
    }
  }
  if (v->slice) {
    out << "part of:     " << v->slice->full_name << " " << Shape(v->slice->full_shape)
        << " at " << Shape(v->slice->offset) << "\n";
  }
  if (training) {
    out << "optimizer:   " << (training->optimizer.empty() ? "none" : training->optimizer);
    if (!training->slots.empty()) out << " (slots " << absl::StrJoin(training->slots, ", ") << ")";
    out << "\n";
    if (training->replicas_to_aggregate > 0) {
      out << "sync:        " << training->replicas_to_aggregate << " replicas, step "
          << training->sync_step << ", " << training->accumulated << " accumulated, "
          << training->stale_dropped << " stale dropped\n";
    }
  }
  return absl::OkStatus();
}

absl::Status Pull(const Context& c, const std::string& name, const std::string& out_file,
                  int first) {
  absl::StatusOr<VariableInfo> v = c.connection->DescribeVariable(name, c.call);
  if (!v.ok()) return v.status();
  if (v->partitioned) {
    return absl::InvalidArgumentError(absl::StrCat(
        v->name, " is partitioned; pull its parts (", v->parts.empty() ? "" : v->parts[0].name,
        ", ...)"));
  }
  std::string data;
  absl::StatusOr<uint64_t> version = PullValue(c, *v, &data);
  if (!version.ok()) return version.status();
  if (!out_file.empty()) {
    absl::Status written =
        v->dtype == DataType::kBFloat16
            ? WriteNpy(out_file, DataType::kFloat, v->shape, BFloat16ToFloat32(data))
            : WriteNpy(out_file, v->dtype, v->shape, data);
    if (!written.ok()) return LocalFile(written);
  }
  const Summary s = Summarize(v->dtype, data, first);
  if (c.json) {
    json j = {{"name", v->name},         {"dtype", std::string(DataTypeName(v->dtype))},
              {"shape", v->shape},       {"version", *version},
              {"elements", s.elements},  {"min", s.min},
              {"max", s.max},            {"mean", s.mean},
              {"norm", s.norm},          {"non_finite", s.non_finite},
              {"first", s.first}};
    if (!out_file.empty()) j["out"] = out_file;
    *c.out << j.dump(2) << "\n";
    return absl::OkStatus();
  }
  std::ostream& out = *c.out;
  out << v->tensor_name << "  " << DataTypeName(v->dtype) << "  " << Shape(v->shape) << "  v"
      << *version << "\n";
  out << absl::StrFormat("min %.6g  max %.6g  mean %.6g  norm %.6g", s.min, s.max, s.mean,
                         s.norm);
  if (s.non_finite > 0) out << "  non-finite " << s.non_finite;
  out << "\nfirst: " << absl::StrJoin(s.first, " ", [](std::string* o, double d) {
    absl::StrAppend(o, absl::StrFormat("%.6g", d));
  }) << (s.elements > static_cast<int64_t>(s.first.size()) ? " ..." : "") << "\n";
  if (!out_file.empty()) {
    out << "wrote " << out_file
        << (v->dtype == DataType::kBFloat16 ? " (bfloat16 widened to float32)" : "") << "\n";
  }
  return absl::OkStatus();
}

absl::Status Push(const Context& c, const std::string& name, const std::string& from_file,
                  UpdateOp op) {
  absl::StatusOr<NpyArray> array = ReadNpy(from_file);
  if (!array.ok()) return LocalFile(array.status());
  absl::StatusOr<VariableInfo> v = c.connection->DescribeVariable(name, c.call);
  if (!v.ok()) return v.status();
  if (v->dtype == DataType::kBFloat16 && array->dtype == DataType::kFloat) {
    array->data = Float32ToBFloat16(array->data);  // NumPy has no bfloat16
    array->dtype = DataType::kBFloat16;
  }
  if (array->dtype != v->dtype) {
    return absl::InvalidArgumentError(absl::StrCat(
        from_file, " holds ", DataTypeName(array->dtype), " but ", v->name, " is ",
        DataTypeName(v->dtype), "; convert it first (a.astype(np.",
        // NumPy has no bfloat16: such variables take float32 files.
        v->dtype == DataType::kBFloat16 ? "float32" : DataTypeName(v->dtype), "))"));
  }
  if (array->shape != v->shape) {
    return absl::InvalidArgumentError(absl::StrCat(from_file, " has shape ",
                                                   Shape(array->shape), " but ", v->name,
                                                   " has shape ", Shape(v->shape)));
  }
  PushItem item;
  item.name = v->name;
  item.op = op;
  item.dtype = array->dtype;
  item.data = absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(array->data.data()),
                                        array->data.size());
  absl::StatusOr<std::vector<UpdateResult>> results;
  {
    Progress ticker(absl::StrCat("push ", v->name, " (", Bytes(v->num_bytes), ")"), 0);
    results = c.connection->Push({item}, c.call);
  }
  if (!results.ok()) return results.status();
  const UpdateResult& r = results->front();
  if (c.json) {
    *c.out << json{{"name", r.name}, {"version", r.version}, {"applied", r.applied}}.dump(2)
           << "\n";
  } else {
    *c.out << r.name << ": " << (r.applied ? "applied" : "not applied") << ", version "
           << r.version << "\n";
  }
  return absl::OkStatus();
}

// Save and Restore: one call that reports nothing until it ends (elapsed
// time on a terminal), then the checkpoint it wrote or read.
static absl::Status CheckpointCall(
    const Context& c, const std::string& label, const char* done,
    const std::function<absl::StatusOr<CheckpointInfo>()>& call) {
  absl::StatusOr<CheckpointInfo> info;
  {
    Progress ticker(label, 0);
    info = call();
  }
  if (!info.ok()) return info.status();
  if (c.json) {
    *c.out << ToJson(*info).dump(2) << "\n";
  } else {
    *c.out << done << " " << info->name << ": " << info->variables << " variables, "
           << Bytes(info->bytes) << "\n";
  }
  return absl::OkStatus();
}

absl::Status Save(const Context& c, const std::string& name) {
  return CheckpointCall(c, name.empty() ? "save" : absl::StrCat("save ", name), "saved",
                        [&] { return c.connection->Save(name, c.call); });
}

absl::Status Restore(const Context& c, const std::string& name) {
  return CheckpointCall(c, absl::StrCat("restore ", name), "restored",
                        [&] { return c.connection->Restore(name, c.call); });
}

absl::Status Checkpoints(const Context& c) {
  absl::StatusOr<std::vector<CheckpointInfo>> list = c.connection->ListCheckpoints(c.call);
  if (!list.ok()) return list.status();
  if (c.json) {
    json j = json::array();
    for (const CheckpointInfo& ckpt : *list) j.push_back(ToJson(ckpt));
    *c.out << j.dump(2) << "\n";
    return absl::OkStatus();
  }
  for (const CheckpointInfo& ckpt : *list) {
    *c.out << absl::StrFormat("%-24s %-26s %8d variables  %s\n", ckpt.name, ckpt.created,
                              ckpt.variables, Bytes(ckpt.bytes));
  }
  return absl::OkStatus();
}

absl::Status Import(const Context& c, const std::string& file, const std::string& scope,
                    std::optional<bool> trainable) {
  absl::StatusOr<std::vector<std::string>> names =
      c.connection->Import(file, scope, trainable, c.call);
  if (!names.ok()) return names.status();
  if (c.json) {
    *c.out << json{{"names", *names}}.dump(2) << "\n";
  } else {
    *c.out << "imported " << names->size() << " variables\n";
    for (const std::string& n : *names) *c.out << "  " << n << "\n";
  }
  return absl::OkStatus();
}

absl::Status Sessions(const Context& c) {
  absl::StatusOr<std::vector<SessionSummary>> sessions = c.connection->ListSessions(c.call);
  if (!sessions.ok()) return sessions.status();
  if (c.json) {
    json j = json::array();
    for (const SessionSummary& s : *sessions) {
      // A string, as the proto3 JSON mapping (and grpcurl) writes a uint64:
      // ids are random 63-bit numbers that jq's doubles would round.
      j.push_back({{"id", std::to_string(s.id)},
                   {"client_name", s.client_name},
                   {"owner", s.owner},
                   {"lease_seconds", absl::ToDoubleSeconds(s.lease)},
                   {"expires_in_seconds", absl::ToDoubleSeconds(s.expires_in)},
                   {"open_scopes", s.open_scopes},
                   {"shard", s.shard}});
    }
    *c.out << j.dump(2) << "\n";
    return absl::OkStatus();
  }
  *c.out << absl::StrFormat("%-20s %-5s %-24s %-16s %6s %10s\n", "ID", "SHARD", "CLIENT",
                            "OWNER", "SCOPES", "EXPIRES");
  for (const SessionSummary& s : *sessions) {
    *c.out << absl::StrFormat("%-20d %-5d %-24s %-16s %6d %9.1fs\n", s.id, s.shard,
                              s.client_name, s.owner.empty() ? "-" : s.owner, s.open_scopes,
                              absl::ToDoubleSeconds(s.expires_in));
  }
  return absl::OkStatus();
}

absl::Status Stats(const Context& c) {
  absl::StatusOr<ServerStats> s = c.connection->GetStats(c.call);
  if (!s.ok()) return s.status();
  if (c.json) {
    *c.out << json{{"version", s->version},
                   {"sessions", s->sessions},
                   {"variables", s->variables},
                   {"tensor_bytes", s->tensor_bytes},
                   {"max_memory_bytes", s->max_memory_bytes},
                   {"uptime_seconds", s->uptime_seconds},
                   {"auth_enabled", s->auth_enabled},
                   {"tls_enabled", s->tls_enabled},
                   {"calls_in_flight", s->calls_in_flight}}
                  .dump(2)
           << "\n";
    return absl::OkStatus();
  }
  *c.out << "version:         " << s->version << "\n"
         << "uptime:          " << absl::StrFormat("%.0f s", s->uptime_seconds) << "\n"
         << "sessions:        " << s->sessions << "\n"
         << "variables:       " << s->variables << "\n"
         << "stored:          " << Bytes(s->tensor_bytes)
         << (s->max_memory_bytes > 0 ? absl::StrCat(" of ", Bytes(s->max_memory_bytes)) : "")
         << "\n"
         << "calls in flight: " << s->calls_in_flight << "\n"
         << "tls:             " << (s->tls_enabled ? "on" : "off") << "\n"
         << "tokens:          " << (s->auth_enabled ? "on" : "off") << "\n";
  return absl::OkStatus();
}

absl::Status Watch(const Context& c, const std::string& prefix, int64_t count, bool initial) {
  CallOptions forever;
  forever.timeout = absl::InfiniteDuration();
  std::unique_ptr<WatchStream> stream =
      c.connection->Watch(prefix, initial, /*buffer_events=*/0, forever);
  WatchEvent e;
  int64_t seen = 0;
  while ((count == 0 || seen < count) && stream->Next(&e)) {
    ++seen;
    const char* kind = e.kind == WatchEvent::Kind::kCreated   ? "CREATED"
                       : e.kind == WatchEvent::Kind::kUpdated ? "UPDATED"
                       : e.kind == WatchEvent::Kind::kDeleted ? "DELETED"
                       : e.kind == WatchEvent::Kind::kResync  ? "RESYNC"
                                                              : "EXISTING";
    if (c.json) {
      *c.out << json{{"kind", kind}, {"name", e.name}, {"version", e.version}}.dump() << "\n";
    } else {
      *c.out << kind << " " << e.name << " v" << e.version << "\n";
    }
    c.out->flush();  // a pipe sees each event as it happens
  }
  if (count > 0 && seen == count) {
    stream->Cancel();
    return absl::OkStatus();
  }
  return stream->status();
}

absl::Status Health(const Context& c) {
  absl::StatusOr<HealthStatus> health = c.connection->CheckHealth(c.call);
  if (!health.ok()) return health.status();
  const char* name = *health == HealthStatus::kServing      ? "SERVING"
                     : *health == HealthStatus::kNotServing ? "NOT_SERVING"
                     : *health == HealthStatus::kServiceUnknown ? "SERVICE_UNKNOWN"
                                                                : "UNKNOWN";
  if (c.json) {
    *c.out << json{{"status", name}}.dump() << "\n";
  } else {
    *c.out << name << "\n";
  }
  if (*health != HealthStatus::kServing) {
    return absl::FailedPreconditionError(absl::StrCat("the server is ", name));
  }
  return absl::OkStatus();
}

}  // namespace varscope::cli
