// load_config, to_yaml, shell_split, current_environment: flags, the four layers, validation.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace fs = std::filesystem;
using namespace alicorn;

namespace {

LoadedConfig load(std::vector<std::string> args, const Environment& env = {}) {
  std::vector<const char*> argv{"alicorn"};
  for (const auto& a : args) argv.push_back(a.c_str());
  return load_config(static_cast<int>(argv.size()), argv.data(), env);
}

Config cfg(std::vector<std::string> args, const Environment& env = {}) {
  return load(std::move(args), env).config;
}

// The ConfigError message `fn` throws, or "<no error>".
std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "<no error>";
}

std::string load_error(std::vector<std::string> args, const Environment& env = {}) {
  return error_of([&] { load(args, env); });
}

::testing::AssertionResult Contains(const std::string& text,
                                    std::initializer_list<std::string> parts) {
  for (const auto& p : parts)
    if (text.find(p) == std::string::npos)
      return ::testing::AssertionFailure() << "'" << text << "' does not contain '" << p << "'";
  return ::testing::AssertionSuccess();
}

std::vector<std::string> bind_strings(const Config& c) {
  std::vector<std::string> out;
  for (const auto& b : c.bind) out.push_back(b.to_string());
  return out;
}

using Strings = std::vector<std::string>;
using Env = std::map<std::string, std::string>;

// A fresh temporary directory per test, for YAML files.
class ConfigFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "alicorn-config-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }

  fs::path dir_;
};

// ---- defaults and flags -------------------------------------------------------------------

TEST(ConfigLoad, Defaults) {
  LoadedConfig r = load({"hello:app"});
  EXPECT_EQ(r.action, Action::Serve);
  const Config& c = r.config;
  EXPECT_EQ(bind_strings(c), Strings{"127.0.0.1:8000"});
  EXPECT_EQ(c.backlog, 2048);
  EXPECT_FALSE(c.reuse_port);
  EXPECT_EQ(c.workers, 1);
  EXPECT_EQ(c.worker_class, "sync");
  EXPECT_EQ(c.threads, 1);
  EXPECT_EQ(c.worker_connections, 1000);
  EXPECT_EQ(c.max_requests, 0);
  EXPECT_EQ(c.max_requests_jitter, 0);
  EXPECT_EQ(c.timeout, 30);
  EXPECT_EQ(c.graceful_timeout, 30);
  EXPECT_EQ(c.keepalive, 2);
  EXPECT_EQ(c.limit_request_line, 4094);
  EXPECT_EQ(c.limit_request_fields, 100);
  EXPECT_EQ(c.limit_request_field_size, 8190);
  EXPECT_FALSE(c.chdir);
  EXPECT_TRUE(c.pythonpath.empty());
  EXPECT_FALSE(c.virtualenv);
  EXPECT_TRUE(c.raw_env.empty());
  EXPECT_FALSE(c.pidfile);
  EXPECT_FALSE(c.preload_app);
  EXPECT_FALSE(c.accesslog);
  EXPECT_EQ(c.access_log_format, Config{}.access_log_format);
  EXPECT_EQ(c.errorlog, "-");
  EXPECT_EQ(c.loglevel, "info");
  EXPECT_FALSE(c.config);
  EXPECT_EQ(c.wsgi_app, "hello:app");
  ASSERT_TRUE(c.app);
  EXPECT_EQ(c.app->module, "hello");
  EXPECT_EQ(c.app->attribute, "app");
}

