// The real varscoped binary for end-to-end tests: started on 127.0.0.1 with
// a free port, its log in a temporary directory, killed and cleaned up at
// the end of the test.
#ifndef VARSCOPE_TESTS_DAEMON_H_
#define VARSCOPE_TESTS_DAEMON_H_

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/time/clock.h"

namespace varscope::testing {

class Daemon {
 public:
  // Starts varscoped on a free port with `args` added; its output goes to
  // a log file in its own temporary directory.
  explicit Daemon(std::vector<std::string> args = {}) {
    char dir_template[] = "/tmp/varscope_e2e_XXXXXX";
    dir_ = mkdtemp(dir_template);
    const std::string port_file = dir_ + "/port";
    // Tests run the daemon with Abseil's deadlock detector aborting.
    args.insert(args.begin(), {VARSCOPED_PATH, "--listen=127.0.0.1:0",
                               "--port_file=" + port_file, "--log_level=debug",
                               "--deadlock_detection=abort"});
    pid_ = fork();
    if (pid_ == 0) {
      const std::string log = dir_ + "/daemon.log";  // spdlog: stdout
      const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(VARSCOPED_PATH, argv.data());
      _exit(127);
    }
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (port_ == 0 && absl::Now() < deadline) {
      std::ifstream in(port_file);
      in >> port_;
      if (port_ != 0) break;
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {  // exited early
        pid_ = -1;
        exit_status_ = status;
        break;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
  }
  ~Daemon() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    std::system(("rm -rf " + dir_).c_str());
  }
  // kill -9: no shutdown, no final checkpoint.
  void Crash() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  // Sends SIGTERM and returns the exit status.
  int Terminate() {
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }
  void Signal(int signal_number) { kill(pid_, signal_number); }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  // For a daemon that exited before serving: its wait status.
  int exit_status() const { return exit_status_; }
  pid_t pid() const { return pid_; }
  const std::string& dir() const { return dir_; }
  std::string log() const {
    std::ifstream in(dir_ + "/daemon.log");
    return std::string((std::istreambuf_iterator<char>(in)), {});
  }

 private:
  std::string dir_;
  pid_t pid_ = -1;
  int port_ = 0;
  int exit_status_ = -1;
};

}  // namespace varscope::testing

#endif  // VARSCOPE_TESTS_DAEMON_H_
