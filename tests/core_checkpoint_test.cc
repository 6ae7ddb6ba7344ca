// Checkpoints: safetensors + metadata round trips, an independent
// safetensors parser, damaged files, failed saves, retention.
#include <atomic>
#include <cstdio>
#include <thread>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "absl/time/clock.h"
#include "server/core/storage/checkpoint.h"
#include "server/core/data/data_plane.h"
#include "server/core/storage/journal_log.h"
#include "server/core/storage/safetensors.h"
#include "absl/synchronization/notification.h"
#include "tests/fault_env.h"
#include "tests/test_util.h"

namespace varscope::core {
namespace {

namespace fs = std::filesystem;

std::string TempDir() {
  std::string tmpl = (fs::temp_directory_path() / "varscope-ckpt-XXXXXX").string();
  return mkdtemp(tmpl.data());
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = TempDir(); }
  void TearDown() override { fs::remove_all(dir_); }

  // A store with several dtypes, a partitioned variable, an optimizer with
  // slots, custom collections and non-trivial versions.
  void Populate(VariableStore& store) {
    DataPlane data(&store);
    ScopeContext root;
    GetVariableRequest w;
    w.name = "model/w";
    w.shape = ShapeSpec::Of({3, 4});
    w.collections = {"variables", "weights"};
    ASSERT_OK(store.GetVariable(root, w));
    GetVariableRequest ids;
    ids.name = "model/ids";
    ids.shape = ShapeSpec::Of({5});
    ids.dtype = DType::kInt64;
    ids.trainable = false;
    ASSERT_OK(store.GetVariable(root, ids));
    GetVariableRequest half;
    half.name = "model/h";
    half.shape = ShapeSpec::Of({2, 2});
    half.dtype = DType::kBFloat16;
    ASSERT_OK(store.GetVariable(root, half));
    GetVariableRequest emb;
    emb.name = "emb";
    emb.shape = ShapeSpec::Of({10, 2});
    PartitionerSpec fixed;
    fixed.kind = PartitionerSpec::Kind::kFixedSize;
    fixed.num_shards = 3;
    emb.partitioner = fixed;
    ASSERT_OK(store.GetVariable(root, emb));
    TrainingConfig adam;
    adam.optimizer = OptimizerSpec{OptimizerKind::kAdam, {{"learning_rate", 0.1}}};
    ASSERT_OK(data.SetTraining({"model/w"}, adam));
    std::vector<float> g(12, 0.5f);
    Update u;
    u.name = "model/w";
    u.op = UpdateOp::kApplyGradient;
    u.dtype = DType::kFloat;
    u.data = absl::string_view(reinterpret_cast<const char*>(g.data()), 48);
    ASSERT_OK(data.Push({u}));
    ASSERT_OK(data.Push({u}));
  }