TEST(ConfigLoad, EveryLongFlag) {
  Config c = cfg({"--bind", "0.0.0.0:9000", "--backlog", "64", "--reuse-port", "--workers", "3",
                  "--worker-class", "gthread", "--threads", "8", "--worker-connections", "50",
                  "--max-requests", "1000", "--max-requests-jitter", "50", "--timeout", "12.5",
                  "--graceful-timeout", "7", "--keep-alive", "0.25", "--limit-request-line",
                  "8190", "--limit-request-fields", "32768", "--limit-request-field_size", "0",
                  "--chdir", "/srv/app", "--pythonpath", "/a,/b", "--virtualenv", "/venv",
                  "--env", "A=1", "--pid", "/run/a.pid", "--preload", "--access-logfile", "-",
                  "--access-logformat", "%(h)s", "--error-logfile", "/var/log/e.log",
                  "--log-level", "debug", "pkg.wsgi:application"});
  EXPECT_EQ(bind_strings(c), Strings{"0.0.0.0:9000"});
  EXPECT_EQ(c.backlog, 64);
  EXPECT_TRUE(c.reuse_port);
  EXPECT_EQ(c.workers, 3);
  EXPECT_EQ(c.worker_class, "gthread");
  EXPECT_EQ(c.threads, 8);
  EXPECT_EQ(c.worker_connections, 50);
  EXPECT_EQ(c.max_requests, 1000);
  EXPECT_EQ(c.max_requests_jitter, 50);
  EXPECT_EQ(c.timeout, 12.5);
  EXPECT_EQ(c.graceful_timeout, 7);
  EXPECT_EQ(c.keepalive, 0.25);
  EXPECT_EQ(c.limit_request_line, 8190);
  EXPECT_EQ(c.limit_request_fields, 32768);
  EXPECT_EQ(c.limit_request_field_size, 0);
  EXPECT_EQ(c.chdir, "/srv/app");
  EXPECT_EQ(c.pythonpath, (Strings{"/a", "/b"}));
  EXPECT_EQ(c.virtualenv, "/venv");
  EXPECT_EQ(c.raw_env, (Env{{"A", "1"}}));
  EXPECT_EQ(c.pidfile, "/run/a.pid");
  EXPECT_TRUE(c.preload_app);
  EXPECT_EQ(c.accesslog, "-");
  EXPECT_EQ(c.access_log_format, "%(h)s");
  EXPECT_EQ(c.errorlog, "/var/log/e.log");
  EXPECT_EQ(c.loglevel, "debug");
  EXPECT_EQ(c.app->module, "pkg.wsgi");
}

TEST(ConfigLoad, ShortFlagsAndSpellings) {
  Config c = cfg({"-b", "[::1]:81", "-w", "4", "-k", "uv", "-t", "5", "-e", "X=y", "-p", "pid",
                  "--limit-request-field-size", "100", "--log-file", "err.log", "m:a"});
  EXPECT_EQ(bind_strings(c), Strings{"[::1]:81"});
  EXPECT_EQ(c.workers, 4);
  EXPECT_EQ(c.worker_class, "uv");
  EXPECT_EQ(c.timeout, 5);
  EXPECT_EQ(c.raw_env, (Env{{"X", "y"}}));
  EXPECT_EQ(c.pidfile, "pid");
  EXPECT_EQ(c.limit_request_field_size, 100);
  EXPECT_EQ(c.errorlog, "err.log");

  Config d = cfg({"-w5", "--threads=6", "-bunix:/tmp/s", "m:a"});
  EXPECT_EQ(d.workers, 5);
  EXPECT_EQ(d.threads, 6);
  EXPECT_EQ(bind_strings(d), Strings{"unix:/tmp/s"});
}

TEST(ConfigLoad, RepeatedFlagsInOneLayer) {
  Config c = cfg({"-b", "a:1", "--bind", "unix:/s", "-b", "fd://3", "--pythonpath", "/x, /y",
                  "--pythonpath", "/z,,", "-e", "A=1", "-e", "B==2", "-e", "A=3", "-e", "C=",
                  "-w", "2", "-w", "7", "m:a"});
  EXPECT_EQ(bind_strings(c), (Strings{"a:1", "unix:/s", "fd://3"}));
  EXPECT_EQ(c.pythonpath, (Strings{"/x", "/y", "/z"}));
  EXPECT_EQ(c.raw_env, (Env{{"A", "3"}, {"B", "=2"}, {"C", ""}}));
  EXPECT_EQ(c.workers, 7);  // a scalar given twice: the last one wins
}

TEST(ConfigLoad, LogLevelIsCaseInsensitive) {
  EXPECT_EQ(cfg({"--log-level", "WARNING", "m:a"}).loglevel, "warning");
  EXPECT_EQ(cfg({"--log-level", "Critical", "m:a"}).loglevel, "critical");
  EXPECT_TRUE(Contains(load_error({"--log-level", "loud", "m:a"}),
                       {"loglevel: 'loud'", "debug, info, warning, error, critical"}));
}

TEST(ConfigLoad, AppFactorySpec) {
  Config c = cfg({"app:create('dev', debug=True)"});
  EXPECT_TRUE(c.app->call);
  EXPECT_EQ(c.app->call_args, "'dev', debug=True");
  EXPECT_EQ(cfg({"myproject.wsgi"}).app->attribute, "application");
}

