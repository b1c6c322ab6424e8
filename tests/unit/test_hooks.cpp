// Server hooks (hooks.hpp) with a real interpreter: loading a module, the objects hooks receive,
// exceptions, and run_request_hook as the request path calls it. The only test in this binary
// that starts Python.
#include <gtest/gtest.h>
#include <unistd.h>

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "python/hooks.hpp"
#include "python/config_file.hpp"
#include "python/python_runtime.hpp"

using namespace alicorn;

namespace {

constexpr const char* kHooks = R"PY(
calls = []

def on_starting(server):
    calls.append(("on_starting", server.pid, server.num_workers, server.cfg.get("workers"),
                  list(server.address), server.proc_name))

def pre_fork(server, worker):
    calls.append(("pre_fork", worker.pid, worker.age, worker.index, worker.ppid))

def nworkers_changed(server, new_value, old_value):
    calls.append(("nworkers_changed", new_value, old_value))

def when_ready(server):
    raise ValueError("nope")

def pre_request(worker, req):
    req.mark = "kept"
    calls.append(("pre_request", worker.pid, req.method, req.path, req.query, req.uri,
                  req.version, sorted(req.headers), req.remote_addr))

def post_request(worker, req, environ, resp):
    calls.append(("post_request", getattr(req, "mark", None), environ is req.environ, resp.status,
                  resp.status_code, resp.headers, resp.sent))
)PY";

class Hooks : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::filesystem::temp_directory_path() / ("alicorn-hooks-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    FILE* f = std::fopen((dir_ / "unit_hooks.py").c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(kHooks, f);
    std::fclose(f);
    python::InitOptions opts;
    opts.argv = {"alicorn"};
    opts.path_prepend = {dir_.string()};
    python::initialize(opts);  // the GIL stays with this thread
  }
  static void TearDownTestSuite() { std::filesystem::remove_all(dir_); }

  // repr(unit_hooks.calls), then clears it.
  static std::string calls() {
    PyObject* mod = PyImport_ImportModule("unit_hooks");
    EXPECT_NE(mod, nullptr);
    PyObject* list = PyObject_GetAttrString(mod, "calls");
    PyObject* r = PyObject_Repr(list);
    std::string out = PyUnicode_AsUTF8(r);
    PyList_SetSlice(list, 0, PyList_GET_SIZE(list), nullptr);
    Py_DECREF(r);
    Py_DECREF(list);
    Py_DECREF(mod);
    return out;
  }

  static std::filesystem::path dir_;
};
std::filesystem::path Hooks::dir_;

TEST_F(Hooks, LoadsAndCallsWithUsefulObjects) {
  EXPECT_THROW(hooks::load("no_such_hooks_mod_xyz"), std::runtime_error);
  EXPECT_FALSE(hooks::loaded());
  EXPECT_TRUE(hooks::call_server("on_starting"));  // nothing loaded: a no-op

  hooks::load("unit_hooks");
  ASSERT_TRUE(hooks::loaded());
  EXPECT_TRUE(hooks::defined("pre_fork"));
  EXPECT_FALSE(hooks::defined("on_exit"));
  EXPECT_TRUE(hooks::has_request_hooks());

  hooks::ServerState s;
  s.pid = 42;
  s.num_workers = 3;
  s.proc_name = "site";
  s.cfg_json = R"({"workers": 3, "bind": ["127.0.0.1:1"]})";
  s.addresses = {"http://127.0.0.1:1"};
  hooks::update_server(s);
  EXPECT_TRUE(hooks::call_server("on_starting"));
  EXPECT_EQ(calls(), "[('on_starting', 42, 3, 3, ['http://127.0.0.1:1'], 'site')]");

  PyObject* w = hooks::new_worker(7, 2, 42);
  ASSERT_NE(w, nullptr);
  EXPECT_TRUE(hooks::call_server_worker("pre_fork", w));
  EXPECT_TRUE(hooks::call_nworkers_changed(4, 3));
  EXPECT_EQ(calls(), "[('pre_fork', None, 7, 2, 42), ('nworkers_changed', 4, 3)]");

  // An exception is logged, reported as false, and leaves no Python error behind.
  EXPECT_FALSE(hooks::call_server("when_ready"));
  EXPECT_EQ(PyErr_Occurred(), nullptr);
  EXPECT_TRUE(hooks::call_server("not_a_hook"));
  hooks::release_worker(w);
}

