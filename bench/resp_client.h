// A minimal blocking Redis (RESP2) client for bench/: SET and GET of one
// binary value over one TCP connection, so Redis runs through the same
// harness, threads and destination buffers as varscope and the echo.
// GET reads the value straight into the caller's buffer (at most the first
// 64 KiB pass through a staging buffer), which is what a good client
// (hiredis with a reader callback) does.
#ifndef VARSCOPE_BENCH_RESP_CLIENT_H_
#define VARSCOPE_BENCH_RESP_CLIENT_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace varscope::bench {

class RespClient {
 public:
  // `address` is "127.0.0.1:PORT".
  explicit RespClient(const std::string& address) : staging_(64 << 10) {
    const size_t colon = address.rfind(':');
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(std::atoi(address.c_str() + colon + 1)));
    inet_pton(AF_INET, address.substr(0, colon).c_str(), &addr.sin_addr);
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      close(fd_);
      fd_ = -1;
    }
  }
  ~RespClient() {
    if (fd_ >= 0) close(fd_);
  }
  RespClient(const RespClient&) = delete;
  RespClient& operator=(const RespClient&) = delete;

  bool ok() const { return fd_ >= 0; }

  bool Set(const std::string& key, const uint8_t* data, size_t n) {
    const std::string head = "*3\r\n$3\r\nSET\r\n$" + std::to_string(key.size()) + "\r\n" +
                             key + "\r\n$" + std::to_string(n) + "\r\n";
    iovec parts[3] = {{const_cast<char*>(head.data()), head.size()},
                      {const_cast<uint8_t*>(data), n},
                      {const_cast<char*>("\r\n"), 2}};
    return WriteAll(parts, 3) && ReadLine() == "+OK";
  }

  // Reads the value of `key` into out[0, n); false unless it is n bytes.
  bool Get(const std::string& key, uint8_t* out, size_t n) {
    const std::string cmd = "*2\r\n$3\r\nGET\r\n$" + std::to_string(key.size()) + "\r\n" +
                            key + "\r\n";
    iovec part = {const_cast<char*>(cmd.data()), cmd.size()};
    if (!WriteAll(&part, 1)) return false;
    const std::string head = ReadLine();
    if (head != "$" + std::to_string(n)) return false;
    // The value, then its CRLF: the staged bytes first, then straight
    // into `out`.
    size_t got = std::min(n, end_ - begin_);
    std::memcpy(out, staging_.data() + begin_, got);
    begin_ += got;
    while (got < n) {
      const ssize_t r = read(fd_, out + got, n - got);
      if (r <= 0) return false;
      got += static_cast<size_t>(r);
    }
    return ReadLine().empty();
  }

 private:
  bool WriteAll(iovec* parts, int count) {
    while (count > 0) {
      const ssize_t w = writev(fd_, parts, count);
      if (w < 0) return false;
      size_t left = static_cast<size_t>(w);
      while (count > 0 && left >= parts->iov_len) {
        left -= parts->iov_len;
        ++parts;
        --count;
      }
      if (count > 0) {
        parts->iov_base = static_cast<char*>(parts->iov_base) + left;
        parts->iov_len -= left;
      }
    }
    return true;
  }

  // One CRLF-terminated line, without the CRLF ("-ERR..." on failure).
  std::string ReadLine() {
    std::string line;
    for (;;) {
      for (size_t i = begin_; i < end_; ++i) {
        if (staging_[i] == '\n') {
          line.append(staging_.data() + begin_, i - begin_);
          begin_ = i + 1;
          if (!line.empty() && line.back() == '\r') line.pop_back();
          return line;
        }
      }
      line.append(staging_.data() + begin_, end_ - begin_);
      begin_ = end_ = 0;
      const ssize_t r = read(fd_, staging_.data(), staging_.size());
      if (r <= 0) return "-ERR connection lost";
      end_ = static_cast<size_t>(r);
    }
  }

  int fd_ = -1;
  std::vector<char> staging_;
  size_t begin_ = 0, end_ = 0;
};

}  // namespace varscope::bench

#endif  // VARSCOPE_BENCH_RESP_CLIENT_H_
