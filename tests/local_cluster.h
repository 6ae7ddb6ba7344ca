// N real varscoped shards of one cluster on 127.0.0.1, for end-to-end
// tests: free ports picked up front (every shard needs every address), a
// shared cluster token, optionally a data directory per shard, and kill -9
// and restart of one shard on its port and data directory.
#ifndef VARSCOPE_TESTS_LOCAL_CLUSTER_H_
#define VARSCOPE_TESTS_LOCAL_CLUSTER_H_

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/daemon.h"

namespace varscope::testing {

// A port nobody listens on right now (bound to 127.0.0.1 and released).
inline int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t size = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size);
  const int port = ntohs(address.sin_port);
  close(fd);
  return port;
}

class LocalCluster {
 public:
  // `data`: each shard gets a data directory (kept across Restart).
  explicit LocalCluster(int shards, std::vector<std::string> flags = {}, bool data = false)
      : flags_(std::move(flags)) {
    char dir[] = "/tmp/varscope_cluster_XXXXXX";
    dir_ = mkdtemp(dir);
    std::ofstream(dir_ + "/token") << "cluster-token-0123456789abcdef\n";
    // A free port can be taken by another test between FreePort and the
    // shard's bind (varscoped refuses a port in use): then all shards
    // start again on new ports.
    for (int attempt = 0; attempt < 5 && !ready(); ++attempt) {
      shards_.clear();
      ports_.clear();
      data_dirs_.clear();
      std::vector<std::string> addresses;
      for (int i = 0; i < shards; ++i) {
        ports_.push_back(FreePort());
        addresses.push_back(absl::StrCat("127.0.0.1:", ports_.back()));
        if (data) {
          data_dirs_.push_back(absl::StrCat(dir_, "/attempt", attempt, "/shard", i));
        }
      }
      spec_ = absl::StrJoin(addresses, ",");
      for (int i = 0; i < shards; ++i) shards_.push_back(Start(i));
    }
  }
  ~LocalCluster() {
    shards_.clear();
    std::system(("rm -rf " + dir_).c_str());
  }

  int size() const { return static_cast<int>(ports_.size()); }
  std::string address(int shard) const { return absl::StrCat("127.0.0.1:", ports_[shard]); }
  const std::string& spec() const { return spec_; }
  // Shard i's data directory ("" without data directories).
  std::string data_dir(int i) const { return data_dirs_.empty() ? "" : data_dirs_[i]; }
  Daemon& shard(int i) { return *shards_[i]; }
  bool ready() const {
    if (shards_.empty()) return false;
    for (const auto& d : shards_) {
      if (d == nullptr || d->port() == 0) return false;
    }
    return true;
  }
  std::string logs() const {
    std::string out;
    for (size_t i = 0; i < shards_.size(); ++i) {
      if (shards_[i] != nullptr) absl::StrAppend(&out, "--- shard ", i, "\n", shards_[i]->log());
    }
    return out;
  }

  // kill -9 of one shard.
  void Kill(int i) { shards_[i]->Crash(); }
  // Starts shard `i` again on its port (and data directory).
  void Restart(int i) { shards_[i] = Start(i); }

 private:
  std::unique_ptr<Daemon> Start(int i) {
    std::vector<std::string> args = {absl::StrCat("--listen=127.0.0.1:", ports_[i]),
                                     "--cluster=" + spec_, absl::StrCat("--shard=", i),
                                     "--cluster_token_file=" + dir_ + "/token",
                                     "--log_level=info"};
    if (!data_dirs_.empty()) args.push_back("--data_dir=" + data_dirs_[i]);
    args.insert(args.end(), flags_.begin(), flags_.end());
    return std::make_unique<Daemon>(std::move(args));
  }

  std::vector<std::string> flags_;
  std::string dir_;
  std::vector<int> ports_;
  std::vector<std::string> data_dirs_;
  std::string spec_;
  std::vector<std::unique_ptr<Daemon>> shards_;
};

}  // namespace varscope::testing

#endif  // VARSCOPE_TESTS_LOCAL_CLUSTER_H_