TEST(ConfigLoad, Actions) {
  EXPECT_EQ(load({"--version"}).action, Action::Version);
  EXPECT_EQ(load({"-v"}).action, Action::Version);
  EXPECT_EQ(load({"--check-config", "m:a"}).action, Action::CheckConfig);
  EXPECT_EQ(load({"--print-config"}).action, Action::PrintConfig);
  EXPECT_EQ(load({"--list-workers"}).action, Action::ListWorkers);
  EXPECT_EQ(load({}, {{"ALICORN_CMD_ARGS", "--print-config"}}).action, Action::PrintConfig);
  // The command line's action wins over the variable's.
  EXPECT_EQ(load({"--list-workers"}, {{"ALICORN_CMD_ARGS", "--print-config"}}).action,
            Action::ListWorkers);
}

TEST(ConfigLoad, Help) {
  for (const char* flag : {"-h", "--help"}) {
    LoadedConfig r = load({flag});
    EXPECT_EQ(r.action, Action::Help);
    EXPECT_TRUE(Contains(r.help_text,
                         {"alicorn: a pre-fork WSGI HTTP server with pluggable worker classes",
                          "Usage: alicorn", "APP_MODULE", "-w,--workers",
                          "--limit-request-field_size",
                          "--log-file", "--check-config", "-c,--config"}));
  }
  // --help and --version answer even when the rest of the configuration is broken.
  Env broken{{"ALICORN_CMD_ARGS", "'unterminated"}, {"WEB_CONCURRENCY", "many"}};
  EXPECT_EQ(load({"--help"}, broken).action, Action::Help);
  EXPECT_EQ(load({"--version", "-w", "x"}, broken).action, Action::Version);
}

TEST(ConfigLoad, ApplicationIsRequiredToServeOrCheck) {
  EXPECT_TRUE(Contains(load_error({}), {"wsgi_app:", "APP_MODULE"}));
  EXPECT_TRUE(Contains(load_error({"--check-config"}), {"wsgi_app:"}));
  EXPECT_FALSE(load({"--print-config"}).config.app);
  EXPECT_FALSE(load({"--list-workers"}).config.app);
}

TEST(ConfigLoad, UnknownFlagAndExtraArguments) {
  EXPECT_TRUE(Contains(load_error({"--bogus", "m:a"}), {"--bogus"}));
  EXPECT_TRUE(Contains(load_error({"-x", "m:a"}), {"-x"}));
  EXPECT_TRUE(Contains(load_error({"--workers-count=3", "m:a"}), {"--workers-count"}));
  EXPECT_TRUE(Contains(load_error({"m:a", "n:b"}), {"n:b", "APP_MODULE"}));
  EXPECT_TRUE(Contains(load_error({"m:a", "-w"}), {"workers"}));  // value missing
  EXPECT_TRUE(Contains(load_error({"m:a"}, {{"ALICORN_CMD_ARGS", "--nope"}}),
                       {"ALICORN_CMD_ARGS", "--nope"}));
  EXPECT_EQ(cfg({"--", "m:a"}).wsgi_app, "m:a");
}

TEST(ConfigLoad, BoolFlagsTakeAnExplicitValue) {
  EXPECT_FALSE(cfg({"--preload=false", "m:a"}).preload_app);
  EXPECT_TRUE(cfg({"--reuse-port=true", "m:a"}).reuse_port);
  EXPECT_TRUE(Contains(load_error({"--preload=maybe", "m:a"}), {"preload_app: 'maybe'"}));
}

// ---- validation ---------------------------------------------------------------------------

struct BadValue {
  const char* flag;
  const char* value;
  const char* setting;
};

void PrintTo(const BadValue& b, std::ostream* os) { *os << b.flag << " '" << b.value << "'"; }

class ConfigBadValue : public ::testing::TestWithParam<BadValue> {};

TEST_P(ConfigBadValue, RefusedNamingTheSetting) {
  const auto& p = GetParam();
  std::string expected_start = std::string(p.setting) + ": '" + p.value + "'";
  const std::string joined = std::string(p.flag) + "=" + p.value;  // --flag=VALUE, and --flag=
  for (const auto& args : {Strings{p.flag, p.value, "m:a"}, Strings{joined, "m:a"}}) {
    std::string msg = load_error(args);
    EXPECT_EQ(msg.rfind(expected_start, 0), 0u) << msg;
    EXPECT_TRUE(Contains(msg, {"(expected "})) << msg;
  }
}

