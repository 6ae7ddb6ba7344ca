// The write-ahead log: group-committed appends from many threads, replay,
// torn tails, damage, rotation.
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/core/storage/journal.h"
#include "server/core/storage/recovery.h"
#include "tests/fault_env.h"
#include "tests/test_util.h"

namespace varscope::core {
namespace {

namespace fs = std::filesystem;

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "varscope-wal-XXXXXX").string();
    dir_ = mkdtemp(tmpl.data());
    env_ = NewPosixEnv();
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<JournalRecord> ReplayAll(int64_t from = 0, ReplayReport* report = nullptr) {
    std::vector<JournalRecord> out;
    auto r = Journal::Replay(env_.get(), dir_, from, false, [&](const JournalRecord& rec) {
      out.push_back(rec);
      return absl::OkStatus();
    });
    EXPECT_OK(r);
    if (report != nullptr && r.ok()) *report = *r;
    return out;
  }
  std::string Segment(int64_t n) {
    return dir_ + "/wal/" + absl::StrFormat("wal-%012d.log", n);
  }

  std::string dir_;
  std::unique_ptr<Env> env_;
};

TEST_F(JournalTest, ConcurrentAppendsAreAllReplayedInOrderPerThread) {
  {
    ASSERT_OK_AND_ASSIGN(auto journal, Journal::Open(env_.get(), dir_));
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 200; ++i) {
          ASSERT_OK(journal->Append(absl::StrCat(t, ":", i), std::string(i, 'x')));
        }
      });
    }
    for (auto& th : threads) th.join();
  }
  const auto records = ReplayAll();
  ASSERT_EQ(records.size(), 1600u);
  std::vector<int> next(8, 0);
  for (const JournalRecord& r : records) {
    const int t = r.header[0] - '0';
    EXPECT_EQ(r.header, absl::StrCat(t, ":", next[t]));
    EXPECT_EQ(r.data.size(), static_cast<size_t>(next[t]));
    ++next[t];
  }
}

TEST_F(JournalTest, TornTailIsCutButDamageElsewhereStopsReplay) {
  {
    ASSERT_OK_AND_ASSIGN(auto journal, Journal::Open(env_.get(), dir_));
    for (int i = 0; i < 3; ++i) ASSERT_OK(journal->Append(absl::StrCat("r", i), "data"));
  }
  const std::string path = Segment(1);
  const auto size = fs::file_size(path);
  // A crash in the middle of the last append: its bytes are cut off.
  fs::resize_file(path, size - 3);
  ReplayReport report;
  auto records = ReplayAll(0, &report);
  EXPECT_EQ(records.size(), 2u);
  EXPECT_TRUE(report.torn_tail);
  // A flipped bit in the first record (followed by more records) is damage.
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(14);
    f.put('Z');
  }
  auto damaged = Journal::Replay(env_.get(), dir_, 0, false,
                                 [](const JournalRecord&) { return absl::OkStatus(); });
  EXPECT_CODE(damaged, kDataLoss);
  EXPECT_NE(std::string(damaged.status().message()).find("offset 0"), std::string::npos)
      << damaged.status();
  ASSERT_OK_AND_ASSIGN(ReplayReport recovered,
                       Journal::Replay(env_.get(), dir_, 0, true,
                                       [](const JournalRecord&) { return absl::OkStatus(); }));
  EXPECT_EQ(recovered.records, 0);
  EXPECT_NE(recovered.stopped_at.find(path), std::string::npos);
}

TEST_F(JournalTest, RotationStartsANewSegmentAndReplayCanSkipOldOnes) {
  ASSERT_OK_AND_ASSIGN(auto journal, Journal::Open(env_.get(), dir_));
  EXPECT_EQ(journal->segment(), 1);
  ASSERT_OK(journal->Append("before", ""));
  ASSERT_OK(journal->PrepareRotation());
  ASSERT_OK_AND_ASSIGN(int64_t segment, journal->SwitchSegment());
  EXPECT_EQ(segment, 2);
  ASSERT_OK(journal->Append("after", ""));
  auto from_new = ReplayAll(segment);
  ASSERT_EQ(from_new.size(), 1u);
  EXPECT_EQ(from_new[0].header, "after");
  EXPECT_EQ(ReplayAll().size(), 2u);
  ASSERT_OK(journal->DropBefore(segment));
  EXPECT_FALSE(fs::exists(Segment(1)));
  // Reopening continues after the newest segment.
  journal.reset();
  ASSERT_OK_AND_ASSIGN(auto reopened, Journal::Open(env_.get(), dir_));
  EXPECT_EQ(reopened->segment(), 3);
}

}  // namespace
}  // namespace varscope::core

namespace varscope::core {
namespace {

TEST(JournalFaults, AFailedLogWriteRefusesTheChangeAndLeavesTheStoreAlone) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "varscope-walf-XXXXXX").string();
  const std::string dir = mkdtemp(tmpl.data());
  testing::FaultEnv env;
  ASSERT_OK_AND_ASSIGN(auto journal, Journal::Open(&env, dir));
  JournalLog log(journal.get());
  VariableStore store({});
  store.set_log(&log);
  GetVariableRequest ok;
  ok.name = "kept";
  ok.shape = ShapeSpec::Of({2});
  ASSERT_OK(store.GetVariable(ScopeContext{}, ok));
  env.FailSyncs(absl::ResourceExhaustedError("No space left on device"));
  GetVariableRequest lost = ok;
  lost.name = "refused";
  auto refused = store.GetVariable(ScopeContext{}, lost);
  EXPECT_CODE(refused, kResourceExhausted);
  EXPECT_NE(std::string(refused.status().message()).find("write-ahead log"),
            std::string::npos);
  EXPECT_EQ(store.num_variables(), 1u);
  EXPECT_CODE(store.Delete("kept"), kResourceExhausted);  // sticky error
  EXPECT_EQ(store.num_variables(), 1u);
  // What was acknowledged replays; the refused create does not appear.
  journal.reset();
  VariableStore replayed({});
  DataPlane data(&replayed);
  ASSERT_OK(Journal::Replay(&env, dir, 0, false, [&](const JournalRecord& r) {
    return ApplyLogRecord(r, &replayed, &data, nullptr);
  }).status());
  EXPECT_TRUE(replayed.Find("kept").ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace varscope::core
