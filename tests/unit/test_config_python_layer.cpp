// The Python config-file layer of load_config, with a fake reader standing in for the
// interpreter: conversion of Python values per setting type, precedence with
// GUNICORN_CMD_ARGS, sources for --print-config, typo warnings, worker class names.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "config/config.hpp"

using namespace alicorn;

namespace {

FileValue str(std::string s) {
  FileValue v;
  v.kind = FileValue::Kind::Str;
  v.text = std::move(s);
  return v;
}
FileValue num(long long i) {
  FileValue v;
  v.kind = FileValue::Kind::Int;
  v.i = i;
  return v;
}
FileValue flt(double f) {
  FileValue v;
  v.kind = FileValue::Kind::Float;
  v.f = f;
  return v;
}
FileValue boolean(bool b) {
  FileValue v;
  v.kind = FileValue::Kind::Bool;
  v.b = b;
  return v;
}
FileValue list(std::vector<FileValue> items) {
  FileValue v;
  v.kind = FileValue::Kind::List;
  v.items = std::move(items);
  return v;
}
FileValue callable(std::string repr) {
  FileValue v;
  v.kind = FileValue::Kind::Callable;
  v.text = std::move(repr);
  return v;
}

class PythonLayer : public ::testing::Test {
 protected:
  void SetUp() override {
    // The files exist (load_config checks that before running one), in a folder of our own.
    old_cwd_ = std::filesystem::current_path();
    std::string tmpl = (std::filesystem::temp_directory_path() / "alicorn-pylayer-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    std::filesystem::current_path(dir_);
    for (const char* name : {"c.py", "conf.py", "from_env.py"}) std::ofstream(name) << "\n";
    set_python_config_reader([this](const std::string& spec, const std::optional<std::string>& venv,
                                    const std::vector<std::string>&) {
      specs.push_back(spec);
      venvs.push_back(venv);
      return names;
    });
  }
  void TearDown() override {
    set_python_config_reader(nullptr);
    std::filesystem::current_path(old_cwd_);
    std::filesystem::remove_all(dir_);
  }
  std::filesystem::path old_cwd_, dir_;

  LoadedConfig load(std::vector<std::string> args, const Environment& env = {}) {
    std::vector<const char*> argv{"alicorn"};
    for (const auto& a : args) argv.push_back(a.c_str());
    return load_config(static_cast<int>(argv.size()), argv.data(), env);
  }
  std::string error(std::vector<std::string> args, const Environment& env = {}) {
    try {
      load(std::move(args), env);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "<no error>";
  }

  FileNames names;
  std::vector<std::string> specs;
  std::vector<std::optional<std::string>> venvs;
};

TEST_F(PythonLayer, ValuesConvertedPerSettingType) {
  names = {{"bind", str("0.0.0.0:9000")},
           {"workers", num(4)},
           {"threads", str("3")},  // Gunicorn takes digits in a string too
           {"timeout", flt(2.5)},
           {"preload_app", boolean(true)},
           {"pythonpath", list({str("/a"), str("/b")})},
           {"raw_env", list({str("A=1"), str("B=2")})},
           {"umask", num(18)},  // 0o22 written as a Python int
           {"worker_class", str("gunicorn.workers.gthread.ThreadWorker")},
           {"wsgi_app", str("site.wsgi:application")},
           {"post_fork", callable("<function post_fork>")},
           {"helper", num(1)}};
  LoadedConfig r = load({"-c", "conf.py"});
  const Config& c = r.config;
  EXPECT_EQ(specs, std::vector<std::string>{"conf.py"});
  EXPECT_TRUE(c.config_is_python);
  EXPECT_EQ(c.bind.at(0).to_string(), "0.0.0.0:9000");
  EXPECT_EQ(c.workers, 4);
  EXPECT_EQ(c.threads, 3);
  EXPECT_EQ(c.timeout, 2.5);
  EXPECT_TRUE(c.preload_app);
  EXPECT_EQ(c.pythonpath, (std::vector<std::string>{"/a", "/b"}));
  EXPECT_EQ(c.raw_env.at("B"), "2");
  EXPECT_EQ(c.umask, 18);
  EXPECT_EQ(c.worker_class, "gthread");
  EXPECT_EQ(c.app->module, "site.wsgi");
  EXPECT_EQ(c.server_hooks.at("post_fork"), "<function post_fork>");
  EXPECT_EQ(r.sources.at("workers"), "file conf.py");
  EXPECT_TRUE(r.warnings.empty());
}

TEST_F(PythonLayer, WrongTypesNameTheSettingAndTheFile) {
  names = {{"workers", str("many")}};
  EXPECT_EQ(error({"-c", "c.py", "m:a"}),
            "c.py: workers: 'many' is not an integer (expected an integer >= 1)");
  names = {{"timeout", list({num(3)})}};
  EXPECT_EQ(error({"-c", "c.py", "m:a"}),
            "c.py: timeout: expected a number of seconds, got a list");
  names = {{"preload_app", num(1)}};
  EXPECT_NE(error({"-c", "c.py", "m:a"}).find("preload_app: expected True or False, got an int"),
            std::string::npos);
  names = {{"workers", callable("<function f>")}};
  EXPECT_NE(error({"-c", "c.py", "m:a"}).find("workers: expected an integer, got a callable"),
            std::string::npos);
  names = {{"on_starting", num(5)}};
  EXPECT_NE(error({"-c", "c.py", "m:a"}).find("on_starting: expected a callable"),
            std::string::npos);
}

TEST_F(PythonLayer, PrecedenceFileThenGunicornThenAlicornThenCli) {
  names = {{"workers", num(3)}, {"timeout", num(7)}, {"backlog", num(50)},
           {"keepalive", num(4)}, {"max_requests", num(5)}};
  LoadedConfig r = load({"-c", "c.py", "--backlog", "200", "m:a"},
                        {{"GUNICORN_CMD_ARGS", "--timeout 9 --backlog 100 --keep-alive 8"},
                         {"ALICORN_CMD_ARGS", "--keep-alive 6"}});
  EXPECT_EQ(r.config.workers, 3);
  EXPECT_EQ(r.config.timeout, 9);
  EXPECT_EQ(r.config.keepalive, 6);
  EXPECT_EQ(r.config.backlog, 200);
  EXPECT_EQ(r.sources.at("workers"), "file c.py");
  EXPECT_EQ(r.sources.at("timeout"), "env GUNICORN_CMD_ARGS");
  EXPECT_EQ(r.sources.at("keepalive"), "env ALICORN_CMD_ARGS");
  EXPECT_EQ(r.sources.at("backlog"), "cli");
  EXPECT_EQ(r.sources.count("graceful_timeout"), 0u);
}

TEST_F(PythonLayer, ConfigFileFromGunicornCmdArgsAndYamlByExtension) {
  names = {{"workers", num(2)}};
  EXPECT_EQ(load({"m:a"}, {{"GUNICORN_CMD_ARGS", "-c from_env.py"}}).config.workers, 2);
  EXPECT_EQ(specs.back(), "from_env.py");
  // A .yaml path is never handed to Python.
  EXPECT_NE(error({"-c", "/nonexistent/x.yml", "m:a"}).find("cannot read config file"),
            std::string::npos);
  EXPECT_EQ(specs.size(), 1u);
}

TEST_F(PythonLayer, InterpreterStartsInTheVirtualenvNamedSoFar) {
  load({"-c", "c.py", "m:a"}, {{"VIRTUAL_ENV", "/venv/env"}});
  load({"-c", "c.py", "--virtualenv", "/venv/cli", "m:a"}, {{"VIRTUAL_ENV", "/venv/env"}});
  ASSERT_EQ(venvs.size(), 2u);
  EXPECT_EQ(venvs[0], "/venv/env");
  EXPECT_EQ(venvs[1], "/venv/cli");
}

TEST_F(PythonLayer, CheckAndPrintConfigFromTheFile) {
  names = {{"check_config", boolean(true)}};
  EXPECT_EQ(load({"-c", "c.py", "m:a"}).action, Action::CheckConfig);
  EXPECT_EQ(load({"-c", "c.py", "--print-config", "m:a"}).action, Action::PrintConfig);
  names = {{"print_config", boolean(false)}};
  EXPECT_EQ(load({"-c", "c.py", "m:a"}).action, Action::Serve);
}

TEST_F(PythonLayer, TypoWarnings) {
  names = {{"worker", num(2)}, {"timout", num(3)}, {"bind_address", str("x")},
           {"db_host", str("x")}};
  LoadedConfig r = load({"-c", "c.py", "m:a"});
  ASSERT_EQ(r.warnings.size(), 2u);
  EXPECT_NE(r.warnings[0].find("'worker' is not a setting; did you mean 'workers'?"),
            std::string::npos);
  EXPECT_NE(r.warnings[1].find("did you mean 'timeout'?"), std::string::npos);
}

TEST_F(PythonLayer, UnsupportedValuesRefusedDefaultsAccepted) {
  names = {{"strip_header_spaces", boolean(false)}, {"header_map", str("drop")},
           {"logger_class", str("gunicorn.glogging.Logger")}};
  EXPECT_EQ(error({"-c", "c.py", "m:a"}), "<no error>");
  names = {{"strip_header_spaces", boolean(true)}};
  EXPECT_NE(error({"-c", "c.py", "m:a"}).find("c.py: strip_header_spaces: 'true' is not supported"),
            std::string::npos);
  EXPECT_NE(error({"--spew", "m:a"}).find("sys.settrace"), std::string::npos);
}

TEST_F(PythonLayer, WithoutAReaderAPythonFileIsRefused) {
  set_python_config_reader(nullptr);
  EXPECT_NE(error({"-c", "c.py", "m:a"}).find("need the embedded interpreter"), std::string::npos);
  EXPECT_NE(error({"-c", "missing.py", "m:a"}).find("missing.py: cannot read config file: it does "
                                                    "not exist"),
            std::string::npos);
}

TEST(WorkerClassNames, GunicornNamesMapOrAreRefused) {
  EXPECT_EQ(map_worker_class("gunicorn.workers.sync.SyncWorker"), "sync");
  EXPECT_EQ(map_worker_class("egg:gunicorn#gthread"), "gthread");
  EXPECT_EQ(map_worker_class("gthread"), "gthread");
  EXPECT_EQ(map_worker_class("uv"), "uv");
  EXPECT_EQ(map_worker_class("/opt/my.so"), "/opt/my.so");
  auto refusal = [](const char* name) {
    try {
      map_worker_class(name);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("<no error>");
  };
  EXPECT_NE(refusal("gevent").find("use uv"), std::string::npos);
  EXPECT_NE(refusal("gunicorn.workers.ggevent.GeventWorker").find("use uv"), std::string::npos);
  EXPECT_NE(refusal("eventlet").find("use uv"), std::string::npos);
  EXPECT_NE(refusal("tornado").find("use uv"), std::string::npos);
  EXPECT_NE(refusal("uvicorn.workers.UvicornWorker").find("ASGI"), std::string::npos);
}

TEST(ClosestSetting, Suggestions) {
  EXPECT_EQ(closest_setting("worker"), "workers");
  EXPECT_EQ(closest_setting("max-requests"), "max_requests");
  EXPECT_EQ(closest_setting("preload"), "preload_app");
  EXPECT_EQ(closest_setting("db_url"), "");
  EXPECT_EQ(closest_setting("app"), "");
}

}  // namespace