std::vector<BadValue> bad_values() {
  std::vector<BadValue> out;
  struct Int {
    const char* flag;
    const char* setting;
    std::vector<const char*> extra;  // out of this setting's range
  };
  const Int ints[] = {
      {"--workers", "workers", {"0", "-1"}},
      {"--threads", "threads", {"0"}},
      {"--worker-connections", "worker_connections", {"0"}},
      {"--backlog", "backlog", {"0"}},
      {"--max-requests", "max_requests", {"-1"}},
      {"--max-requests-jitter", "max_requests_jitter", {"-5"}},
      {"--limit-request-line", "limit_request_line", {"-1", "8191"}},
      {"--limit-request-fields", "limit_request_fields", {"-1", "32769"}},
      {"--limit-request-field_size", "limit_request_field_size", {"-1"}},
  };
  for (const auto& i : ints) {
    for (const char* v : {"abc", "", "2.5", "12abc", "99999999999", "1e3", " 3", "0x10"})
      out.push_back({i.flag, v, i.setting});
    for (const char* v : i.extra) out.push_back({i.flag, v, i.setting});
  }
  const std::pair<const char*, const char*> seconds[] = {
      {"--timeout", "timeout"},
      {"--graceful-timeout", "graceful_timeout"},
      {"--keep-alive", "keepalive"}};
  for (const auto& [flag, setting] : seconds)
    for (const char* v : {"abc", "", "-1", "-0.5", "1s", "inf", "nan", "1.5.2"})
      out.push_back({flag, v, setting});
  for (const char* v : {"", "noequals", "=value"}) out.push_back({"--env", v, "raw_env"});
  out.push_back({"--worker-class", "", "worker_class"});
  out.push_back({"--log-level", "verbose", "loglevel"});
  out.push_back({"--log-level", "", "loglevel"});
  out.push_back({"--error-logfile", "", "errorlog"});
  out.push_back({"--pid", "", "pidfile"});
  return out;
}

INSTANTIATE_TEST_SUITE_P(All, ConfigBadValue, ::testing::ValuesIn(bad_values()));

TEST(ConfigLoad, ValidationMessages) {
  EXPECT_EQ(load_error({"-w", "abc", "m:a"}),
            "workers: 'abc' is not an integer (expected an integer >= 1)");
  EXPECT_EQ(load_error({"-w", "0", "m:a"}),
            "workers: '0' is out of range (expected an integer >= 1)");
  EXPECT_EQ(load_error({"--limit-request-line", "9000", "m:a"}),
            "limit_request_line: '9000' is out of range (expected an integer from 0 to 8190)");
  EXPECT_EQ(load_error({"-t", "soon", "m:a"}),
            "timeout: 'soon' is not a number (expected a number of seconds >= 0)");
  EXPECT_TRUE(Contains(load_error({"-b", "localhost:http", "m:a"}), {"bind: ", "'http'"}));
  EXPECT_TRUE(Contains(load_error({"mod:1app"}), {"wsgi_app: "}));
}

TEST(ConfigLoad, BoundaryValuesAccepted) {
  Config c = cfg({"--limit-request-line", "0", "--limit-request-fields", "0", "-t", "0",
                  "--graceful-timeout", "0", "--keep-alive", "0", "--max-requests", "0",
                  "--max-requests-jitter", "0", "--limit-request-field_size", "0", "m:a"});
  EXPECT_EQ(c.limit_request_line, 0);
  EXPECT_EQ(c.timeout, 0);
  EXPECT_EQ(cfg({"-w", "2147483647", "m:a"}).workers, 2147483647);
  EXPECT_EQ(cfg({"-t", "1e2", "m:a"}).timeout, 100);
  EXPECT_EQ(cfg({"-t", ".5", "m:a"}).timeout, 0.5);
}

// ---- environment variables ----------------------------------------------------------------

TEST(ConfigEnv, WebConcurrency) {
  EXPECT_EQ(cfg({"m:a"}, {{"WEB_CONCURRENCY", "6"}}).workers, 6);
  EXPECT_EQ(cfg({"m:a"}, {{"WEB_CONCURRENCY", ""}}).workers, 1);
  EXPECT_EQ(cfg({"-w", "2", "m:a"}, {{"WEB_CONCURRENCY", "6"}}).workers, 2);
  std::string msg = load_error({"m:a"}, {{"WEB_CONCURRENCY", "lots"}});
  EXPECT_TRUE(Contains(msg, {"WEB_CONCURRENCY", "workers", "'lots'"}));
  EXPECT_TRUE(Contains(load_error({"m:a"}, {{"WEB_CONCURRENCY", "0"}}), {"WEB_CONCURRENCY"}));
  // An explicit setting replaces the bad default, so it is never looked at.
  EXPECT_EQ(cfg({"-w", "3", "m:a"}, {{"WEB_CONCURRENCY", "lots"}}).workers, 3);
}

