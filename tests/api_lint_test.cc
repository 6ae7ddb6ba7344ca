// Lints the public API's .proto files through their descriptors (with
// source comments, from protoc --include_source_info): every enum's zero
// value is *_UNSPECIFIED, every message, field, enum, value, service and
// RPC is documented, and every List RPC pages.
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/util/json_util.h"

namespace varscope::testing {
namespace {

namespace gp = ::google::protobuf;

class ApiLintTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ifstream in(VARSCOPE_API_DESCRIPTORS, std::ios::binary);
    ASSERT_TRUE(in) << VARSCOPE_API_DESCRIPTORS;
    ASSERT_TRUE(set_.ParseFromIstream(&in));
    for (const gp::FileDescriptorProto& file : set_.file()) {
      const gp::FileDescriptor* built = pool_.BuildFile(file);
      ASSERT_NE(built, nullptr) << file.name();
      if (absl::StartsWith(file.name(), "varscope/")) files_.push_back(built);
    }
    ASSERT_GE(files_.size(), 4u);
  }

  template <typename D>
  static bool Documented(const D* d) {
    gp::SourceLocation where;
    if (!d->GetSourceLocation(&where)) return false;
    return !absl::StripAsciiWhitespace(where.leading_comments).empty() ||
           !absl::StripAsciiWhitespace(where.trailing_comments).empty();
  }

  // Every message (nested ones too) of the API.
  void ForEachMessage(const std::function<void(const gp::Descriptor*)>& visit) {
    std::function<void(const gp::Descriptor*)> walk = [&](const gp::Descriptor* m) {
      visit(m);
      for (int i = 0; i < m->nested_type_count(); ++i) walk(m->nested_type(i));
    };
    for (const gp::FileDescriptor* f : files_) {
      for (int i = 0; i < f->message_type_count(); ++i) walk(f->message_type(i));
    }
  }
  void ForEachEnum(const std::function<void(const gp::EnumDescriptor*)>& visit) {
    for (const gp::FileDescriptor* f : files_) {
      for (int i = 0; i < f->enum_type_count(); ++i) visit(f->enum_type(i));
    }
    ForEachMessage([&](const gp::Descriptor* m) {
      for (int i = 0; i < m->enum_type_count(); ++i) visit(m->enum_type(i));
    });
  }

  gp::FileDescriptorSet set_;
  gp::DescriptorPool pool_;
  std::vector<const gp::FileDescriptor*> files_;
};

TEST_F(ApiLintTest, EveryEnumStartsWithUnspecified) {
  int enums = 0;
  ForEachEnum([&](const gp::EnumDescriptor* e) {
    ++enums;
    const gp::EnumValueDescriptor* zero = e->FindValueByNumber(0);
    ASSERT_NE(zero, nullptr) << e->full_name() << " has no zero value";
    EXPECT_TRUE(absl::EndsWith(zero->name(), "_UNSPECIFIED"))
        << e->full_name() << "'s zero value is " << zero->name()
        << "; it must be *_UNSPECIFIED (meaning: not given)";
    EXPECT_EQ(e->value(0)->number(), 0) << e->full_name() << " must list 0 first";
  });
  EXPECT_GE(enums, 5);
}

TEST_F(ApiLintTest, EverythingIsDocumented) {
  int fields = 0;
  ForEachMessage([&](const gp::Descriptor* m) {
    // An empty response message needs no comment of its own.
    if (m->field_count() > 0) {
      EXPECT_TRUE(Documented(m)) << m->full_name();
    }
    for (int i = 0; i < m->field_count(); ++i) {
      ++fields;
      EXPECT_TRUE(Documented(m->field(i))) << m->field(i)->full_name() << " has no comment";
    }
  });
  EXPECT_GE(fields, 150);
  ForEachEnum([&](const gp::EnumDescriptor* e) {
    EXPECT_TRUE(Documented(e)) << e->full_name();
    for (int i = 0; i < e->value_count(); ++i) {
      EXPECT_TRUE(Documented(e->value(i))) << e->value(i)->full_name() << " has no comment";
    }
  });
  for (const gp::FileDescriptor* f : files_) {
    for (int s = 0; s < f->service_count(); ++s) {
      const gp::ServiceDescriptor* service = f->service(s);
      EXPECT_TRUE(Documented(service)) << service->full_name();
      for (int i = 0; i < service->method_count(); ++i) {
        EXPECT_TRUE(Documented(service->method(i)))
            << service->method(i)->full_name() << " has no comment";
      }
    }
  }
}