TEST_F(Hooks, RequestHooks) {
  hooks::load("unit_hooks");
  PyObject* w = hooks::new_worker(1, 0, 42);
  hooks::set_worker_pid(w, 99);
  hooks::set_current_worker(w);
  hooks::release_worker(w);

  PyObject* environ = Py_BuildValue(
      "{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "REQUEST_METHOD", "POST", "PATH_INFO", "/a b",
      "RAW_URI", "/a%20b?x=1", "QUERY_STRING", "x=1", "SERVER_PROTOCOL", "HTTP/1.0",
      "HTTP_X_THING", "v", "CONTENT_TYPE", "text/plain", "REMOTE_ADDR", "10.0.0.1");
  ASSERT_NE(environ, nullptr);
  EXPECT_TRUE(hooks::run_request_hook("pre_request", environ));
  std::vector<std::pair<std::string, std::string>> headers{{"Content-Type", "text/plain"}};
  EXPECT_TRUE(hooks::run_request_hook("post_request", environ, "201 Created", &headers, 5));
  EXPECT_EQ(calls(),
            "[('pre_request', 99, 'POST', '/a%20b', 'x=1', '/a%20b?x=1', (1, 0), "
            "[('CONTENT-TYPE', 'text/plain'), ('X-THING', 'v')], '10.0.0.1'), "
            "('post_request', 'kept', True, '201 Created', 201, "
            "[('Content-Type', 'text/plain')], 5)]");
  // A pending exception of the caller is left as it was.
  PyErr_SetString(PyExc_KeyError, "caller's");
  EXPECT_TRUE(hooks::run_request_hook("pre_request", environ));
  ASSERT_NE(PyErr_Occurred(), nullptr);
  EXPECT_TRUE(PyErr_ExceptionMatches(PyExc_KeyError));
  PyErr_Clear();
  calls();
  // No environ at all still gives the hook a request object; unknown names are ignored.
  EXPECT_TRUE(hooks::run_request_hook("post_request", nullptr, nullptr, nullptr, -1));
  EXPECT_TRUE(hooks::run_request_hook("bogus", environ));
  Py_DECREF(environ);
  EXPECT_NE(calls().find("('post_request'"), std::string::npos);

  hooks::unload();
  EXPECT_FALSE(hooks::has_request_hooks());
  EXPECT_TRUE(hooks::run_request_hook("pre_request", nullptr));
}

TEST_F(Hooks, LoadFromAFilePathAndReload) {
  std::string path = (dir_ / "file_hooks.py").string();
  FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("VERSION = 1\ndef on_exit(server):\n    pass\n", f);
  std::fclose(f);
  hooks::load(path);
  EXPECT_TRUE(hooks::defined("on_exit"));
  EXPECT_FALSE(hooks::defined("pre_request"));
  f = std::fopen(path.c_str(), "w");
  std::fputs("def on_reload(server):\n    pass\n", f);
  std::fclose(f);
  EXPECT_TRUE(hooks::reload(path));
  EXPECT_TRUE(hooks::defined("on_reload"));
  EXPECT_FALSE(hooks::defined("on_exit"));
  // A broken file keeps the previous module.
  f = std::fopen(path.c_str(), "w");
  std::fputs("def broken(:\n", f);
  std::fclose(f);
  EXPECT_FALSE(hooks::reload(path));
  EXPECT_TRUE(hooks::defined("on_reload"));
  hooks::unload();
}

// A Python config file's hooks (python/config_file.cpp): read, staged, committed; a --hooks
// module's function of the same name wins; a failed read leaves the committed hooks alone.
TEST_F(Hooks, ConfigFileHooks) {
  std::string path = (dir_ / "gunicorn_unit.conf.py").string();
  auto write = [&](const char* text) {
    FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(text, f);
    std::fclose(f);
  };
  write("import unit_hooks\nworkers = 3\n"
        "def on_exit(server):\n    unit_hooks.calls.append(('file_on_exit', server.num_workers))\n"
        "def pre_fork(server, worker):\n    unit_hooks.calls.append(('file_pre_fork',))\n"
        "def post_request(worker, req):\n    pass\n");
  FileNames names = python::read_config_file(path, std::nullopt, {"alicorn"});
  bool saw_workers = false;
  for (const auto& [name, value] : names)
    if (name == "workers") saw_workers = value.kind == FileValue::Kind::Int && value.i == 3;
  EXPECT_TRUE(saw_workers);
  EXPECT_FALSE(hooks::loaded());  // staged only
  python::commit_config_file(path);
  ASSERT_TRUE(hooks::loaded());
  EXPECT_TRUE(hooks::defined("on_exit"));
  EXPECT_TRUE(hooks::has_request_hooks());  // post_request, adapted from 2 arguments
  hooks::ServerState s;
  s.num_workers = 5;
  s.cfg_json = "{}";
  hooks::update_server(s);
  EXPECT_TRUE(hooks::call_server("on_exit"));
  EXPECT_EQ(calls(), "[('file_on_exit', 5)]");

  // --hooks wins for pre_fork; the file still gives on_exit.
  hooks::load("unit_hooks");
  PyObject* w = hooks::new_worker(1, 0, 1);
  EXPECT_TRUE(hooks::call_server_worker("pre_fork", w));
  hooks::release_worker(w);
  EXPECT_NE(calls().find("'pre_fork'"), std::string::npos);
  hooks::unload();

  // A file that raises: ConfigError with the traceback; the committed hooks stay.
  write("raise RuntimeError('boom')\n");
  try {
    python::read_config_file(path, std::nullopt, {"alicorn"});
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("RuntimeError: boom"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("Traceback"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(hooks::defined("on_exit"));
  // A hook of the wrong shape: one line naming it.
  write("def pre_fork(server):\n    pass\n");
  try {
    python::read_config_file(path, std::nullopt, {"alicorn"});
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("pre_fork: "), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find("Traceback"), std::string::npos) << e.what();
  }
  python::commit_config_file(std::nullopt);
  EXPECT_FALSE(hooks::loaded());
}

}  // namespace