TEST(ConfigEnv, Port) {
  EXPECT_EQ(bind_strings(cfg({"m:a"}, {{"PORT", "5000"}})), Strings{"0.0.0.0:5000"});
  EXPECT_EQ(bind_strings(cfg({"-b", "127.0.0.1:1", "m:a"}, {{"PORT", "5000"}})),
            Strings{"127.0.0.1:1"});
  EXPECT_TRUE(Contains(load_error({"m:a"}, {{"PORT", "http"}}), {"PORT", "bind:", "'http'"}));
}

TEST(ConfigEnv, VirtualEnv) {
  EXPECT_EQ(cfg({"m:a"}, {{"VIRTUAL_ENV", "/venv"}}).virtualenv, "/venv");
  EXPECT_EQ(cfg({"--virtualenv", "/other", "m:a"}, {{"VIRTUAL_ENV", "/venv"}}).virtualenv,
            "/other");
}

TEST(ConfigEnv, CmdArgs) {
  Config c = cfg({}, {{"ALICORN_CMD_ARGS", "-w 3 --bind '0.0.0.0:1' -e \"A=x y\" m:a"}});
  EXPECT_EQ(c.workers, 3);
  EXPECT_EQ(bind_strings(c), Strings{"0.0.0.0:1"});
  EXPECT_EQ(c.raw_env, (Env{{"A", "x y"}}));
  EXPECT_EQ(c.wsgi_app, "m:a");
  EXPECT_EQ(load_error({"m:a"}, {{"ALICORN_CMD_ARGS", "-e 'A=1"}}),
            "ALICORN_CMD_ARGS: unterminated quote");
  EXPECT_TRUE(Contains(load_error({"m:a"}, {{"ALICORN_CMD_ARGS", "--threads x"}}),
                       {"ALICORN_CMD_ARGS", "threads: 'x'"}));
}

TEST(ConfigEnv, CurrentEnvironment) {
  ASSERT_EQ(setenv("ALICORN_TEST_VARIABLE", "a=b c", 1), 0);
  Environment env = current_environment();
  unsetenv("ALICORN_TEST_VARIABLE");
  EXPECT_EQ(env["ALICORN_TEST_VARIABLE"], "a=b c");
}

// ---- YAML and precedence ------------------------------------------------------------------

TEST_F(ConfigFiles, YamlSetsEverySetting) {
  std::string path = write("all.yaml", R"(
wsgi_app: site.wsgi:app
bind: [127.0.0.1:1, "unix:/run/s"]
backlog: 10
reuse_port: true
workers: 9
worker_class: gthread
threads: 2
worker_connections: 3
max_requests: 4
max_requests_jitter: 5
timeout: 6.5
graceful_timeout: 7
keepalive: 8
limit_request_line: 9
limit_request_fields: 10
limit_request_field_size: 11
chdir: /srv
pythonpath: /p1,/p2
virtualenv: /venv
raw_env: {A: "1", B: two}
pidfile: /run/pid
preload_app: yes
accesslog: /log/access
access_log_format: '%(h)s'
errorlog: /log/error
loglevel: ERROR
)");
  Config c = cfg({"-c", path});
  EXPECT_EQ(c.config, path);
  EXPECT_EQ(c.wsgi_app, "site.wsgi:app");
  EXPECT_EQ(bind_strings(c), (Strings{"127.0.0.1:1", "unix:/run/s"}));
  EXPECT_EQ(c.backlog, 10);
  EXPECT_TRUE(c.reuse_port);
  EXPECT_EQ(c.workers, 9);
  EXPECT_EQ(c.worker_class, "gthread");
  EXPECT_EQ(c.threads, 2);
  EXPECT_EQ(c.worker_connections, 3);
  EXPECT_EQ(c.max_requests, 4);
  EXPECT_EQ(c.max_requests_jitter, 5);
  EXPECT_EQ(c.timeout, 6.5);
  EXPECT_EQ(c.graceful_timeout, 7);
  EXPECT_EQ(c.keepalive, 8);
  EXPECT_EQ(c.limit_request_line, 9);
  EXPECT_EQ(c.limit_request_fields, 10);
  EXPECT_EQ(c.limit_request_field_size, 11);
  EXPECT_EQ(c.chdir, "/srv");
  EXPECT_EQ(c.pythonpath, (Strings{"/p1", "/p2"}));
  EXPECT_EQ(c.virtualenv, "/venv");
  EXPECT_EQ(c.raw_env, (Env{{"A", "1"}, {"B", "two"}}));
  EXPECT_EQ(c.pidfile, "/run/pid");
  EXPECT_TRUE(c.preload_app);
  EXPECT_EQ(c.accesslog, "/log/access");
  EXPECT_EQ(c.access_log_format, "%(h)s");
  EXPECT_EQ(c.errorlog, "/log/error");
  EXPECT_EQ(c.loglevel, "error");
}

