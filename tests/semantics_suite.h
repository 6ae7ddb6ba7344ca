// The TensorFlow-semantics cases, written once against a Driver and run at
// two levels: directly on the core (core_tests) and through the client
// library against a real server on 127.0.0.1 (service_tests). Each Driver
// works like Python `with` blocks: Enter opens inside the innermost scope.
#ifndef VARSCOPE_TESTS_SEMANTICS_SUITE_H_
#define VARSCOPE_TESTS_SEMANTICS_SUITE_H_

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/test_util.h"

namespace varscope::testing {

enum class R { kInherit = 0, kReuse = 1, kAuto = 2 };

struct VarResult {
  std::string name;
  bool created = false;
  std::vector<int64_t> shape;
  int dtype = 0;
  bool trainable = true;
  std::vector<std::string> collections;
};

struct EnterOptions {
  R reuse = R::kInherit;
  bool auxiliary_name_scope = true;
  int dtype = 0;
  std::string default_name;  // TensorFlow ignores it beside a name or scope
};

// The session root as ListScopes shows it.
struct RootView {
  R reuse = R::kInherit;
  int dtype = 0;
};

// Interface each level implements. dtype numbers are varscope.v1.DataType.
class Driver {
 public:
  virtual ~Driver() = default;
  virtual absl::Status Enter(const std::string& name, EnterOptions options) = 0;
  absl::Status Enter(const std::string& name, R reuse = R::kInherit) {
    return Enter(name, EnterOptions{reuse, true, 0, ""});
  }
  virtual absl::Status EnterDefault(const std::string& default_name) = 0;
  virtual absl::Status EnterNameScope(const std::string& name) = 0;
  // Keeps the innermost variable scope for re-entry; returns a token.
  virtual int Capture() = 0;
  // tf.get_variable_scope() at the top level: the session root.
  virtual int CaptureRoot() = 0;
  virtual absl::Status Reenter(int token, EnterOptions options) = 0;
  absl::Status Reenter(int token, R reuse = R::kInherit) {
    return Reenter(token, EnterOptions{reuse, true, 0, ""});
  }
  // Another worker: a second session (the first stays alive); the scope
  // stack starts empty, captured tokens stay.
  virtual absl::Status SwitchSession() = 0;
  // scope.set_dtype on the innermost variable scope (the root at the top).
  virtual absl::Status SetDtype(int dtype) = 0;
  virtual absl::StatusOr<RootView> Root() = 0;
  // The machine-readable reason of a failed call ("" when none).
  virtual std::string Reason(const absl::Status& status) = 0;
  virtual absl::Status Exit() = 0;
  virtual absl::Status ReuseVariables() = 0;
  // shape nullopt = not given; {} = scalar.
  virtual absl::StatusOr<VarResult> Get(
      const std::string& name, std::optional<std::vector<int64_t>> shape,
      int dtype = 0) = 0;
  // tf.get_local_variable.
  virtual absl::StatusOr<VarResult> GetLocal(const std::string& name,
                                             std::vector<int64_t> shape) = 0;
  // graph.unique_name(name, mark_as_used = !preview), as a tensor name.
  virtual absl::StatusOr<std::string> OpName(const std::string& name,
                                             bool preview) = 0;
  absl::StatusOr<std::string> OpName(const std::string& name) {
    return OpName(name, false);
  }
  virtual absl::StatusOr<std::string> NewVariable(const std::string& name) = 0;
  // Name scope and variable-scope name of the innermost scope.
  virtual std::string NameScope() = 0;
  virtual std::string ScopeName() = 0;
};

template <typename DriverT>
class SemanticsTest : public ::testing::Test {
 protected:
  DriverT driver_;
  Driver& d() { return driver_; }
};

TYPED_TEST_SUITE_P(SemanticsTest);

// DESIGN §3.5 seed examples.
TYPED_TEST_P(SemanticsTest, SeedScopeName) {
  Driver& d = this->d();
  ASSERT_OK(d.Enter("scope1"));
  ASSERT_OK_AND_ASSIGN(VarResult v, d.Get("variable1", {{1}}));
  EXPECT_EQ(v.name, "scope1/variable1:0");
  EXPECT_TRUE(v.created);
}

TYPED_TEST_P(SemanticsTest, SeedNestedScopes) {
  Driver& d = this->d();
  ASSERT_OK(d.Enter("scope1"));
  ASSERT_OK(d.Enter("scope2"));
  ASSERT_OK_AND_ASSIGN(VarResult v, d.Get("variable1", {{1}}));
  EXPECT_EQ(v.name, "scope1/scope2/variable1:0");
}

TYPED_TEST_P(SemanticsTest, SeedSecondGetWithoutReuseFails) {
  Driver& d = this->d();
  ASSERT_OK(d.Enter("scope1"));
  ASSERT_OK(d.Get("variable1", {{1}}));
  auto again = d.Get("variable1", {{1}});
  EXPECT_CODE(again, kAlreadyExists);
  EXPECT_EQ(d.Reason(again.status()), "VARIABLE_EXISTS");
  EXPECT_NE(std::string(again.status().message()).find("scope1/variable1"),
            std::string::npos);
}

TYPED_TEST_P(SemanticsTest, SeedReuseVariablesReturnsSameVariable) {
  Driver& d = this->d();
  ASSERT_OK(d.Enter("scope1"));
  ASSERT_OK_AND_ASSIGN(VarResult first, d.Get("variable1", {{1}}));
  ASSERT_OK(d.ReuseVariables());
  ASSERT_OK_AND_ASSIGN(VarResult second, d.Get("variable1", {{1}}));
  EXPECT_EQ(second.name, first.name);
  EXPECT_FALSE(second.created);
}

TYPED_TEST_P(SemanticsTest, SeedNameScopeChangesOpNamesOnly) {
  Driver& d = this->d();
  ASSERT_OK(d.Enter("variable_scope1"));
  ASSERT_OK(d.EnterNameScope("name_scope1"));
  ASSERT_OK_AND_ASSIGN(VarResult v, d.Get("variable1", {{1}}));
  EXPECT_EQ(v.name, "variable_scope1/variable1:0");
  ASSERT_OK_AND_ASSIGN(std::string op, d.OpName("add"));
  EXPECT_EQ(op, "variable_scope1/name_scope1/add:0");
  ASSERT_OK_AND_ASSIGN(std::string op2, d.OpName("add"));
  EXPECT_EQ(op2, "variable_scope1/name_scope1/add_1:0");
}

// TF_SEMANTICS §9 trap 1: INHERIT at the root is create-only.
TYPED_TEST_P(SemanticsTest, RootInheritIsCreateOnly) {
  Driver& d = this->d();
  ASSERT_OK(d.Get("v", {{2}}));
  EXPECT_CODE(d.Get("v", {{2}}), kAlreadyExists);
  ASSERT_OK(d.Enter("fresh"));
  ASSERT_OK(d.Get("v", {{2}}));
  EXPECT_CODE(d.Get("v", {{2}}), kAlreadyExists);
}

// Trap 2: no switching reuse off in a child; AUTO_REUSE child of REUSE stays
// AUTO_REUSE.
TYPED_TEST_P(SemanticsTest, ReuseCannotBeSwitchedOffInChild) {
  Driver& d = this->d();
  ASSERT_OK(d.Enter("outer", R::kReuse));
  ASSERT_OK(d.Enter("inner"));  // asks for nothing: inherits REUSE
  auto missing = d.Get("w", {{1}});
  EXPECT_CODE(missing, kNotFound);
  EXPECT_EQ(d.Reason(missing.status()), "VARIABLE_NOT_FOUND");
}

TYPED_TEST_P(SemanticsTest, AutoReuseChildInsideReuseParentCreates) {
  Driver& d = this->d();
  ASSERT_OK(d.Enter("outer", R::kReuse));
  ASSERT_OK(d.Enter("inner", R::kAuto));
  ASSERT_OK_AND_ASSIGN(VarResult v, d.Get("w", {{1}}));
  EXPECT_TRUE(v.created);
  ASSERT_OK_AND_ASSIGN(VarResult again, d.Get("w", {{1}}));
  EXPECT_FALSE(again.created);
  EXPECT_EQ(again.name, "outer/inner/w:0");
}

// Trap 3: a re-entered captured scope takes its own flag, not the enclosing.
TYPED_TEST_P(SemanticsTest, ReenteredScopeKeepsItsOwnReuse) {
  Driver& d = this->d();
  ASSERT_OK(d.Enter("captured"));
  const int token = d.Capture();
  ASSERT_OK(d.Get("w", {{1}}));
  ASSERT_OK(d.Exit());
  ASSERT_OK(d.Enter("reusing", R::kReuse));
  ASSERT_OK(d.Reenter(token));
  EXPECT_EQ(d.ScopeName(), "captured");
  EXPECT_CODE(d.Get("w", {{1}}), kAlreadyExists);  // not REUSE
  ASSERT_OK_AND_ASSIGN(VarResult fresh, d.Get("w2", {{1}}));
  EXPECT_EQ(fresh.name, "captured/w2:0");
}

TYPED_TEST_P(SemanticsTest, ReuseVariablesSticksToCapturedScope) {
  Driver& d = this->d();
  ASSERT_OK(d.Enter("s"));
  const int token = d.Capture();
  ASSERT_OK(d.Get("w", {{1}}));
  ASSERT_OK(d.ReuseVariables());
  ASSERT_OK(d.Exit());
  ASSERT_OK(d.Reenter(token));
  ASSERT_OK_AND_ASSIGN(VarResult v, d.Get("w", {{1}}));
  EXPECT_FALSE(v.created);
  ASSERT_OK(d.Exit());
  // A fresh string scope of the same name is not affected.
  ASSERT_OK(d.Enter("s"));
  EXPECT_CODE(d.Get("w", {{1}}), kAlreadyExists);
}

// Trap 4 / §10.1: an omitted dtype matches any stored dtype; a wrong explicit
// one fails naming both.
TYPED_TEST_P(SemanticsTest, OmittedDtypeMatchesOnReuse) {
  Driver& d = this->d();
  ASSERT_OK(d.Enter("ints", R::kAuto));
  ASSERT_OK_AND_ASSIGN(VarResult t, d.Get("t", {{3}}, /*DT_INT32=*/3));
  EXPECT_EQ(t.dtype, 3);
  ASSERT_OK_AND_ASSIGN(VarResult again, d.Get("t", std::nullopt));
  EXPECT_EQ(again.dtype, 3);
  auto wrong = d.Get("t", {{3}}, /*DT_FLOAT=*/1);
  EXPECT_CODE(wrong, kInvalidArgument);
  EXPECT_EQ(d.Reason(wrong.status()), "DTYPE_MISMATCH");
  EXPECT_NE(std::string(wrong.status().message())
                .find("specified dtype float32 and found dtype int32"),
            std::string::npos);
}

TYPED_TEST_P(SemanticsTest, ShapeCompatibilityOnReuse) {
  Driver& d = this->d();
  ASSERT_OK(d.Enter("scope1", R::kAuto));
  ASSERT_OK(d.Get("v", {{1}}));
  auto bad = d.Get("v", {{2}});
  EXPECT_CODE(bad, kInvalidArgument);
  EXPECT_EQ(d.Reason(bad.status()), "SHAPE_MISMATCH");
  EXPECT_NE(std::string(bad.status().message())
                .find("Trying to share variable scope1/v, but specified shape "
                      "[2] and found shape [1]"),
            std::string::npos);
  EXPECT_OK(d.Get("v", {{-1}}));
  EXPECT_OK(d.Get("v", std::nullopt));
  EXPECT_CODE(d.Get("v", {{1, 1}}), kInvalidArgument);
  EXPECT_CODE(d.Get("v", {{}}), kInvalidArgument);  // scalar vs [1]
}

// Trap 5: default-name counters reset when the parent string scope exits; at
// the root they never reset.
TYPED_TEST_P(SemanticsTest, DefaultNamesRestartWhenParentReentered) {
  Driver& d = this->d();
  ASSERT_OK(d.Enter("foo"));
  ASSERT_OK(d.EnterDefault("bar"));
  EXPECT_EQ(d.ScopeName(), "foo/bar");
  ASSERT_OK(d.Exit());
  ASSERT_OK(d.EnterDefault("bar"));
  EXPECT_EQ(d.ScopeName(), "foo/bar_1");
  ASSERT_OK(d.Exit());
  ASSERT_OK(d.Exit());
  ASSERT_OK(d.Enter("foo"));
  ASSERT_OK(d.EnterDefault("bar"));
  EXPECT_EQ(d.ScopeName(), "foo/bar");
  ASSERT_OK(d.Exit());
  ASSERT_OK(d.Exit());
  ASSERT_OK(d.EnterDefault("layer"));
  EXPECT_EQ(d.ScopeName(), "layer");
  ASSERT_OK(d.Exit());
  ASSERT_OK(d.EnterDefault("layer"));
  EXPECT_EQ(d.ScopeName(), "layer_1");
}

TYPED_TEST_P(SemanticsTest, DefaultNamesCountStringScopesToo) {
  Driver& d = this->d();
  // testVarOpScopeUniqueNamesInterleavedSubstringScopes.
  ASSERT_OK(d.EnterDefault("defaultScope1"));
  EXPECT_EQ(d.ScopeName(), "defaultScope1");
  ASSERT_OK(d.Exit());
  ASSERT_OK(d.EnterDefault("defaultScope1"));
  EXPECT_EQ(d.ScopeName(), "defaultScope1_1");
  ASSERT_OK(d.Exit());
  ASSERT_OK(d.EnterDefault("defaultScope"));
  EXPECT_EQ(d.ScopeName(), "defaultScope");
  ASSERT_OK(d.Exit());
  ASSERT_OK(d.EnterDefault("defaultScope1"));
  EXPECT_EQ(d.ScopeName(), "defaultScope1_2");
  ASSERT_OK(d.Exit());
  ASSERT_OK(d.Enter("taken"));
  ASSERT_OK(d.Exit());
  ASSERT_OK(d.EnterDefault("taken"));
  EXPECT_EQ(d.ScopeName(), "taken_1");
}

TYPED_TEST_P(SemanticsTest, ReenteredScopeRestoresCountSnapshot) {
  Driver& d = this->d();
  // testVarOpScopeUniqueNamesWithJump, plus §2.3 step 7: counters created
  // inside a re-entered scope are forgotten when it closes.
  ASSERT_OK(d.Enter("default"));
  const int def = d.Capture();
  ASSERT_OK(d.EnterDefault("layer"));
  EXPECT_EQ(d.ScopeName(), "default/layer");
  ASSERT_OK(d.Exit());
  ASSERT_OK(d.EnterDefault("layer"));
  EXPECT_EQ(d.ScopeName(), "default/layer_1");
  ASSERT_OK(d.Exit());
  ASSERT_OK(d.Reenter(def));
  ASSERT_OK(d.Exit());
  ASSERT_OK(d.EnterDefault("layer"));
  EXPECT_EQ(d.ScopeName(), "default/layer_2");  // numbering continues
  ASSERT_OK(d.Exit());
  ASSERT_OK(d.Reenter(def));
  ASSERT_OK(d.EnterDefault("inner"));
  EXPECT_EQ(d.ScopeName(), "default/inner");
  ASSERT_OK(d.Exit());
  ASSERT_OK(d.Exit());
  ASSERT_OK(d.Reenter(def));
  ASSERT_OK(d.EnterDefault("inner"));
  EXPECT_EQ(d.ScopeName(), "default/inner");  // forgotten with the snapshot
}

// Trap 6: re-entering a scope by name reuses the variable prefix; only the
// name scope gets a suffix.
TYPED_TEST_P(SemanticsTest, ReenteredStringScopeKeepsVariablePrefix) {
  Driver& d = this->d();
  ASSERT_OK(d.Enter("foo"));
  EXPECT_EQ(d.NameScope(), "foo/");
  ASSERT_OK(d.Exit());
  ASSERT_OK(d.Enter("foo", R::kAuto));
  EXPECT_EQ(d.NameScope(), "foo_1/");
  ASSERT_OK_AND_ASSIGN(VarResult v, d.Get("v", {{1}}));
  EXPECT_EQ(v.name, "foo/v:0");
  ASSERT_OK_AND_ASSIGN(std::string op, d.OpName("add"));
  EXPECT_EQ(op, "foo_1/add:0");
}

// Trap 7: op-name uniquification is case-insensitive.
TYPED_TEST_P(SemanticsTest, OpNamesAreCaseInsensitive) {
  Driver& d = this->d();
  ASSERT_OK_AND_ASSIGN(std::string a, d.OpName("foo"));
  EXPECT_EQ(a, "foo:0");
  ASSERT_OK_AND_ASSIGN(std::string b, d.OpName("Foo"));
  EXPECT_EQ(b, "Foo_1:0");
  ASSERT_OK_AND_ASSIGN(std::string c, d.OpName("foo"));
  EXPECT_EQ(c, "foo_2:0");
  ASSERT_OK_AND_ASSIGN(std::string e, d.OpName("foo_1"));
  EXPECT_EQ(e, "foo_1_1:0");
}

// Trap 8: the name rule depends on position.
TYPED_TEST_P(SemanticsTest, NameValidityDependsOnPosition) {
  Driver& d = this->d();
  absl::Status underscore = d.Enter("_bar");
  EXPECT_TRUE(absl::IsInvalidArgument(underscore)) << underscore;
  EXPECT_EQ(d.Reason(underscore), "INVALID_NAME");
  EXPECT_CODE(d.Enter("foo:0"), kInvalidArgument);
  // A non-ASCII name still comes back with a readable reason (its bytes
  // are escaped in the error's metadata).
  absl::Status accented = d.Enter("caf\xc3\xa9");
  EXPECT_TRUE(absl::IsInvalidArgument(accented)) << accented;
  EXPECT_EQ(d.Reason(accented), "INVALID_NAME");
  EXPECT_CODE(d.Enter("a b"), kInvalidArgument);
  EXPECT_CODE(d.Enter("a//b"), kInvalidArgument);
  EXPECT_CODE(d.Get("_x", {{1}}), kInvalidArgument);
  ASSERT_OK(d.Enter("foo"));
  ASSERT_OK(d.Enter("_bar"));
  ASSERT_OK_AND_ASSIGN(VarResult v, d.Get("_x", {{1}}));
  EXPECT_EQ(v.name, "foo/_bar/_x:0");
  EXPECT_CODE(d.Get("x:0", {{1}}), kInvalidArgument);
}

// Trap 11: re-entering a captured scope opens a fresh name scope.
TYPED_TEST_P(SemanticsTest, CapturedReentryOpensUniqueNameScope) {
  Driver& d = this->d();
  ASSERT_OK(d.Enter("outer"));
  const int outer = d.Capture();
  ASSERT_OK(d.Exit());
  ASSERT_OK(d.Reenter(outer));
  EXPECT_EQ(d.NameScope(), "outer_1/");
  EXPECT_EQ(d.ScopeName(), "outer");
  ASSERT_OK(d.Exit());
  ASSERT_OK(d.Enter("other"));
  ASSERT_OK(d.Reenter(outer));
  EXPECT_EQ(d.NameScope(), "other/outer/");
  EXPECT_EQ(d.ScopeName(), "outer");  // absolute
}

TYPED_TEST_P(SemanticsTest, ReuseVariablesAffectsLaterChildrenOnly) {
  Driver& d = this->d();
  ASSERT_OK(d.Enter("p"));
  ASSERT_OK(d.Get("w", {{1}}));
  ASSERT_OK(d.ReuseVariables());
  ASSERT_OK(d.Enter("child"));
  EXPECT_CODE(d.Get("new", {{1}}), kNotFound);  // inherited REUSE
}

TYPED_TEST_P(SemanticsTest, AuxiliaryNameScopeFalseKeepsEnclosingPrefix) {
  Driver& d = this->d();
  ASSERT_OK(d.Enter("outer"));
  ASSERT_OK(d.Enter("inner", EnterOptions{R::kInherit, false, 0, ""}));
  ASSERT_OK_AND_ASSIGN(VarResult w, d.Get("w", {{1}}));
  EXPECT_EQ(w.name, "outer/inner/w:0");
  ASSERT_OK_AND_ASSIGN(std::string c, d.OpName("c"));
  EXPECT_EQ(c, "outer/c:0");
}

TYPED_TEST_P(SemanticsTest, ScopeDtypeIsTheCreateDefault) {
  Driver& d = this->d();
  ASSERT_OK(d.Enter("half", EnterOptions{R::kInherit, true, /*DT_HALF=*/19, ""}));
  ASSERT_OK_AND_ASSIGN(VarResult v, d.Get("v", {{2}}));
  EXPECT_EQ(v.dtype, 19);
  ASSERT_OK(d.Enter("nested"));
  ASSERT_OK_AND_ASSIGN(VarResult n, d.Get("v", {{2}}));
  EXPECT_EQ(n.dtype, 19);  // inherited
}

TYPED_TEST_P(SemanticsTest, NewVariableAlwaysCreatesUniqueNames) {
  Driver& d = this->d();
  ASSERT_OK_AND_ASSIGN(std::string a, d.NewVariable(""));
  EXPECT_EQ(a, "Variable:0");
  ASSERT_OK_AND_ASSIGN(std::string b, d.NewVariable(""));
  EXPECT_EQ(b, "Variable_1:0");
  ASSERT_OK(d.Enter("foo"));
  ASSERT_OK(d.EnterNameScope("bar"));
  ASSERT_OK_AND_ASSIGN(std::string c, d.NewVariable("b"));
  EXPECT_EQ(c, "foo/bar/b:0");
  ASSERT_OK(d.Exit());
  ASSERT_OK(d.Exit());
  ASSERT_OK(d.Enter("foo"));
  ASSERT_OK_AND_ASSIGN(std::string e, d.NewVariable(""));
  EXPECT_EQ(e, "foo_1/Variable:0");
}

TYPED_TEST_P(SemanticsTest, NewVariableSkipsNamesInTheStore) {
  Driver& d = this->d();
  ASSERT_OK(d.Get("taken", {{1}}));
  ASSERT_OK_AND_ASSIGN(std::string name, d.NewVariable("taken"));
  EXPECT_EQ(name, "taken_1:0");
}

TYPED_TEST_P(SemanticsTest, CollectionsAndTrainable) {
  Driver& d = this->d();
  ASSERT_OK_AND_ASSIGN(VarResult v, d.Get("v", {{1}}));
  EXPECT_TRUE(v.trainable);
  EXPECT_EQ(v.collections,
            (std::vector<std::string>{"variables", "trainable_variables"}));
}

// with tf.variable_scope(tf.get_variable_scope()) at the top level: the
// root re-entered keeps its own flag (not the enclosing REUSE), its name
// "" and opens no name scope of its own, with auxiliary_name_scope or not.
TYPED_TEST_P(SemanticsTest, RootCanBeCapturedAndReentered) {
  Driver& d = this->d();
  const int root = d.CaptureRoot();
  ASSERT_OK(d.Enter("outer", R::kReuse));
  ASSERT_OK(d.Reenter(root));
  EXPECT_EQ(d.ScopeName(), "");
  EXPECT_EQ(d.NameScope(), "outer/");
  ASSERT_OK_AND_ASSIGN(VarResult w, d.Get("w", {{1}}));
  EXPECT_TRUE(w.created);
  EXPECT_EQ(w.name, "w:0");
  ASSERT_OK_AND_ASSIGN(std::string op, d.OpName("add"));
  EXPECT_EQ(op, "outer/add:0");
  ASSERT_OK(d.Exit());
  ASSERT_OK(d.Reenter(root, EnterOptions{R::kAuto, false, 0, ""}));
  EXPECT_EQ(d.NameScope(), "outer/");
  ASSERT_OK_AND_ASSIGN(VarResult again, d.Get("w", {{1}}));
  EXPECT_FALSE(again.created);
}

// A handle of another session re-enters as a captured scope object:
// absolute name, its own reuse, a fresh name scope in this session.
TYPED_TEST_P(SemanticsTest, ScopesOfAnotherSessionReenterAsCaptured) {
  Driver& d = this->d();
  ASSERT_OK(d.Enter("shared", R::kAuto));
  const int shared = d.Capture();
  ASSERT_OK(d.Get("w", {{1}}));
  ASSERT_OK(d.Exit());
  ASSERT_OK(d.SwitchSession());
  ASSERT_OK(d.Enter("mine"));
  ASSERT_OK(d.Reenter(shared));
  EXPECT_EQ(d.ScopeName(), "shared");
  EXPECT_EQ(d.NameScope(), "mine/shared/");
  ASSERT_OK_AND_ASSIGN(VarResult w, d.Get("w", {{1}}));
  EXPECT_FALSE(w.created);  // its own AUTO_REUSE
  EXPECT_EQ(w.name, "shared/w:0");
}

// scope.set_dtype: later get_variable calls in the scope and in scopes
// opened under it afterwards see it; a scope opened before kept its copy.
TYPED_TEST_P(SemanticsTest, ScopeSettersAffectLaterCallsAndChildren) {
  Driver& d = this->d();
  ASSERT_OK(d.Enter("s"));
  ASSERT_OK(d.Enter("early"));
  const int early = d.Capture();
  ASSERT_OK(d.Exit());
  ASSERT_OK(d.SetDtype(/*DT_HALF=*/19));
  ASSERT_OK_AND_ASSIGN(VarResult v, d.Get("v", {{1}}));
  EXPECT_EQ(v.dtype, 19);
  ASSERT_OK(d.Enter("late"));
  ASSERT_OK_AND_ASSIGN(VarResult late, d.Get("v", {{1}}));
  EXPECT_EQ(late.dtype, 19);
  ASSERT_OK(d.Exit());
  ASSERT_OK(d.Reenter(early));
  ASSERT_OK_AND_ASSIGN(VarResult e, d.Get("e", {{1}}));
  EXPECT_EQ(e.dtype, /*DT_FLOAT=*/1);
}

// The root's flag and defaults are visible without opening a scope.
TYPED_TEST_P(SemanticsTest, RootIsVisible) {
  Driver& d = this->d();
  ASSERT_OK_AND_ASSIGN(RootView fresh, d.Root());
  EXPECT_EQ(fresh.reuse, R::kInherit);
  EXPECT_EQ(fresh.dtype, 0);
  ASSERT_OK(d.SetDtype(/*DT_DOUBLE=*/2));
  ASSERT_OK(d.ReuseVariables());
  ASSERT_OK_AND_ASSIGN(RootView after, d.Root());
  EXPECT_EQ(after.reuse, R::kReuse);
  EXPECT_EQ(after.dtype, 2);
}

// graph.unique_name(name, mark_as_used=False).
TYPED_TEST_P(SemanticsTest, OpNamePreviewReservesNothing) {
  Driver& d = this->d();
  ASSERT_OK(d.Enter("p"));
  ASSERT_OK_AND_ASSIGN(std::string a, d.OpName("add", true));
  EXPECT_EQ(a, "p/add:0");
  ASSERT_OK_AND_ASSIGN(std::string b, d.OpName("add", true));
  EXPECT_EQ(b, "p/add:0");
  ASSERT_OK_AND_ASSIGN(std::string c, d.OpName("add"));
  EXPECT_EQ(c, "p/add:0");
  ASSERT_OK_AND_ASSIGN(std::string e, d.OpName("add", true));
  EXPECT_EQ(e, "p/add_1:0");
}

// A name, or a captured scope, wins over default_name (which then counts
// nothing).
TYPED_TEST_P(SemanticsTest, NameOrScopeWinsOverDefaultName) {
  Driver& d = this->d();
  ASSERT_OK(d.Enter("named", EnterOptions{R::kInherit, true, 0, "ignored"}));
  EXPECT_EQ(d.ScopeName(), "named");
  const int named = d.Capture();
  ASSERT_OK(d.Exit());
  ASSERT_OK(d.Reenter(named, EnterOptions{R::kInherit, true, 0, "ignored"}));
  EXPECT_EQ(d.ScopeName(), "named");
  ASSERT_OK(d.Exit());
  ASSERT_OK(d.EnterDefault("ignored"));
  EXPECT_EQ(d.ScopeName(), "ignored");
}

// tf.get_local_variable: local_variables only, not trainable.
TYPED_TEST_P(SemanticsTest, LocalVariablesAreNotGlobal) {
  Driver& d = this->d();
  ASSERT_OK_AND_ASSIGN(VarResult l, d.GetLocal("l", {1}));
  EXPECT_EQ(l.name, "l:0");
  EXPECT_FALSE(l.trainable);
  EXPECT_EQ(l.collections, (std::vector<std::string>{"local_variables"}));
}

// dtype errors name TensorFlow's dtype, also for dtypes not stored.
TYPED_TEST_P(SemanticsTest, DtypeErrorsNameTensorFlowDtypes) {
  Driver& d = this->d();
  for (auto [number, name] : std::vector<std::pair<int, std::string>>{
           {7, "string"}, {8, "complex64"}, {17, "uint16"}, {101, "float32_ref"}}) {
    auto v = d.Get("v", {{1}}, number);
    EXPECT_CODE(v, kInvalidArgument);
    EXPECT_NE(std::string(v.status().message()).find("dtype " + name + " "),
              std::string::npos)
        << v.status();
    EXPECT_EQ(d.Reason(v.status()), "UNSUPPORTED_DTYPE");
  }
  EXPECT_CODE(d.Get("v", {{1}}, 7), kInvalidArgument);  // nothing was created
  ASSERT_OK_AND_ASSIGN(VarResult v, d.Get("v", {{1}}));
  EXPECT_TRUE(v.created);
}

REGISTER_TYPED_TEST_SUITE_P(
    SemanticsTest, SeedScopeName, SeedNestedScopes,
    SeedSecondGetWithoutReuseFails, SeedReuseVariablesReturnsSameVariable,
    SeedNameScopeChangesOpNamesOnly, RootInheritIsCreateOnly,
    ReuseCannotBeSwitchedOffInChild, AutoReuseChildInsideReuseParentCreates,
    ReenteredScopeKeepsItsOwnReuse, ReuseVariablesSticksToCapturedScope,
    OmittedDtypeMatchesOnReuse, ShapeCompatibilityOnReuse,
    DefaultNamesRestartWhenParentReentered, DefaultNamesCountStringScopesToo,
    ReenteredScopeRestoresCountSnapshot,
    ReenteredStringScopeKeepsVariablePrefix, OpNamesAreCaseInsensitive,
    NameValidityDependsOnPosition, CapturedReentryOpensUniqueNameScope,
    ReuseVariablesAffectsLaterChildrenOnly,
    AuxiliaryNameScopeFalseKeepsEnclosingPrefix, ScopeDtypeIsTheCreateDefault,
    NewVariableAlwaysCreatesUniqueNames, NewVariableSkipsNamesInTheStore,
    CollectionsAndTrainable, RootCanBeCapturedAndReentered,
    ScopesOfAnotherSessionReenterAsCaptured,
    ScopeSettersAffectLaterCallsAndChildren, RootIsVisible,
    OpNamePreviewReservesNothing, NameOrScopeWinsOverDefaultName,
    LocalVariablesAreNotGlobal, DtypeErrorsNameTensorFlowDtypes);

}  // namespace varscope::testing

#endif  // VARSCOPE_TESTS_SEMANTICS_SUITE_H_
