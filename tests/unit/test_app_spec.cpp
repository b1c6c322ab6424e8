// parse_app_spec: `module:attr`, `module`, `module:factory(args)`.
#include <gtest/gtest.h>

#include <string>

#include "config/app_spec.hpp"
#include "config/config.hpp"

using alicorn::AppSpec;
using alicorn::ConfigError;
using alicorn::parse_app_spec;

namespace {

struct GoodCase {
  const char* spec;
  const char* module;
  const char* attribute;
  bool call;
  const char* call_args;
};

class ParseAppSpecGood : public ::testing::TestWithParam<GoodCase> {};

TEST_P(ParseAppSpecGood, Parses) {
  const auto& c = GetParam();
  AppSpec a = parse_app_spec(c.spec);
  EXPECT_EQ(a.module, c.module);
  EXPECT_EQ(a.attribute, c.attribute);
  EXPECT_EQ(a.call, c.call);
  EXPECT_EQ(a.call_args, c.call_args);
  EXPECT_EQ(a.spec, c.spec);
}

INSTANTIATE_TEST_SUITE_P(
    Good, ParseAppSpecGood,
    ::testing::Values(
        GoodCase{"hello:app", "hello", "app", false, ""},
        GoodCase{"myproject.wsgi:application", "myproject.wsgi", "application", false, ""},
        GoodCase{"pkg.mod:attr.sub", "pkg.mod", "attr.sub", false, ""},
        GoodCase{"myproject.wsgi", "myproject.wsgi", "application", false, ""},
        GoodCase{"_private9:_App2", "_private9", "_App2", false, ""},
        GoodCase{"app:create_app()", "app", "create_app", true, ""},
        GoodCase{"app:create_app( )", "app", "create_app", true, ""},
        GoodCase{"app:factory('a', b=1)", "app", "factory", true, "'a', b=1"},
        GoodCase{"app:factory(config={'x': (1, 2)})", "app", "factory", true,
                 "config={'x': (1, 2)}"},
        GoodCase{"app:factory(')')", "app", "factory", true, "')'"},
        GoodCase{"app:factory(\"a\\\"(\")", "app", "factory", true, "\"a\\\"(\""},
        GoodCase{"app:obj.factory(1)", "app", "obj.factory", true, "1"}));

class ParseAppSpecBad : public ::testing::TestWithParam<const char*> {};

TEST_P(ParseAppSpecBad, RefusedWithMessage) {
  try {
    parse_app_spec(GetParam());
    FAIL() << "accepted '" << GetParam() << "'";
  } catch (const ConfigError& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.rfind("wsgi_app: ", 0), 0u) << msg;
    EXPECT_NE(msg.find("expected"), std::string::npos) << msg;
  }
}

INSTANTIATE_TEST_SUITE_P(Bad, ParseAppSpecBad,
                         ::testing::Values("", ":", ":app", "mod:", "my-mod:app", "mod:1app",
                                           "mod:my-app", ".mod:app", "mod.:app", "a..b:app",
                                           "mod:app.", "mod:.app", "mod: app", "mod :app",
                                           "mod:factory(", "mod:factory(()", "mod:factory)",
                                           "mod:factory('x)", "mod:factory()x",
                                           "mod:factory() ", "mod:factory()()", "mod:()",
                                           "mod:fac tory()", "mod()", "mod:a:b"));

TEST(ParseAppSpec, MessagesSayWhatIsWrong) {
  auto message = [](const char* spec) {
    try {
      parse_app_spec(spec);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(message(":app").find("empty module"), std::string::npos);
  EXPECT_NE(message("mod:").find("empty attribute"), std::string::npos);
  EXPECT_NE(message("my-mod:app").find("invalid module name 'my-mod'"), std::string::npos);
  EXPECT_NE(message("mod:1app").find("invalid attribute name '1app'"), std::string::npos);
  EXPECT_NE(message("mod:f(").find("unbalanced"), std::string::npos);
  EXPECT_NE(message("mod:f()x").find("after ')'"), std::string::npos);
}

}  // namespace
