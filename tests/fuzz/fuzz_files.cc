// Fuzzes everything varscoped reads back from disk: safetensors files
// (checkpoint tensors and Import), write-ahead-log segments replayed onto a
// store, and the per-variable JSON state of a checkpoint. The first byte
// picks the parser; the rest is the file.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "server/core/storage/checkpoint.h"
#include "server/core/data/data_plane.h"
#include "server/core/storage/env.h"
#include "server/core/storage/journal.h"
#include "server/core/storage/recovery.h"
#include "server/core/storage/safetensors.h"
#include "server/core/storage/json_forms_internal.h"

using namespace varscope::core;  // NOLINT: a fuzz target's whole world

namespace {

struct Scratch {
  Scratch() {
    char dir_template[] = "/tmp/varscope_fuzz_files_XXXXXX";
    dir = mkdtemp(dir_template);
    std::system(("mkdir -p " + dir + "/wal").c_str());
    env = NewPosixEnv();
  }
  ~Scratch() { std::system(("rm -rf " + dir).c_str()); }
  void Write(const std::string& path, absl::string_view bytes) {
    std::ofstream(path, std::ios::binary | std::ios::trunc)
        .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  std::string dir;
  std::unique_ptr<Env> env;
};

Scratch& scratch() {
  static Scratch* s = new Scratch();
  return *s;
}

StoreOptions SmallStore() {
  StoreOptions options;
  options.max_variable_bytes = 1 << 20;
  options.max_memory_bytes = 8 << 20;
  return options;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const absl::string_view bytes(reinterpret_cast<const char*>(data) + 1,
                                size - 1);
  Scratch& s = scratch();
  switch (data[0] % 3) {
    case 0: {  // a safetensors file: header check, then a full import
      const std::string path = s.dir + "/model.safetensors";
      s.Write(path, bytes);
      std::map<std::string, std::string> metadata;
      (void)ReadSafetensorsHeader(s.env.get(), path, &metadata);
      VariableStore store(SmallStore());
      (void)ImportSafetensors(&store, s.env.get(), path, "imported", std::nullopt);
      break;
    }
    case 1: {  // a log segment, replayed with and without --recover
      const std::string path = s.dir + "/wal/wal-000000000001.log";
      s.Write(path, bytes);
      for (bool recover : {false, true}) {
        VariableStore store(SmallStore());
        DataPlane plane(&store);
        (void)Journal::Replay(s.env.get(), s.dir, 0, recover,
                              [&](const JournalRecord& record) {
                                return ApplyLogRecord(record, &store, &plane,
                                                      nullptr);
                              });
      }
      break;
    }
    case 2: {  // one variable's state in a checkpoint's metadata
      nlohmann::json j = nlohmann::json::parse(bytes.begin(), bytes.end(),
                                               nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded()) break;
      (void)VariableStateFromJson(j);
      (void)PartitionedStateFromJson(j);
      break;
    }
  }
  return 0;
}