  std::string dir_;
};

void ExpectSameStore(const StoreSnapshot& a, const StoreSnapshot& b) {
  ASSERT_EQ(a.variables.size(), b.variables.size());
  for (size_t i = 0; i < a.variables.size(); ++i) {
    const VariableState& x = a.variables[i];
    const VariableState& y = b.variables[i];
    EXPECT_EQ(x.info.name, y.info.name);
    EXPECT_EQ(x.info.dtype, y.info.dtype);
    EXPECT_EQ(x.info.shape, y.info.shape);
    EXPECT_EQ(x.info.version, y.info.version) << x.info.name;
    EXPECT_EQ(x.info.trainable, y.info.trainable);
    EXPECT_EQ(x.info.collections, y.info.collections);
    EXPECT_EQ(InitializerName(x.info.initializer), InitializerName(y.info.initializer));
    EXPECT_EQ(x.info.slice.has_value(), y.info.slice.has_value());
    EXPECT_EQ(x.optimizer.has_value(), y.optimizer.has_value());
    EXPECT_EQ(x.optimizer_steps, y.optimizer_steps);
    ASSERT_EQ(x.value->size(), y.value->size());
    EXPECT_EQ(std::memcmp(x.value->data(), y.value->data(), x.value->size()), 0)
        << x.info.name;
  }
  ASSERT_EQ(a.partitioned.size(), b.partitioned.size());
  for (size_t i = 0; i < a.partitioned.size(); ++i) {
    EXPECT_EQ(a.partitioned[i].name, b.partitioned[i].name);
    EXPECT_EQ(a.partitioned[i].part_names, b.partitioned[i].part_names);
  }
}

TEST_F(CheckpointTest, SaveAndRestoreRoundTripsEverything) {
  auto env = NewPosixEnv();
  VariableStore store({});
  Populate(store);
  Checkpointer ckpt(&store, env.get(), dir_, 5);
  ASSERT_OK_AND_ASSIGN(CheckpointInfo saved, ckpt.Save());
  EXPECT_EQ(saved.name, "ckpt-000001");
  EXPECT_EQ(saved.variables, 8);  // w, w/Adam, w/Adam_1, ids, h, 3 parts

  VariableStore fresh({});
  Checkpointer restorer(&fresh, env.get(), dir_, 5);
  ASSERT_OK_AND_ASSIGN(RestoreReport report, restorer.RestoreNewest(false));
  EXPECT_EQ(report.checkpoint.name, "ckpt-000001");
  EXPECT_EQ(report.variables, 8);
  ExpectSameStore(store.Snapshot(), fresh.Snapshot());
  // Listings, collections and the partitioned variable work as before.
  ListOptions weights;
  weights.collection = "weights";
  EXPECT_EQ(fresh.List(weights).variables.size(), 1u);
  ASSERT_OK_AND_ASSIGN(VariableInfo emb, fresh.Describe("emb"));
  EXPECT_TRUE(emb.partitioned);
  // Training resumes where it stopped: the next Adam step matches.
  DataPlane a(&store), b(&fresh);
  std::vector<float> g(12, -0.25f);
  Update u;
  u.name = "model/w";
  u.op = UpdateOp::kApplyGradient;
  u.dtype = DType::kFloat;
  u.data = absl::string_view(reinterpret_cast<const char*>(g.data()), 48);
  ASSERT_OK(a.Push({u}));
  ASSERT_OK(b.Push({u}));
  ExpectSameStore(store.Snapshot(), fresh.Snapshot());
}

// A reader written from the safetensors spec alone: 8-byte little-endian
// header size, JSON header, data offsets relative to the byte buffer.
TEST_F(CheckpointTest, SafetensorsFileLoadsWithAnIndependentParser) {
  auto env = NewPosixEnv();
  VariableStore store({});
  Populate(store);
  Checkpointer ckpt(&store, env.get(), dir_, 5);
  ASSERT_OK_AND_ASSIGN(CheckpointInfo saved, ckpt.Save("named.v1"));
  std::ifstream in(saved.path + "/model.safetensors", std::ios::binary);
  std::string file((std::istreambuf_iterator<char>(in)), {});
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(file[i]);
  EXPECT_EQ((8 + n) % 8, 0u);  // data starts 8-byte aligned
  const auto header = nlohmann::json::parse(file.substr(8, n));
  const std::string data = file.substr(8 + n);
  EXPECT_EQ(header["__metadata__"]["format"], "varscope");
  const StoreSnapshot snapshot = store.Snapshot();
  size_t tensors = 0;
  for (const VariableState& v : snapshot.variables) {
    ASSERT_TRUE(header.contains(v.info.name)) << v.info.name;
    const auto& t = header[v.info.name];
    EXPECT_EQ(t["shape"].get<Shape>(), v.info.shape);
    const size_t begin = t["data_offsets"][0], end = t["data_offsets"][1];
    ASSERT_EQ(end - begin, v.value->size());
    EXPECT_EQ(data.compare(begin, end - begin,
                           reinterpret_cast<const char*>(v.value->data()),
                           v.value->size()),
              0);
    ++tensors;
  }
  EXPECT_EQ(header.size(), tensors + 1);  // + __metadata__
  EXPECT_EQ(header["model/w"]["dtype"], "F32");
  EXPECT_EQ(header["model/ids"]["dtype"], "I64");
  EXPECT_EQ(header["model/h"]["dtype"], "BF16");
  EXPECT_TRUE(header.contains("model/w/Adam_1"));
  EXPECT_TRUE(header.contains("emb/part_2"));
}

TEST_F(CheckpointTest, DamagedNewestCheckpointRefusesOrRecovers) {
  auto env = NewPosixEnv();
  VariableStore store({});
  Populate(store);
  Checkpointer ckpt(&store, env.get(), dir_, 5);
  ASSERT_OK_AND_ASSIGN(CheckpointInfo first, ckpt.Save());
  const StoreSnapshot at_first = store.Snapshot();
  DataPlane data(&store);
  std::vector<int64_t> ones(5, 1);
  Update add;
  add.name = "model/ids";
  add.op = UpdateOp::kAdd;
  add.dtype = DType::kInt64;
  add.data = absl::string_view(reinterpret_cast<const char*>(ones.data()), 40);
  ASSERT_OK(data.Push({add}));
  ASSERT_OK_AND_ASSIGN(CheckpointInfo second, ckpt.Save());
  const std::string model = second.path + "/model.safetensors";

  // A flipped bit in a tensor: named by tensor and byte range.
  {
    std::fstream f(model, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(-3, std::ios::end);
    char c;
    f.get(c);
    f.seekp(-3, std::ios::end);
    f.put(static_cast<char>(c ^ 0x10));
  }
  VariableStore fresh({});
  Checkpointer restorer(&fresh, env.get(), dir_, 5);
  auto refused = restorer.RestoreNewest(false);
  EXPECT_CODE(refused, kDataLoss);
  const std::string message(refused.status().message());
  EXPECT_NE(message.find(model), std::string::npos) << message;
  EXPECT_NE(message.find("CRC-32"), std::string::npos) << message;
  EXPECT_NE(message.find("--recover"), std::string::npos) << message;
  EXPECT_EQ(fresh.num_variables(), 0u);  // nothing half-restored

  ASSERT_OK_AND_ASSIGN(RestoreReport recovered, restorer.RestoreNewest(true));
  EXPECT_EQ(recovered.checkpoint.name, first.name);
  ASSERT_EQ(recovered.skipped.size(), 1u);
  EXPECT_NE(recovered.skipped[0].find(second.path), std::string::npos);
  ExpectSameStore(at_first, fresh.Snapshot());

  // A truncated file: named with the offset where it ends.
  fs::resize_file(model, fs::file_size(model) - 100);
  auto truncated = restorer.RestoreNewest(false);
  EXPECT_CODE(truncated, kDataLoss);
  EXPECT_NE(std::string(truncated.status().message()).find("offset"),
            std::string::npos);
}

TEST_F(CheckpointTest, FailedSaveLeavesEarlierCheckpointsIntact) {
  testing::FaultEnv env;
  VariableStore store({});
  Populate(store);
  Checkpointer ckpt(&store, &env, dir_, 5);
  ASSERT_OK(ckpt.Save());
  env.FailWrites("model.safetensors",
                 absl::ResourceExhaustedError("No space left on device"));
  auto full = ckpt.Save();
  EXPECT_CODE(full, kResourceExhausted);
  EXPECT_NE(std::string(full.status().message()).find("intact"), std::string::npos);
  env.Heal();
  env.FailRenames(absl::InternalError("rename failed"));
  EXPECT_CODE(ckpt.Save(), kInternal);
  env.Heal();
  // Only the first checkpoint exists, no temporary directory is left, and
  // it restores.
  std::vector<std::string> entries;
  for (const auto& e : fs::directory_iterator(dir_ + "/checkpoints")) {
    entries.push_back(e.path().filename().string());
  }
  EXPECT_EQ(entries, std::vector<std::string>{"ckpt-000001"});
  VariableStore fresh({});
  Checkpointer restorer(&fresh, &env, dir_, 5);
  ASSERT_OK(restorer.RestoreNewest(false));
  ExpectSameStore(store.Snapshot(), fresh.Snapshot());
}

TEST_F(CheckpointTest, RetentionKeepsNewestAutomaticCheckpoints) {
  auto env = NewPosixEnv();
  VariableStore store({});
  Populate(store);
  Checkpointer ckpt(&store, env.get(), dir_, 3);
  ASSERT_OK(ckpt.Save("keep-me"));
  for (int i = 0; i < 5; ++i) ASSERT_OK(ckpt.Save());
  ASSERT_OK_AND_ASSIGN(std::vector<CheckpointInfo> all, ckpt.List());
  std::vector<std::string> names;
  for (const auto& c : all) names.push_back(c.name);
  EXPECT_EQ(names, (std::vector<std::string>{"keep-me", "ckpt-000004",
                                             "ckpt-000005", "ckpt-000006"}));
  EXPECT_CODE(ckpt.Save("keep-me"), kAlreadyExists);
  EXPECT_CODE(ckpt.Save("../escape"), kInvalidArgument);
  EXPECT_CODE(ckpt.Restore("missing"), kNotFound);
  // A leftover temporary directory (a crash mid-save) is cleaned up.
  fs::create_directories(dir_ + "/checkpoints/.tmp-ckpt-000007");
  VariableStore fresh({});
  Checkpointer restorer(&fresh, env.get(), dir_, 3);
  ASSERT_OK(restorer.RestoreNewest(false));
  EXPECT_FALSE(fs::exists(dir_ + "/checkpoints/.tmp-ckpt-000007"));
}

TEST_F(CheckpointTest, RejectsForeignOrMalformedSafetensors) {
  auto env = NewPosixEnv();
  const std::string path = dir_ + "/x.safetensors";
  auto write = [&](const std::string& header, const std::string& data) {
    std::string out(8, '\0');
    for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
    std::ofstream(path, std::ios::binary) << out << header << data;
  };
  write(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", std::string(8, '\0'));
  ASSERT_OK_AND_ASSIGN(auto ok, ReadSafetensorsHeader(env.get(), path));
  EXPECT_EQ(ok.size(), 1u);
  write(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", std::string(4, '\0'));
  EXPECT_CODE(ReadSafetensorsHeader(env.get(), path), kDataLoss);  // size mismatch
  write(R"({"a":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", std::string(2, '\0'));
  EXPECT_CODE(ReadSafetensorsHeader(env.get(), path), kInvalidArgument);
  write(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", std::string(8, '\0'));
  EXPECT_CODE(ReadSafetensorsHeader(env.get(), path), kDataLoss);  // a hole
  write("{not json", "");
  EXPECT_CODE(ReadSafetensorsHeader(env.get(), path), kDataLoss);
  std::ofstream(path, std::ios::binary) << "abc";
  EXPECT_CODE(ReadSafetensorsHeader(env.get(), path), kDataLoss);
}

}  // namespace
}  // namespace varscope::core

namespace varscope::core {
namespace {

// Creates `name` as float32 [n] filled with a pattern unique to `salt`.
void MakeFilled(VariableStore& store, DataPlane& data, const std::string& name,
                int64_t n, uint32_t salt) {
  GetVariableRequest req;
  req.name = name;
  req.shape = ShapeSpec::Of({n});
  req.initializer = InitializerSpec::Zeros();
  ASSERT_OK(store.GetVariable(ScopeContext{}, req));
  auto value = TensorBuffer::Allocate(n * 4);
  uint32_t* words = reinterpret_cast<uint32_t*>(value->data());
  for (int64_t i = 0; i < n; ++i) words[i] = static_cast<uint32_t>(i) * 2654435761u ^ salt;
  Update assign;
  assign.name = name;
  assign.op = UpdateOp::kAssign;
  assign.dtype = DType::kFloat;
  assign.owned_value = std::move(value);
  ASSERT_OK(data.Push({assign}));
}

TEST(CheckpointLarge, TwoGibibyteStoreRoundTripsByteIdentically) {
  const std::string dir = TempDir();
  auto env = NewPosixEnv();
  VariableStore store({});
  DataPlane data(&store);
  MakeFilled(store, data, "big/a", int64_t{1} << 28, 0x1234);  // 1 GiB
  MakeFilled(store, data, "big/b", int64_t{1} << 28, 0xabcd);  // 1 GiB
  Checkpointer ckpt(&store, env.get(), dir, 2);
  ASSERT_OK_AND_ASSIGN(CheckpointInfo saved, ckpt.Save());
  EXPECT_GT(saved.bytes, int64_t{2} << 30);
  {
    VariableStore fresh({});
    Checkpointer restorer(&fresh, env.get(), dir, 2);
    int progress_calls = 0;
    restorer.SetProgress([&](int64_t done, int64_t total, int64_t) {
      ++progress_calls;
      EXPECT_LE(done, total);
    }, absl::ZeroDuration());
    ASSERT_OK_AND_ASSIGN(RestoreReport report, restorer.RestoreNewest(false));
    EXPECT_EQ(report.tensor_bytes, int64_t{2} << 30);
    EXPECT_GE(progress_calls, 1);
    for (const char* name : {"big/a", "big/b"}) {
      auto a = store.ReadValue(name);
      auto b = fresh.ReadValue(name);
      ASSERT_OK(a);
      ASSERT_OK(b);
      ASSERT_EQ((*a)->size(), (*b)->size());
      EXPECT_EQ(std::memcmp((*a)->data(), (*b)->data(), (*a)->size()), 0) << name;
    }
  }
  fs::remove_all(dir);
}

// Pushes never wait for a checkpoint's files: while the model file is
// being written (the hook below), pushes from another thread complete.
TEST(Checkpoint, PushesGoOnWhileACheckpointIsWritten) {
  const std::string dir = TempDir();
  testing::FaultEnv env;
  VariableStore store({});
  DataPlane data(&store);
  MakeFilled(store, data, "table", int64_t{1} << 20, 7);
  MakeFilled(store, data, "hot", 1024, 1);
  Checkpointer ckpt(&store, &env, dir, 2);
  ASSERT_OK_AND_ASSIGN(auto before, store.ReadValue("hot"));
  const std::string hot_before(reinterpret_cast<const char*>(before->data()),
                               before->size());
  bool pushed_during_write = false;
  env.OnWrite("model.safetensors", [&] {
    absl::Notification done;
    std::thread pusher([&] {
      std::vector<float> ones(1024, 1.0f);
      Update add;
      add.name = "hot";
      add.op = UpdateOp::kAdd;
      add.dtype = DType::kFloat;
      add.data = absl::string_view(reinterpret_cast<const char*>(ones.data()), 4096);
      for (int i = 0; i < 100; ++i) EXPECT_OK(data.Push({add}));
      done.Notify();
    });
    // Only a hang (a lock held across the write) could take this long.
    pushed_during_write = done.WaitForNotificationWithTimeout(absl::Seconds(60));
    pusher.join();
  });
  ASSERT_OK_AND_ASSIGN(CheckpointInfo saved, ckpt.Save());
  EXPECT_TRUE(pushed_during_write);
  // The checkpoint is the cut before those pushes.
  VariableStore restored({});
  Checkpointer reader(&restored, &env, dir, 2);
  ASSERT_OK(reader.RestoreNewest(false));
  ASSERT_OK_AND_ASSIGN(auto value, restored.ReadValue("hot"));
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(value->data()), value->size()),
            hot_before);
  ASSERT_OK_AND_ASSIGN(auto now, store.ReadValue("hot"));
  EXPECT_NE(std::string(reinterpret_cast<const char*>(now->data()), now->size()),
            hot_before);
  fs::remove_all(dir);
}

// The abort of issue #10: multi-variable pushes and checkpoint snapshots
// took locks in two orders ("Potential Mutex deadlock" under Abseil's
// detector), and relaxed-mode snapshots could hold half a push. Now every
// checkpoint holds whole pushes, and the totals are exact.
TEST(Checkpoint, MultiVariablePushesAndCheckpointsOneLockOrderWholePushes) {
  const std::string dir = TempDir();
  auto env = NewPosixEnv();
  VariableStore store({});
  DataPlane data(&store);
  ASSERT_OK_AND_ASSIGN(auto journal, Journal::Open(env.get(), dir));
  JournalLog log(journal.get());
  store.set_log(&log);
  data.set_log(&log, /*log_pushes=*/false);  // relaxed
  Checkpointer ckpt(&store, env.get(), dir, 100);
  ckpt.set_log(&log);
  constexpr int kPairs = 4;
  for (int i = 0; i < kPairs; ++i) {
    // Small pairs change in place, large ones copy: both paths race.
    const int64_t n = i % 2 == 0 ? 4 : (int64_t{1} << 19);
    MakeFilled(store, data, "a" + std::to_string(i), n, 0);
    MakeFilled(store, data, "b" + std::to_string(i), n, 0);
  }
  std::atomic<bool> stop{false};
  std::vector<std::atomic<int64_t>> pushes(kPairs);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      const int i = t % kPairs;
      const int64_t n = i % 2 == 0 ? 4 : (int64_t{1} << 19);
      std::vector<float> one(n, 1.0f);
      Update a;
      a.name = "a" + std::to_string(i);
      a.op = UpdateOp::kAdd;
      a.dtype = DType::kFloat;
      a.data = absl::string_view(reinterpret_cast<const char*>(one.data()), n * 4);
      Update b = a;
      b.name = "b" + std::to_string(i);
      while (!stop) {
        ASSERT_OK(data.Push({a, b}));
        ++pushes[i];
      }
    });
  }
  std::vector<std::string> saved;
  for (int k = 0; k < 20; ++k) {
    ASSERT_OK_AND_ASSIGN(CheckpointInfo info, ckpt.Save());
    saved.push_back(info.name);
  }
  stop = true;
  for (auto& t : threads) t.join();
  for (int i = 0; i < kPairs; ++i) {
    const std::string a = "a" + std::to_string(i), b = "b" + std::to_string(i);
    ASSERT_OK_AND_ASSIGN(auto va, store.ReadValue(a));
    ASSERT_OK_AND_ASSIGN(auto vb, store.ReadValue(b));
    EXPECT_EQ(reinterpret_cast<const float*>(va->data())[0], pushes[i].load());
    EXPECT_EQ(reinterpret_cast<const float*>(vb->data())[0], pushes[i].load());
  }
  for (const std::string& name : saved) {
    VariableStore restored({});
    Checkpointer reader(&restored, env.get(), dir, 100);
    ASSERT_OK(reader.Restore(name));
    for (int i = 0; i < kPairs; ++i) {
      ASSERT_OK_AND_ASSIGN(auto va, restored.ReadValue("a" + std::to_string(i)));
      ASSERT_OK_AND_ASSIGN(auto vb, restored.ReadValue("b" + std::to_string(i)));
      EXPECT_EQ(reinterpret_cast<const float*>(va->data())[0],
                reinterpret_cast<const float*>(vb->data())[0])
          << name << " holds half a push of pair " << i;
    }
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace varscope::core

namespace varscope::core {
namespace {

// Writes a safetensors file the way other tools do (PyTorch names with dots,
// F32 and I64), by hand from the spec.
void WriteForeignFile(const std::string& path) {
  const std::string header =
      R"({"__metadata__":{"format":"pt"},)"
      R"("layer1.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
      R"("layer1.bias":{"dtype":"F32","shape":[3],"data_offsets":[24,36]},)"
      R"("step":{"dtype":"I64","shape":[],"data_offsets":[36,44]}})";
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  out += header;
  const float w[6] = {1, 2, 3, 4, 5, 6};
  const float b[3] = {-1, -2, -3};
  const int64_t step = 42;
  out.append(reinterpret_cast<const char*>(w), 24);
  out.append(reinterpret_cast<const char*>(b), 12);
  out.append(reinterpret_cast<const char*>(&step), 8);
  std::ofstream(path, std::ios::binary) << out;
}

TEST(Import, CreatesOneVariablePerTensorUnderAScope) {
  const std::string dir = TempDir();
  const std::string path = dir + "/model.safetensors";
  WriteForeignFile(path);
  auto env = NewPosixEnv();
  VariableStore store({});
  ASSERT_OK_AND_ASSIGN(ImportReport report,
                       ImportSafetensors(&store, env.get(), path, "pretrained", false));
  EXPECT_EQ(report.names, (std::vector<std::string>{
                              "pretrained/layer1.weight", "pretrained/layer1.bias",
                              "pretrained/step"}));
  EXPECT_EQ(report.tensor_bytes, 44);
  ASSERT_OK_AND_ASSIGN(VariableInfo w, store.Describe("pretrained/layer1.weight"));
  EXPECT_EQ(w.shape, (Shape{2, 3}));
  EXPECT_FALSE(w.trainable);
  EXPECT_EQ(w.version, 1u);
  auto value = store.ReadValue("pretrained/layer1.bias");
  ASSERT_OK(value);
  EXPECT_EQ(LoadElement(DType::kFloat, (*value)->data(), 2), -3);
  ASSERT_OK_AND_ASSIGN(VariableInfo step, store.Describe("pretrained/step"));
  EXPECT_EQ(step.dtype, DType::kInt64);
  EXPECT_TRUE(step.shape.empty());
  // All or nothing: one name taken, nothing created.
  VariableStore other({});
  GetVariableRequest taken;
  taken.name = "again/step";
  taken.shape = ShapeSpec::Of({});
  ASSERT_OK(other.GetVariable(ScopeContext{}, taken));
  EXPECT_CODE(ImportSafetensors(&other, env.get(), path, "again", std::nullopt),
              kAlreadyExists);
  EXPECT_EQ(other.num_variables(), 1u);
  EXPECT_CODE(ImportSafetensors(&other, env.get(), dir + "/missing", "x", std::nullopt),
              kNotFound);
  EXPECT_CODE(ImportSafetensors(&other, env.get(), path, "bad//scope", std::nullopt),
              kInvalidArgument);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace varscope::core
