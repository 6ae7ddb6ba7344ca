#include "server/core/storage/safetensors.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace varscope::core {
namespace {

using nlohmann::json;

constexpr int64_t kMaxHeaderBytes = int64_t{100} << 20;

const std::pair<DType, const char*> kDTypes[] = {
    {DType::kFloat, "F32"},  {DType::kDouble, "F64"}, {DType::kHalf, "F16"},
    {DType::kBFloat16, "BF16"}, {DType::kInt64, "I64"}, {DType::kInt32, "I32"},
    {DType::kInt16, "I16"},  {DType::kInt8, "I8"},    {DType::kUInt8, "U8"},
    {DType::kBool, "BOOL"},
};

}  // namespace

absl::string_view SafetensorsDType(DType dtype) {
  for (const auto& [d, name] : kDTypes) {
    if (d == dtype) return name;
  }
  return "";
}

std::string EncodeSafetensorsHeader(
    std::vector<SafetensorsTensor>* tensors,
    const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  int64_t offset = 0;
  for (SafetensorsTensor& t : *tensors) {
    const int64_t size = NumBytes(t.dtype, t.shape).value_or(0);
    header[t.name] = {{"dtype", std::string(SafetensorsDType(t.dtype))},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + size}}};
    t.begin = offset;
    t.end = offset + size;
    offset += size;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  const uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  for (SafetensorsTensor& t : *tensors) {
    t.begin += 8 + static_cast<int64_t>(n);
    t.end += 8 + static_cast<int64_t>(n);
  }
  return out + text;
}

absl::StatusOr<std::vector<SafetensorsTensor>> ReadSafetensorsHeader(
    Env* env, const std::string& path,
    std::map<std::string, std::string>* metadata) {
  absl::StatusOr<int64_t> file_size = env->FileSize(path);
  if (!file_size.ok()) return file_size.status();
  auto damaged = [&](int64_t offset, absl::string_view why) {
    return absl::DataLossError(absl::StrCat(path, " is damaged at offset ",
                                            offset, ": ", why));
  };
  if (*file_size < 8) return damaged(0, "shorter than the 8-byte header length");
  unsigned char prefix[8];
  absl::Status s = env->ReadAt(path, 0, 8, prefix);
  if (!s.ok()) return s;
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | prefix[i];
  if (n > static_cast<uint64_t>(std::min(kMaxHeaderBytes, *file_size - 8))) {
    return damaged(0, absl::StrCat("header length ", n,
                                   " does not fit the file of ", *file_size,
                                   " bytes"));
  }
  std::string text(n, '\0');
  s = env->ReadAt(path, 8, static_cast<int64_t>(n), text.data());
  if (!s.ok()) return s;
  json header = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) {
    return damaged(8, "the header is not a JSON object");
  }
  const int64_t data_start = 8 + static_cast<int64_t>(n);
  const int64_t data_size = *file_size - data_start;
  std::vector<SafetensorsTensor> tensors;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) return damaged(8, "__metadata__ is not an object");
      if (metadata != nullptr) {
        for (auto m = it->begin(); m != it->end(); ++m) {
          if (!m->is_string()) return damaged(8, "__metadata__ values must be strings");
          (*metadata)[m.key()] = m->get<std::string>();
        }
      }
      continue;
    }
    const json& v = *it;
    const std::string where = absl::StrCat("tensor '", it.key(), "'");
    if (!v.is_object() || !v.contains("dtype") || !v["dtype"].is_string() ||
        !v.contains("shape") || !v["shape"].is_array() ||
        !v.contains("data_offsets") || !v["data_offsets"].is_array() ||
        v["data_offsets"].size() != 2) {
      return damaged(8, absl::StrCat(where, " lacks dtype, shape or data_offsets"));
    }
    SafetensorsTensor t;
    t.name = it.key();
    const std::string dtype = v["dtype"].get<std::string>();
    for (const auto& [d, name] : kDTypes) {
      if (dtype == name) t.dtype = d;
    }
    if (t.dtype == DType::kInvalid) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": ", where, " has dtype ", dtype,
          ", which varscope does not store (F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)"));
    }
    for (const json& d : v["shape"]) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0) {
        return damaged(8, absl::StrCat(where, " has a bad shape"));
      }
      t.shape.push_back(d.get<int64_t>());
    }
    if (t.shape.size() > static_cast<size_t>(kMaxRank)) {
      return damaged(8, absl::StrCat(where, " has rank above ", kMaxRank));
    }
    const json& off = v["data_offsets"];
    if (!off[0].is_number_integer() || !off[1].is_number_integer()) {
      return damaged(8, absl::StrCat(where, " has non-integer data_offsets"));
    }
    const int64_t begin = off[0].get<int64_t>(), end = off[1].get<int64_t>();
    absl::StatusOr<int64_t> bytes = NumBytes(t.dtype, t.shape);
    if (!bytes.ok() || begin < 0 || end < begin || end > data_size ||
        end - begin != *bytes) {
      return damaged(data_start + std::max<int64_t>(begin, 0),
                     absl::StrCat(where, " has data_offsets [", begin, ", ",
                                  end, ") that do not match its ",
                                  DTypeName(t.dtype), " ",
                                  ShapeToString(t.shape), " within ",
                                  data_size, " data bytes"));
    }
    t.begin = data_start + begin;
    t.end = data_start + end;
    tensors.push_back(std::move(t));
  }
  // The tensors must tile the data region: no gaps, no overlaps.
  std::sort(tensors.begin(), tensors.end(),
            [](const SafetensorsTensor& a, const SafetensorsTensor& b) {
              return a.begin < b.begin;
            });
  int64_t expected = data_start;
  for (const SafetensorsTensor& t : tensors) {
    if (t.begin != expected) {
      return damaged(expected, absl::StrCat("tensor '", t.name,
                                            "' does not start where the "
                                            "previous one ends"));
    }
    expected = t.end;
  }
  if (expected != *file_size) {
    return damaged(expected, absl::StrCat("the file has ", *file_size - expected,
                                          " bytes after the last tensor"));
  }
  return tensors;
}

}  // namespace varscope::core
