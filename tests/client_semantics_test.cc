// The TensorFlow-semantics suite run through the client library against a
// real server on 127.0.0.1.
#include <variant>

#include "tests/client_driver.h"
#include "tests/semantics_suite.h"
#include "tests/test_server.h"
#include "varscope/client.h"

namespace varscope::testing {
namespace {

// One in-process server on 127.0.0.1.
struct SingleServer {
  std::unique_ptr<service::Server> server = StartTestServer();
  std::string Address(int) const { return server->address(); }
};
using ClientDriver = ClientDriverOf<SingleServer>;

INSTANTIATE_TYPED_TEST_SUITE_P(Client, SemanticsTest, ClientDriver);

}  // namespace
}  // namespace varscope::testing