TEST_F(ConfigFiles, YamlListShapes) {
  Config c = cfg({"-c", write("a.yaml", "wsgi_app: m:a\nbind: localhost:1\n"
                                        "pythonpath: [/a, '/b,/c']\nraw_env: [X=1, Y=2]\n")});
  EXPECT_EQ(bind_strings(c), Strings{"localhost:1"});
  EXPECT_EQ(c.pythonpath, (Strings{"/a", "/b", "/c"}));
  EXPECT_EQ(c.raw_env, (Env{{"X", "1"}, {"Y", "2"}}));
  EXPECT_EQ(cfg({"-c", write("b.yaml", "wsgi_app: m:a\nraw_env: K=V\n")}).raw_env,
            (Env{{"K", "V"}}));
  EXPECT_TRUE(cfg({"-c", write("c.yaml", "wsgi_app: m:a\npythonpath: []\n")}).pythonpath.empty());
}

TEST_F(ConfigFiles, PrecedenceAcrossAllFourLayers) {
  std::string path = write("site.yaml", "wsgi_app: from.yaml:app\nworkers: 2\nthreads: 2\n"
                                        "timeout: 2\nkeepalive: 2\n");
  Env env{{"WEB_CONCURRENCY", "1"},
          {"ALICORN_CMD_ARGS", "-c " + path + " --threads 3 --timeout 3 env.args:app"}};
  Config c = cfg({"--timeout", "4"}, env);
  EXPECT_EQ(c.keepalive, 2);   // only the file sets it
  EXPECT_EQ(c.workers, 2);     // file over the WEB_CONCURRENCY default
  EXPECT_EQ(c.threads, 3);     // ALICORN_CMD_ARGS over the file
  EXPECT_EQ(c.timeout, 4);     // command line over everything
  EXPECT_EQ(c.wsgi_app, "env.args:app");
  EXPECT_EQ(c.config, path);   // -c taken from ALICORN_CMD_ARGS
  EXPECT_EQ(c.backlog, 2048);  // nobody sets it
  EXPECT_EQ(cfg({"cli:app"}, env).wsgi_app, "cli:app");
}

TEST_F(ConfigFiles, CommandLineConfigFileWinsOverVariable) {
  std::string one = write("one.yaml", "workers: 11\nwsgi_app: m:a\n");
  std::string two = write("two.yaml", "workers: 22\nwsgi_app: m:a\n");
  Config c = cfg({"-c", two}, {{"ALICORN_CMD_ARGS", "--config " + one}});
  EXPECT_EQ(c.workers, 22);
  EXPECT_EQ(c.config, two);
}

TEST_F(ConfigFiles, HigherLayerReplacesWholeLists) {
  std::string path = write("lists.yaml", "wsgi_app: m:a\nbind: [a:1, b:2]\npythonpath: [/y1, /y2]\n"
                                         "raw_env: {A: '1', B: '2'}\n");
  Config file_only = cfg({"-c", path});
  EXPECT_EQ(bind_strings(file_only), (Strings{"a:1", "b:2"}));

  Config c = cfg({"-c", path, "-b", "d:4", "-b", "e:5", "-e", "C=3"},
                 {{"ALICORN_CMD_ARGS", "-b c:3 --pythonpath /e1"}});
  EXPECT_EQ(bind_strings(c), (Strings{"d:4", "e:5"}));  // command line replaces the variable's
  EXPECT_EQ(c.pythonpath, Strings{"/e1"});              // the variable replaces the file's
  EXPECT_EQ(c.raw_env, (Env{{"C", "3"}}));              // the command line replaces the file's
  // A file's bind replaces the default, $PORT included.
  EXPECT_EQ(bind_strings(cfg({"-c", path}, {{"PORT", "9"}})), (Strings{"a:1", "b:2"}));
}

