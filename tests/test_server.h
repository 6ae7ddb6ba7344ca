// An in-process varscope server on 127.0.0.1 port 0 for integration tests.
#ifndef VARSCOPE_TESTS_TEST_SERVER_H_
#define VARSCOPE_TESTS_TEST_SERVER_H_

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "server/service/server.h"

namespace varscope::testing {

inline std::unique_ptr<service::Server> StartTestServer(
    service::ServerOptions options = {}) {
  options.listen = "127.0.0.1:0";
  auto server = service::Server::Start(options);
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

}  // namespace varscope::testing

#endif  // VARSCOPE_TESTS_TEST_SERVER_H_