TEST_F(ApiLintTest, EveryListRpcPages) {
  int lists = 0;
  for (const gp::FileDescriptor* f : files_) {
    for (int s = 0; s < f->service_count(); ++s) {
      for (int i = 0; i < f->service(s)->method_count(); ++i) {
        const gp::MethodDescriptor* method = f->service(s)->method(i);
        if (!absl::StartsWith(method->name(), "List")) continue;
        ++lists;
        const gp::FieldDescriptor* size = method->input_type()->FindFieldByName("page_size");
        const gp::FieldDescriptor* token = method->input_type()->FindFieldByName("page_token");
        const gp::FieldDescriptor* next =
            method->output_type()->FindFieldByName("next_page_token");
        ASSERT_NE(size, nullptr) << method->full_name() << " takes no page_size";
        ASSERT_NE(token, nullptr) << method->full_name() << " takes no page_token";
        ASSERT_NE(next, nullptr) << method->full_name() << " returns no next_page_token";
        EXPECT_EQ(size->type(), gp::FieldDescriptor::TYPE_INT32) << method->full_name();
        EXPECT_EQ(token->type(), gp::FieldDescriptor::TYPE_STRING) << method->full_name();
        EXPECT_EQ(next->type(), gp::FieldDescriptor::TYPE_STRING) << method->full_name();
      }
    }
  }
  EXPECT_EQ(lists, 4);  // ListVariables, ListScopes, ListCheckpoints, ListSessions
}

// Every `grpcurl -d '<json>' ... <service>/<Method>` command in the README
// carries a body that parses as that method's request (so the examples
// keep up with the protos). SESSION, SCOPE and ROOT stand for ids the
// reader copies from earlier replies.
TEST(ReadmeGrpcurl, EveryRequestBodyParsesAsItsRequestType) {
  std::ifstream in(std::string(VARSCOPE_SOURCE_DIR) + "/README.md");
  ASSERT_TRUE(in);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  text = absl::StrReplaceAll(text, {{"\\\n", " "}});  // continuation lines
  const std::regex command(
      R"(grpcurl [^\n]*-d '([^']*)'[^\n]*? ([a-z]\w*(?:\.\w+)+)/(\w+))");
  int checked = 0;
  for (std::sregex_iterator it(text.begin(), text.end(), command), end; it != end; ++it) {
    const std::string body = (*it)[1], service = (*it)[2], method = (*it)[3];
    const gp::MethodDescriptor* m =
        gp::DescriptorPool::generated_pool()->FindMethodByName(service + "." + method);
    ASSERT_NE(m, nullptr) << service << "/" << method << " is not an RPC";
    std::unique_ptr<gp::Message> request(
        gp::MessageFactory::generated_factory()->GetPrototype(m->input_type())->New());
    const std::string json = absl::StrReplaceAll(
        body, {{"\"SESSION\"", "\"1\""}, {"\"SCOPE\"", "\"2\""}, {"\"ROOT\"", "\"3\""}});
    EXPECT_TRUE(gp::util::JsonStringToMessage(json, request.get()).ok())
        << service << "/" << method << ": " << body;
    ++checked;
  }
  // None slipped past the pattern.
  size_t bodies = 0;
  for (size_t at = text.find("-d '"); at != std::string::npos; at = text.find("-d '", at + 1)) {
    ++bodies;
  }
  EXPECT_EQ(static_cast<size_t>(checked), bodies);
  EXPECT_GE(checked, 20);
}

}  // namespace
}  // namespace varscope::testing