TEST_F(ConfigFiles, YamlNullUnsetsAnOptional) {
  std::string path = write("null.yaml", "wsgi_app: m:a\nvirtualenv: ~\npidfile:\n");
  Config c = cfg({"-c", path}, {{"VIRTUAL_ENV", "/venv"}});
  EXPECT_FALSE(c.virtualenv);
  EXPECT_FALSE(c.pidfile);
}

TEST_F(ConfigFiles, EmptyFileMeansDefaults) {
  Config c = cfg({"-c", write("empty.yaml", "# nothing here\n"), "m:a"});
  EXPECT_EQ(c.workers, 1);
  EXPECT_EQ(bind_strings(c), Strings{"127.0.0.1:8000"});
}

TEST_F(ConfigFiles, FileErrorsNameFileAndKey) {
  auto err = [&](const std::string& name, const std::string& text) {
    std::string path = write(name, text);
    std::string msg = load_error({"-c", path, "m:a"});
    EXPECT_TRUE(Contains(msg, {path})) << msg;
    return msg;
  };
  EXPECT_TRUE(Contains(err("u.yaml", "wokers: 3\n"), {"unknown setting 'wokers'", "workers"}));
  EXPECT_TRUE(
      Contains(err("d.yaml", "worker-class: sync\n"), {"'worker-class'", "'worker_class'"}));
  EXPECT_TRUE(Contains(err("s.yaml", "workers: [1\n"), {"invalid YAML", "line"}));
  EXPECT_TRUE(Contains(err("t.yaml", "workers: : :\n  - x\n"), {"invalid YAML"}));
  EXPECT_TRUE(Contains(err("top.yaml", "- workers\n"), {"mapping"}));
  EXPECT_TRUE(Contains(err("l.yaml", "workers: [1, 2]\n"), {"workers", "a single value"}));
  EXPECT_TRUE(Contains(err("m.yaml", "timeout: {a: 1}\n"), {"timeout", "a single value"}));
  EXPECT_TRUE(Contains(err("n.yaml", "workers:\n"), {"workers", "null"}));
  EXPECT_TRUE(Contains(err("b.yaml", "bind: {a: 1}\n"), {"bind", "list"}));
  EXPECT_TRUE(Contains(err("bn.yaml", "bind: [[a]]\n"), {"bind"}));
  EXPECT_TRUE(Contains(err("e.yaml", "raw_env: {A: [1]}\n"), {"raw_env"}));
  EXPECT_TRUE(Contains(err("v.yaml", "workers: two\n"), {"workers: 'two' is not an integer"}));
  EXPECT_TRUE(Contains(err("p.yaml", "preload_app: maybe\n"), {"preload_app: 'maybe'"}));
  EXPECT_TRUE(Contains(err("eb.yaml", "bind: []\n"), {"bind:"}));
  std::string bad_app = write("a.yaml", "wsgi_app: 'x y'\n");
  EXPECT_TRUE(Contains(load_error({"-c", bad_app}), {bad_app, "wsgi_app: 'x y'"}));

  std::string missing = (dir_ / "missing.yaml").string();
  EXPECT_TRUE(Contains(load_error({"-c", missing, "m:a"}), {missing, "cannot read"}));
  EXPECT_TRUE(Contains(load_error({"-c", dir_.string(), "m:a"}), {dir_.string(), "directory"}));
}

// ---- to_yaml ------------------------------------------------------------------------------

TEST_F(ConfigFiles, ToYamlRoundTripsDefaults) {
  Config original = cfg({"m:a"});
  std::string yaml = to_yaml(original);
  Config reloaded = cfg({"-c", write("defaults.yaml", yaml)});
  reloaded.config.reset();
  EXPECT_EQ(reloaded, original) << yaml;
}

