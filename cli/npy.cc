#include "cli/npy.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace varscope::cli {
namespace {

constexpr absl::string_view kMagic("\x93NUMPY", 6);

struct Descr {
  char type;  // 'f', 'i', 'u', 'b'
  int size;
  DataType dtype;
};
constexpr Descr kDescrs[] = {
    {'f', 4, DataType::kFloat}, {'f', 8, DataType::kDouble}, {'f', 2, DataType::kHalf},
    {'i', 4, DataType::kInt32}, {'i', 8, DataType::kInt64},  {'i', 2, DataType::kInt16},
    {'i', 1, DataType::kInt8},  {'u', 1, DataType::kUInt8},  {'b', 1, DataType::kBool},
};

// The value of `key` in the header's Python dict literal.
absl::StatusOr<std::string> DictValue(absl::string_view header, absl::string_view key,
                                      absl::string_view what) {
  const std::string quoted = absl::StrCat("'", key, "'");
  const size_t at = header.find(quoted);
  if (at == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": the .npy header has no ", quoted));
  }
  absl::string_view rest = header.substr(at + quoted.size());
  rest = absl::StripLeadingAsciiWhitespace(rest);
  if (!absl::ConsumePrefix(&rest, ":")) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": malformed .npy header"));
  }
  rest = absl::StripLeadingAsciiWhitespace(rest);
  size_t end = 0;
  if (!rest.empty() && (rest[0] == '\'' || rest[0] == '"')) {
    end = rest.find(rest[0], 1);
    if (end == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": malformed .npy header"));
    }
    return std::string(rest.substr(1, end - 1));
  }
  if (!rest.empty() && rest[0] == '(') {
    end = rest.find(')');
    if (end == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": malformed .npy shape"));
    }
    return std::string(rest.substr(0, end + 1));
  }
  end = rest.find_first_of(",}");
  return std::string(absl::StripAsciiWhitespace(rest.substr(0, end)));
}

void SwapBytes(std::string* data, int size) {
  for (size_t i = 0; i + size <= data->size(); i += size) {
    std::reverse(data->begin() + i, data->begin() + i + size);
  }
}

}  // namespace

std::string NpyDescr(DataType dtype) {
  for (const Descr& d : kDescrs) {
    if (d.dtype == dtype) {
      return absl::StrCat(d.size == 1 ? "|" : "<", std::string(1, d.type), d.size);
    }
  }
  return "";
}

absl::StatusOr<NpyArray> ParseNpy(absl::string_view file, absl::string_view what) {
  if (file.substr(0, kMagic.size()) != kMagic || file.size() < 10) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is not a .npy file"));
  }
  const int major = static_cast<uint8_t>(file[6]);
  size_t header_len = 0, offset = 0;
  if (major == 1) {
    header_len = static_cast<uint8_t>(file[8]) | (static_cast<uint8_t>(file[9]) << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (file.size() < 12) return absl::InvalidArgumentError(absl::StrCat(what, " is truncated"));
    for (int i = 3; i >= 0; --i) header_len = (header_len << 8) | static_cast<uint8_t>(file[8 + i]);
    offset = 12;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": .npy format version ", major, " is not supported"));
  }
  if (file.size() < offset + header_len) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is truncated"));
  }
  const absl::string_view header = file.substr(offset, header_len);
  absl::StatusOr<std::string> descr = DictValue(header, "descr", what);
  absl::StatusOr<std::string> fortran = DictValue(header, "fortran_order", what);
  absl::StatusOr<std::string> shape_text = DictValue(header, "shape", what);
  for (const auto* v : {&descr, &fortran, &shape_text}) {
    if (!v->ok()) return v->status();
  }
  if (*fortran != "False") {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " is in Fortran order; save it in C order (np.ascontiguousarray)"));
  }
  NpyArray out;
  bool big_endian = false;
  int size = 0;
  if (descr->size() >= 3) {
    const char order = (*descr)[0];
    big_endian = order == '>';
    const char type = (*descr)[1];
    if ((order == '<' || order == '>' || order == '|' || order == '=') &&
        absl::SimpleAtoi(absl::string_view(*descr).substr(2), &size)) {
      for (const Descr& d : kDescrs) {
        if (d.type == type && d.size == size) out.dtype = d.dtype;
      }
    }
  }
  if (out.dtype == DataType::kUnspecified) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": element type '", *descr,
        "' is not one varscope stores (float16/32/64, int8/16/32/64, uint8, bool)"));
  }
  absl::string_view dims = *shape_text;
  dims = absl::StripPrefix(absl::StripSuffix(dims, ")"), "(");
  int64_t elements = 1;
  for (absl::string_view d : absl::StrSplit(dims, ',', absl::SkipWhitespace())) {
    int64_t n = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(d), &n) || n < 0 ||
        (n > 0 && elements > (int64_t{1} << 50) / n)) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": bad shape ", *shape_text));
    }
    out.shape.push_back(n);
    elements *= n;
  }
  const absl::string_view data = file.substr(offset + header_len);
  if (static_cast<int64_t>(data.size()) != elements * size) {
    return absl::InvalidArgumentError(absl::StrCat(what, " holds ", data.size(),
                                                   " data bytes; shape ", *shape_text, " of '",
                                                   *descr, "' needs ", elements * size));
  }
  out.data = std::string(data);
  if (big_endian && size > 1) SwapBytes(&out.data, size);
  return out;
}

absl::StatusOr<NpyArray> ReadNpy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return ParseNpy(bytes.str(), path);
}

std::string EncodeNpy(DataType dtype, const std::vector<int64_t>& shape,
                      absl::string_view data) {
  std::string dims = absl::StrJoin(shape, ", ");
  if (shape.size() == 1) dims += ",";  // a Python 1-tuple
  std::string header = absl::StrCat("{'descr': '", NpyDescr(dtype),
                                    "', 'fortran_order': False, 'shape': (", dims, "), }");
  // Magic, version, length and header together are a multiple of 64 bytes,
  // the header ending in a newline.
  const size_t unpadded = kMagic.size() + 4 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::string out(kMagic);
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  out.append(data.data(), data.size());
  return out;
}

absl::Status WriteNpy(const std::string& path, DataType dtype,
                      const std::vector<int64_t>& shape, absl::string_view data) {
  if (NpyDescr(dtype).empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(DataTypeName(dtype), " has no NumPy type to write"));
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  const std::string bytes = EncodeNpy(dtype, shape, data);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return absl::UnavailableError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

}  // namespace varscope::cli