TEST_F(ConfigFiles, ToYamlRoundTripsEverySetting) {
  Config original = cfg({"-b", "[::1]:1", "-b", "unix:/tmp/a b.sock", "-b", "fd://4", "-b",
                         "localhost", "--backlog", "5", "--reuse-port", "-w", "6", "-k",
                         "/opt/plugins/x.so", "--threads", "7", "--worker-connections", "8",
                         "--max-requests", "9", "--max-requests-jitter", "10", "-t", "0.1",
                         "--graceful-timeout", "1e-7", "--keep-alive", "123456.789",
                         "--limit-request-line", "0", "--limit-request-fields", "12",
                         "--limit-request-field_size", "13", "--chdir", "~", "--pythonpath",
                         "null,yes,#x", "--virtualenv", "true", "-e", "A=", "-e", "B=x: y",
                         "-e", "C='\"", "-e", "~=null", "-p", "- dash", "--preload",
                         "--access-logfile", "-", "--access-logformat", "%(h)s \"%(r)s\" 'q' #",
                         "--error-logfile", "null", "--log-level", "WARNING",
                         "app:factory('a', b={'c': [1]})"});
  std::string yaml = to_yaml(original);
  Config reloaded = cfg({"-c", write("all.yaml", yaml)});
  EXPECT_EQ(reloaded.config, (dir_ / "all.yaml").string());
  reloaded.config.reset();
  EXPECT_EQ(reloaded, original) << yaml;
  EXPECT_EQ(reloaded.raw_env.at("~"), "null");
  EXPECT_EQ(reloaded.chdir, "~");
}

TEST(ConfigYaml, NamesEverySetting) {
  std::string yaml = "\n" + to_yaml(cfg({"m:a"}));
  for (const char* key :
       {"bind", "workers", "worker_class", "threads", "worker_connections", "backlog", "timeout",
        "graceful_timeout", "keepalive", "max_requests", "max_requests_jitter",
        "limit_request_line", "limit_request_fields", "limit_request_field_size", "chdir",
        "pythonpath", "virtualenv", "raw_env", "pidfile", "preload_app", "reuse_port",
        "accesslog", "access_log_format", "errorlog", "loglevel", "wsgi_app"})
    EXPECT_NE(yaml.find(std::string("\n") + key + ":"), std::string::npos)
        << key << " missing from\n" << yaml;
}

// ---- shell_split --------------------------------------------------------------------------

TEST(ShellSplit, Words) {
  EXPECT_EQ(shell_split(""), Strings{});
  EXPECT_EQ(shell_split("  \t\n "), Strings{});
  EXPECT_EQ(shell_split("-w 3  --bind\t0.0.0.0:80\n"),
            (Strings{"-w", "3", "--bind", "0.0.0.0:80"}));
  EXPECT_EQ(shell_split("'a b' \"c d\""), (Strings{"a b", "c d"}));
  EXPECT_EQ(shell_split("x'y z'\"w\"v"), Strings{"xy zwv"});
  EXPECT_EQ(shell_split("'' \"\""), (Strings{"", ""}));
  EXPECT_EQ(shell_split("'a\\b \"c\"'"), Strings{"a\\b \"c\""});  // nothing special in '...'
  EXPECT_EQ(shell_split(R"("a\"b\\c\$d\`e\nf")"), Strings{R"(a"b\c$d`e\nf)"});
  EXPECT_EQ(shell_split(R"(a\ b \'c\" \\)"), (Strings{"a b", "'c\"", "\\"}));
  EXPECT_EQ(shell_split("a \\\n b"), (Strings{"a", "b"}));  // line continuation
  EXPECT_EQ(shell_split("\"a\\\nb\""), Strings{"ab"});
  EXPECT_EQ(shell_split("trailing\\"), Strings{"trailing\\"});
  EXPECT_EQ(shell_split("-e 'A=it'\\''s'"), (Strings{"-e", "A=it's"}));
}

TEST(ShellSplit, UnterminatedQuote) {
  for (const char* text : {"'abc", "\"abc", "a 'b\"", "\"a\\\"", "ok 'x' \""}) {
    EXPECT_EQ(error_of([&] { shell_split(text); }), "ALICORN_CMD_ARGS: unterminated quote")
        << text;
  }
}

}  // namespace

namespace {
alicorn::Config load_args(std::vector<const char*> args) {
  args.insert(args.begin(), "alicorn");
  return alicorn::load_config(static_cast<int>(args.size()), args.data(), {}).config;
}
}  // namespace

TEST(ConfigWorkerClass, SyncWithThreadsMeansGthread) {
  EXPECT_EQ(load_args({"-k", "sync", "--threads", "4", "app:x"}).worker_class, "gthread");
  EXPECT_EQ(load_args({"--threads", "2", "app:x"}).worker_class, "gthread");
  EXPECT_EQ(load_args({"-k", "sync", "--threads", "1", "app:x"}).worker_class, "sync");
  EXPECT_EQ(load_args({"-k", "uv", "--threads", "4", "app:x"}).worker_class, "uv");
}
