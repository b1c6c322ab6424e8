// Configuration: one table of settings drives the command line, ALICORN_CMD_ARGS, the YAML
// file, validation and --print-config (see config.hpp).
//
// Each layer is first read into raw text values per setting; the layers are merged (a higher
// layer that sets a setting replaces it whole, lists included); only then is every value
// converted and validated, so an error names the setting and where the value came from.
#include "config/config.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <variant>

#include <grp.h>
#include <pwd.h>

extern char** environ;

namespace alicorn {
namespace {

template <class... F>
struct overloaded : F... {
  using F::operator()...;
};
template <class... F>
overloaded(F...) -> overloaded<F...>;

using StringMap = std::map<std::string, std::string>;
using Field = std::variant<int Config::*, double Config::*, bool Config::*, std::string Config::*,
                           std::optional<std::string> Config::*, std::vector<std::string> Config::*,
                           std::vector<BindAddress> Config::*, StringMap Config::*>;

struct Setting {
  const char* name;     // the YAML key, and the name every error message starts with
  const char* flags;    // CLI11 names, or the positional's name
  Field field;
  const char* metavar;  // "" for a boolean flag
  const char* help;
  int min = 0;          // bounds for integers (min also for seconds)
  int max = std::numeric_limits<int>::max();
};

const Setting kSettings[] = {
    {"wsgi_app", "APP_MODULE", &Config::wsgi_app, "",
     "The WSGI application: MODULE:ATTRIBUTE, MODULE:FACTORY(ARGS), or MODULE meaning "
     "MODULE:application"},
    {"bind", "-b,--bind", &Config::bind, "ADDRESS",
     "Socket to bind: HOST:PORT, HOST, [IPv6]:PORT, unix:PATH or fd://N; repeatable "
     "[default: 127.0.0.1:8000, or 0.0.0.0:$PORT when $PORT is set]"},
    {"backlog", "--backlog", &Config::backlog, "INT",
     "Maximum number of pending connections [default: 2048]", 1},
    {"reuse_port", "--reuse-port", &Config::reuse_port, "",
     "Set SO_REUSEPORT on listening sockets"},
    {"workers", "-w,--workers", &Config::workers, "INT",
     "Number of worker processes [default: $WEB_CONCURRENCY or 1]", 1},
    {"worker_class", "-k,--worker-class", &Config::worker_class, "CLASS",
     "Worker class: a plugin name (sync, gthread, uv, ...) or a path to a .so [default: sync]"},
    {"threads", "--threads", &Config::threads, "INT",
     "Threads per worker, for threaded worker classes [default: 1]", 1},
    {"worker_connections", "--worker-connections", &Config::worker_connections, "INT",
     "Maximum simultaneous clients per worker, for event-loop worker classes [default: 1000]", 1},
    {"max_requests", "--max-requests", &Config::max_requests, "INT",
     "Restart a worker after this many requests; 0 never restarts [default: 0]"},
    {"max_requests_jitter", "--max-requests-jitter", &Config::max_requests_jitter, "INT",
     "Add a random 0..N to max_requests per worker, so workers do not restart together "
     "[default: 0]"},
    {"timeout", "-t,--timeout", &Config::timeout, "SECONDS",
     "Kill and replace a worker silent for this long; 0 disables [default: 30]"},
    {"graceful_timeout", "--graceful-timeout", &Config::graceful_timeout, "SECONDS",
     "On a graceful stop, time given to finish in-flight requests [default: 30]"},
    {"keepalive", "--keep-alive", &Config::keepalive, "SECONDS",
     "Wait this long for the next request on a keep-alive connection [default: 2]"},
    {"limit_request_line", "--limit-request-line", &Config::limit_request_line, "INT",
     "Maximum size of the request line in bytes, 0..8190; 0 = unlimited [default: 4094]", 0, 8190},
    {"limit_request_fields", "--limit-request-fields", &Config::limit_request_fields, "INT",
     "Maximum number of header fields, 0..32768 [default: 100]", 0, 32768},
    {"limit_request_field_size", "--limit-request-field_size,--limit-request-field-size",
     &Config::limit_request_field_size, "INT",
     "Maximum size of one header field in bytes; 0 = unlimited [default: 8190]"},
    {"limit_request_body", "--limit-request-body", &Config::limit_request_body, "BYTES",
     "Maximum size of a request body in bytes, answered with 413 beyond it; 0 = unlimited "
     "[default: 0]"},
    {"chdir", "--chdir", &Config::chdir, "DIR", "Change to this directory before loading the app"},
    {"pythonpath", "--pythonpath", &Config::pythonpath, "DIRS",
     "Comma-separated directories to add to the Python path; repeatable"},
    {"virtualenv", "--virtualenv", &Config::virtualenv, "DIR",
     "Python virtualenv to run the app in [default: $VIRTUAL_ENV]"},
    {"raw_env", "-e,--env", &Config::raw_env, "KEY=VALUE",
     "Set an environment variable for the app; repeatable"},
    {"pidfile", "-p,--pid", &Config::pidfile, "FILE", "Write the master's process id to this file"},
    {"preload_app", "--preload", &Config::preload_app, "",
     "Load the app in the master before forking the workers"},
    {"hooks", "--hooks", &Config::hooks, "MODULE",
     "Python module (dotted name or path to a .py file) defining server hooks: on_starting, "
     "when_ready, pre_fork, post_fork, post_worker_init, worker_int, worker_abort, pre_exec, "
     "pre_request, post_request, child_exit, worker_exit, nworkers_changed, on_reload, on_exit"},
    {"daemon", "-D,--daemon", &Config::daemon, "",
     "Detach the master from the terminal and run in the background"},
    {"user", "-u,--user", &Config::user, "USER",
     "Run the workers as this user (a name or a numeric uid) [default: the master's user]"},
    {"group", "-g,--group", &Config::group, "GROUP",
     "Run the workers as this group (a name or a numeric gid) [default: the user's primary "
     "group when --user is given, else the master's group]"},
    {"umask", "-m,--umask", &Config::umask, "MASK",
     "File mode mask for unix sockets created by the master, in octal (022, 0o22) [default: 0]"},
    {"initgroups", "--initgroups", &Config::initgroups, "",
     "Give the workers the supplementary groups of --user (default: no supplementary groups)"},
    {"proc_name", "-n,--name", &Config::proc_name, "NAME",
     "Name shown in the process titles 'alicorn: master [NAME]' [default: the app spec]"},
    {"accesslog", "--access-logfile", &Config::accesslog, "FILE",
     "Access log file, '-' for stdout [default: no access log]"},
    {"access_log_format", "--access-logformat", &Config::access_log_format, "FORMAT",
     "Access log line format, with Gunicorn's %(name)s atoms"},
    {"errorlog", "--error-logfile,--log-file", &Config::errorlog, "FILE",
     "Error log file, '-' for stderr [default: -]"},
    {"loglevel", "--log-level", &Config::loglevel, "LEVEL",
     "Error log level: debug, info, warning, error or critical [default: info]"},
    // Operations (core/src/metrics, core/src/control; docs/operations.md)
    {"max_worker_memory", "--max-worker-memory", &Config::max_worker_memory, "MB",
     "Replace a worker whose resident memory passes this many MiB, after its in-flight "
     "requests; 0 never does [default: 0]"},
    {"metrics_bind", "--metrics-bind", &Config::metrics_bind, "ADDRESS",
     "Serve Prometheus metrics for all workers at http://ADDRESS/metrics (HOST:PORT or "
     "unix:PATH), from the master [default: off]"},
    {"statsd_host", "--statsd-host", &Config::statsd_host, "STATSD_ADDR",
     "Send statsd metrics to HOST:PORT or unix:PATH over UDP [default: off]"},
    {"statsd_prefix", "--statsd-prefix", &Config::statsd_prefix, "STATSD_PREFIX",
     "Prefix for the statsd metric names (a dot is added) [default: none]"},
    {"dogstatsd_tags", "--dogstatsd-tags", &Config::dogstatsd_tags, "DOGSTATSD_TAGS",
     "Comma-separated DogStatsD tags added to every statsd metric, e.g. env:prod,app:shop"},
    {"enable_backlog_metric", "--enable-backlog-metric", &Config::enable_backlog_metric, "",
     "Send the listen backlog (connections waiting for accept) as gunicorn.backlog to statsd"},
    {"control_socket", "--control-socket", &Config::control_socket, "PATH",
     "Unix socket for `alicorn ctl`, relative to the working directory [default: alicorn.ctl]"},
    {"control_socket_mode", "--control-socket-mode", &Config::control_socket_mode, "MODE",
     "Permissions of the control socket, in octal [default: 0600]"},
    {"control_socket_disable", "--no-control-socket", &Config::control_socket_disable, "",
     "Do not open the control socket"},
    {"syslog", "--log-syslog", &Config::syslog, "",
     "Send the error log (and the access log, when on) to syslog as well"},
    {"syslog_addr", "--log-syslog-to", &Config::syslog_addr, "SYSLOG_ADDR",
     "Where syslog messages go: udp://HOST:PORT, tcp://HOST:PORT or unix://PATH "
     "[default: udp://localhost:514]"},
    {"syslog_prefix", "--log-syslog-prefix", &Config::syslog_prefix, "SYSLOG_PREFIX",
     "The name in the syslog tag gunicorn.NAME.error [default: the process name]"},
    {"syslog_facility", "--log-syslog-facility", &Config::syslog_facility, "SYSLOG_FACILITY",
     "Syslog facility: user, daemon, local0..local7, ... [default: user]"},
    {"disable_redirect_access_to_syslog", "--disable-redirect-access-to-syslog",
     &Config::disable_redirect_access_to_syslog, "", "Keep the access log out of syslog"},
    {"capture_output", "--capture-output", &Config::capture_output, "",
     "Send the processes' stdout and stderr (the app's print()) to the error log file"},
};

struct ActionFlag {
  const char* flags;
  Action action;
  const char* help;
};

// When several are given, the first in this table wins.
const ActionFlag kActions[] = {
    {"-v,--version", Action::Version, "Print the version and exit"},
    {"--list-workers", Action::ListWorkers, "List the worker classes found and exit"},
    {"--print-config", Action::PrintConfig, "Print every resolved setting as YAML and exit"},
    {"--check-config", Action::CheckConfig, "Check the configuration and the app, then exit"},
};

constexpr const char* kDescription =
    "alicorn: a pre-fork WSGI HTTP server with pluggable worker classes";
constexpr const char* kCmdArgsVar = "ALICORN_CMD_ARGS";

const Setting* find_setting(std::string_view name) {
  for (const auto& s : kSettings)
    if (name == s.name) return &s;
  return nullptr;
}

bool is_list(const Setting& s) {
  return std::holds_alternative<std::vector<std::string> Config::*>(s.field) ||
         std::holds_alternative<std::vector<BindAddress> Config::*>(s.field) ||
         std::holds_alternative<StringMap Config::*>(s.field);
}

// ---- raw layers ---------------------------------------------------------------------------

// The text a layer gave for one setting, before conversion.
struct Raw {
  std::vector<std::string> values;  // every occurrence in that layer, in order
  bool null = false;                // YAML null: unset an optional setting
  std::string source;               // "" for the command line, else the file or variable
};
using Layer = std::map<std::string, Raw>;  // by setting name

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string_view trim(std::string_view s) {
  auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
}

std::optional<bool> bool_word(const std::string& text) {
  std::string t = lower(text);
  if (t == "true" || t == "yes" || t == "on" || t == "1") return true;
  if (t == "false" || t == "no" || t == "off" || t == "0") return false;
  return std::nullopt;
}

// ---- conversion and validation ------------------------------------------------------------

[[noreturn]] void invalid(const Setting& s, const std::string& value, std::string_view problem,
                          std::string_view expected) {
  throw ConfigError(fmt::format("{}: '{}' {} (expected {})", s.name, value, problem, expected));
}

int to_int(const Setting& s, const std::string& v) {
  std::string expected = s.max == std::numeric_limits<int>::max()
                             ? fmt::format("an integer >= {}", s.min)
                             : fmt::format("an integer from {} to {}", s.min, s.max);
  long long n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec == std::errc::invalid_argument || end != v.data() + v.size())
    invalid(s, v, "is not an integer", expected);
  if (ec == std::errc::result_out_of_range || n < s.min || n > s.max)
    invalid(s, v, "is out of range", expected);
  return static_cast<int>(n);
}

double to_seconds(const Setting& s, const std::string& v) {
  std::string expected = fmt::format("a number of seconds >= {}", s.min);
  double d = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), d);
  if (ec != std::errc() || end != v.data() + v.size() || !std::isfinite(d))
    invalid(s, v, "is not a number", expected);
  if (d < s.min) invalid(s, v, "is out of range", expected);
  return d;
}

std::string to_text(const Setting& s, const std::string& v) {
  if (v.empty()) invalid(s, v, "is empty", "a non-empty value");
  return v;
}

std::pair<std::string, std::string> to_env_entry(const Setting& s, const std::string& v) {
  auto eq = v.find('=');
  if (eq == std::string::npos || eq == 0)
    invalid(s, v, "is not KEY=VALUE", "KEY=VALUE with a non-empty KEY");
  return {v.substr(0, eq), v.substr(eq + 1)};
}

void apply(Config& c, const Setting& s, const Raw& raw) {
  const std::string& last = raw.values.empty() ? "" : raw.values.back();
  std::visit(
      overloaded{
          [&](int Config::*f) {
            if (f == &Config::umask || f == &Config::control_socket_mode) {
              int mask = parse_umask(last);
              if (mask < 0)
                invalid(s, last, "is not a valid umask",
                        "an octal mode from 0 to 0777, e.g. 022 or 0o22");
              c.*f = mask;
            } else {
              c.*f = to_int(s, last);
            }
          },
          [&](double Config::*f) { c.*f = to_seconds(s, last); },
          [&](bool Config::*f) {
            auto b = bool_word(last);
            if (!b) invalid(s, last, "is not a boolean", "true or false");
            c.*f = *b;
          },
          [&](std::string Config::*f) {
            c.*f = to_text(s, last);
            if (f == &Config::loglevel) {
              c.*f = lower(c.*f);
              static const char* const levels[] = {"debug", "info", "warning", "error", "critical"};
              if (std::find(std::begin(levels), std::end(levels), c.*f) == std::end(levels))
                invalid(s, last, "is not a log level",
                        "one of debug, info, warning, error, critical");
            }
          },
          [&](std::optional<std::string> Config::*f) {
            if (raw.null) c.*f = std::nullopt;
            else c.*f = to_text(s, last);
            try {
              if (f == &Config::user && c.user) resolve_user(*c.user);
              if (f == &Config::group && c.group) resolve_group(*c.group);
            } catch (const ConfigError& e) {
              invalid(s, last, e.what(), f == &Config::user ? "a user name or a numeric uid"
                                                             : "a group name or a numeric gid");
            }
            if (f == &Config::wsgi_app)
              c.app = c.wsgi_app ? std::optional(parse_app_spec(*c.wsgi_app)) : std::nullopt;
          },
          [&](std::vector<std::string> Config::*f) {  // pythonpath: comma-separated entries
            (c.*f).clear();
            for (const auto& v : raw.values) {
              std::string_view rest = v;
              while (!rest.empty()) {
                auto comma = rest.find(',');
                auto item = trim(rest.substr(0, comma));
                if (!item.empty()) (c.*f).emplace_back(item);
                rest = comma == std::string_view::npos ? "" : rest.substr(comma + 1);
              }
            }
          },
          [&](std::vector<BindAddress> Config::*f) {
            if (raw.values.empty())
              throw ConfigError("bind: no address given (expected at least one HOST:PORT, "
                                "unix:PATH or fd://N)");
            (c.*f).clear();
            for (const auto& v : raw.values) (c.*f).push_back(parse_bind(v));
          },
          [&](StringMap Config::*f) {
            (c.*f).clear();
            for (const auto& v : raw.values) {
              auto [key, value] = to_env_entry(s, v);
              (c.*f)[key] = value;
            }
          },
      },
      s.field);
}

// ---- command line and ALICORN_CMD_ARGS ----------------------------------------------------

struct ParsedArgs {
  Layer layer;
  std::optional<std::string> config;  // -c/--config
  std::optional<Action> action;
  std::optional<std::string> help;    // CLI11's help text, when -h/--help was given
};

CLI::Option* single_value(CLI::Option* o) {
  return o->allow_extra_args(false)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
}

// `source` is "" for the command line, else the variable the words came from.
ParsedArgs parse_args(const std::string& program, std::vector<std::string> args,
                      const std::string& source) {
  CLI::App app{kDescription, program};
  app.allow_extras();
  app.set_help_flag("-h,--help", "Show this message and exit");
  app.footer(
      "Settings are also read from a YAML file (-c, keys are the setting names, e.g. workers: 4) "
      "and from $ALICORN_CMD_ARGS; the command line wins over both, the variable over the file.");

  auto* config = single_value(app.add_option("-c,--config", "YAML configuration file"))
                     ->type_name("FILE");
  std::vector<CLI::Option*> action_opts;
  for (const auto& a : kActions)
    action_opts.push_back(app.add_flag(a.flags)->description(a.help)->disable_flag_override());
  std::vector<CLI::Option*> setting_opts;
  for (const auto& s : kSettings) {
    bool flag = std::holds_alternative<bool Config::*>(s.field);
    CLI::Option* o = flag ? app.add_flag(s.flags) : single_value(app.add_option(s.flags));
    setting_opts.push_back(o->description(s.help)->type_name(s.metavar));
  }

  // CLI11 reads "--pid=" as "--pid" and takes the next word as its value: make it an empty
  // value instead, so validation refuses it rather than swallowing the next argument.
  for (size_t i = 0; i < args.size() && args[i] != "--"; ++i) {
    const std::string& a = args[i];
    if (a.size() > 3 && a.rfind("--", 0) == 0 && a.back() == '=') {
      const CLI::Option* o = app.get_option_no_throw(a.substr(0, a.size() - 1));
      if (o && o->get_type_size() != 0) {
        args[i].pop_back();
        args.insert(args.begin() + static_cast<std::ptrdiff_t>(++i), "");
      }
    }
  }

  std::string prefix = source.empty() ? "" : source + ": ";
  ParsedArgs out;
  std::reverse(args.begin(), args.end());  // CLI11 consumes the vector from the back
  try {
    app.parse(args);
  } catch (const CLI::CallForHelp&) {
    out.help = app.help();
    return out;
  } catch (const CLI::ParseError& e) {
    throw ConfigError(prefix + e.what());
  }

  for (const auto& extra : app.remaining()) {
    if (extra == "--") continue;
    if (extra.size() > 1 && extra[0] == '-')
      throw ConfigError(fmt::format("{}unknown option '{}' (see --help)", prefix, extra));
    throw ConfigError(fmt::format("{}unexpected argument '{}' (only one APP_MODULE is accepted)",
                                  prefix, extra));
  }
  if (config->count() > 0) out.config = config->results().back();
  for (size_t i = 0; i < std::size(kActions) && !out.action; ++i)
    if (action_opts[i]->count() > 0) out.action = kActions[i].action;
  for (size_t i = 0; i < std::size(kSettings); ++i)
    if (setting_opts[i]->count() > 0)
      out.layer[kSettings[i].name] = Raw{setting_opts[i]->results(), false, source};
  return out;
}

// ---- YAML file ----------------------------------------------------------------------------

const char* node_kind(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null: return "nothing (null)";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Map: return "a mapping";
    default: return "a single value";
  }
}

Layer read_yaml(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw ConfigError(fmt::format("{}: cannot read config file: it is a directory", path));
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw ConfigError(fmt::format("{}: cannot read config file: {}", path, std::strerror(errno)));
  std::ostringstream text;
  text << in.rdbuf();

  YAML::Node root;
  try {
    root = YAML::Load(text.str());
  } catch (const YAML::Exception& e) {
    throw ConfigError(fmt::format("{}: invalid YAML at line {}, column {}: {}", path,
                                  e.mark.line + 1, e.mark.column + 1, e.msg));
  }
  Layer layer;
  if (root.IsNull()) return layer;
  if (!root.IsMap())
    throw ConfigError(fmt::format("{}: expected a mapping of setting names to values, got {}",
                                  path, node_kind(root)));

  for (const auto& kv : root) {
    std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "";
    const Setting* s = find_setting(key);
    if (!s) {
      std::string known;
      for (const auto& k : kSettings) known += std::string(known.empty() ? "" : ", ") + k.name;
      std::string dashed = key;
      std::replace(dashed.begin(), dashed.end(), '-', '_');
      if (find_setting(dashed))
        throw ConfigError(
            fmt::format("{}: unknown setting '{}' (did you mean '{}'?)", path, key, dashed));
      throw ConfigError(
          fmt::format("{}: unknown setting '{}' (expected one of: {})", path, key, known));
    }
    const YAML::Node& v = kv.second;
    Raw raw{{}, false, path};
    auto wrong_type = [&](const char* expected) {
      return ConfigError(
          fmt::format("{}: {}: expected {}, got {}", path, key, expected, node_kind(v)));
    };
    bool list = is_list(*s);
    const char* expected = list ? "a value or a list of values" : "a single value";
    if (v.IsNull() && std::holds_alternative<std::optional<std::string> Config::*>(s->field)) {
      raw.null = true;
    } else if (v.IsScalar()) {
      raw.values.push_back(v.Scalar());
    } else if (list && v.IsSequence()) {
      for (const auto& item : v) {
        if (!item.IsScalar()) throw wrong_type("a list of single values");
        raw.values.push_back(item.Scalar());
      }
    } else if (v.IsMap() && std::holds_alternative<StringMap Config::*>(s->field)) {
      for (const auto& entry : v) {
        if (!entry.first.IsScalar() || !entry.second.IsScalar())
          throw wrong_type("a mapping of names to single values");
        raw.values.push_back(entry.first.Scalar() + "=" + entry.second.Scalar());
      }
    } else {
      throw wrong_type(std::holds_alternative<StringMap Config::*>(s->field)
                           ? "KEY=VALUE, a list of them, or a mapping"
                           : expected);
    }
    layer[s->name] = std::move(raw);
  }
  return layer;
}

// ---- defaults that come from the environment ----------------------------------------------

Layer default_layer(const Environment& env) {
  auto get = [&](const char* name) -> const std::string* {
    auto it = env.find(name);
    return it == env.end() || it->second.empty() ? nullptr : &it->second;
  };
  Layer layer;
  if (const auto* port = get("PORT")) layer["bind"] = Raw{{"0.0.0.0:" + *port}, false, "PORT"};
  else layer["bind"] = Raw{{"127.0.0.1:8000"}, false, ""};
  if (const auto* n = get("WEB_CONCURRENCY"))
    layer["workers"] = Raw{{*n}, false, "WEB_CONCURRENCY"};
  if (const auto* venv = get("VIRTUAL_ENV"))
    layer["virtualenv"] = Raw{{*venv}, false, "VIRTUAL_ENV"};
  return layer;
}

}  // namespace

Environment current_environment() {
  Environment env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view entry(*e);
    auto eq = entry.find('=');
    if (eq != std::string_view::npos) env.emplace(entry.substr(0, eq), entry.substr(eq + 1));
  }
  return env;
}

LoadedConfig load_config(int argc, const char* const* argv, const Environment& env) {
  std::string program = argc > 0 && argv[0] && *argv[0]
                            ? std::filesystem::path(argv[0]).filename().string()
                            : "alicorn";
  LoadedConfig out;
  // --help and --version answer at once: neither needs (nor should fail on) the rest.
  auto answers_at_once = [&](const ParsedArgs& p) {
    if (p.help) {
      out.action = Action::Help;
      out.help_text = *p.help;
    } else if (p.action == Action::Version) {
      out.action = Action::Version;
    }
    return p.help || p.action == Action::Version;
  };

  ParsedArgs cli = parse_args(program, {argv + std::min(argc, 1), argv + std::max(argc, 0)}, "");
  if (answers_at_once(cli)) return out;
  ParsedArgs from_env;
  if (auto it = env.find(kCmdArgsVar); it != env.end())
    from_env = parse_args(program, shell_split(it->second), kCmdArgsVar);
  if (!cli.action && answers_at_once(from_env)) return out;
  out.action = cli.action.value_or(from_env.action.value_or(Action::Serve));

  Config& config = out.config;
  config.config = cli.config ? cli.config : from_env.config;
  Layer merged = default_layer(env);
  Layer file = config.config ? read_yaml(*config.config) : Layer{};
  for (Layer* layer : {&file, &from_env.layer, &cli.layer})
    for (auto& [name, raw] : *layer) merged[name] = std::move(raw);

  for (const auto& s : kSettings) {
    auto it = merged.find(s.name);
    if (it == merged.end()) continue;
    try {
      apply(config, s, it->second);
    } catch (const ConfigError& e) {
      if (it->second.source.empty()) throw;
      throw ConfigError(it->second.source + ": " + e.what());
    }
  }
  // As in Gunicorn: the sync worker with more than one thread means the threaded worker.
  if (config.worker_class == "sync" && config.threads > 1) config.worker_class = "gthread";
  if (!config.app && (out.action == Action::Serve || out.action == Action::CheckConfig))
    throw ConfigError("wsgi_app: no application given (expected APP_MODULE on the command line "
                      "or wsgi_app in the config file, e.g. myproject.wsgi:application)");
  return out;
}

std::string to_yaml(const Config& config) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  for (const auto& s : kSettings) {
    out << YAML::Key << s.name << YAML::Value;
    std::visit(overloaded{
                   [&](int Config::*f) {
                     if (f == &Config::umask || f == &Config::control_socket_mode)
                       out << fmt::format("0{:03o}", config.*f);
                     else out << config.*f;
                   },
                   [&](double Config::*f) {  // shortest text that reads back as the same double
                     char buf[32];
                     auto [end, ec] = std::to_chars(buf, buf + sizeof buf, config.*f);
                     out << std::string(buf, ec == std::errc() ? end : buf);
                   },
                   [&](bool Config::*f) { out << config.*f; },
                   [&](std::string Config::*f) { out << config.*f; },
                   [&](std::optional<std::string> Config::*f) {
                     if (config.*f) out << *(config.*f);
                     else out << YAML::Null;
                   },
                   [&](std::vector<std::string> Config::*f) { out << config.*f; },
                   [&](std::vector<BindAddress> Config::*f) {
                     out << YAML::BeginSeq;
                     for (const auto& b : config.*f)  // the text as given, to read back equal
                       out << (b.spec.empty() ? b.to_string() : b.spec);
                     out << YAML::EndSeq;
                   },
                   [&](StringMap Config::*f) { out << config.*f; },
               },
               s.field);
  }
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

namespace {

std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) out += fmt::format("\\u{:04x}", c);
        else out += ch;
    }
  }
  return out + "\"";
}

std::string json_list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + json_string(items[i]);
  return out + "]";
}

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

std::string to_json(const Config& config) {
  std::string out = "{";
  bool first = true;
  for (const auto& s : kSettings) {
    out += first ? "" : ", ";
    first = false;
    out += json_string(s.name) + ": ";
    std::visit(overloaded{
                   [&](int Config::*f) { out += std::to_string(config.*f); },
                   [&](double Config::*f) {
                     char buf[32];
                     auto [end, ec] = std::to_chars(buf, buf + sizeof buf, config.*f);
                     out += std::string(buf, ec == std::errc() ? end : buf);
                   },
                   [&](bool Config::*f) { out += config.*f ? "true" : "false"; },
                   [&](std::string Config::*f) { out += json_string(config.*f); },
                   [&](std::optional<std::string> Config::*f) {
                     out += config.*f ? json_string(*(config.*f)) : "null";
                   },
                   [&](std::vector<std::string> Config::*f) { out += json_list(config.*f); },
                   [&](std::vector<BindAddress> Config::*f) {
                     std::vector<std::string> items;
                     for (const auto& b : config.*f) items.push_back(b.to_string());
                     out += json_list(items);
                   },
                   [&](StringMap Config::*f) {
                     out += "{";
                     bool first_entry = true;
                     for (const auto& [k, v] : config.*f) {
                       out += (first_entry ? "" : ", ") + json_string(k) + ": " + json_string(v);
                       first_entry = false;
                     }
                     out += "}";
                   },
               },
               s.field);
  }
  return out + "}";
}

ResolvedUser resolve_user(const std::string& spec) {
  ResolvedUser out;
  passwd pw{};
  passwd* found = nullptr;
  std::vector<char> buf(16384);
  if (all_digits(spec)) {
    unsigned long id = std::stoul(spec);
    if (id > 0xfffffffeUL) throw ConfigError("is out of range");
    out.uid = static_cast<unsigned>(id);
    out.primary_gid = static_cast<unsigned>(::getgid());
    if (::getpwuid_r(static_cast<uid_t>(id), &pw, buf.data(), buf.size(), &found) == 0 && found) {
      out.name = found->pw_name;
      out.primary_gid = found->pw_gid;
    }
    return out;
  }
  if (::getpwnam_r(spec.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr)
    throw ConfigError("is not a known user");
  out.uid = found->pw_uid;
  out.primary_gid = found->pw_gid;
  out.name = found->pw_name;
  return out;
}

unsigned resolve_group(const std::string& spec) {
  if (all_digits(spec)) {
    unsigned long id = std::stoul(spec);
    if (id > 0xfffffffeUL) throw ConfigError("is out of range");
    return static_cast<unsigned>(id);
  }
  group gr{};
  group* found = nullptr;
  std::vector<char> buf(16384);
  if (::getgrnam_r(spec.c_str(), &gr, buf.data(), buf.size(), &found) != 0 || found == nullptr)
    throw ConfigError("is not a known group");
  return found->gr_gid;
}

int parse_umask(const std::string& text) {
  std::string t(trim(text));
  if (t.empty()) return -1;
  int base = 10;
  size_t start = 0;
  if (t.size() > 2 && t[0] == '0' && (t[1] == 'o' || t[1] == 'O')) base = 8, start = 2;
  else if (t.size() > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X')) base = 16, start = 2;
  else if (t.size() > 1 && t[0] == '0') base = 8, start = 1;
  long value = 0;
  auto [end, ec] = std::from_chars(t.data() + start, t.data() + t.size(), value, base);
  if (ec != std::errc() || end != t.data() + t.size() || value < 0 || value > 0777) return -1;
  return static_cast<int>(value);
}

std::vector<SettingInfo> describe_settings() {
  std::vector<SettingInfo> out;
  for (const auto& s : kSettings) out.push_back({s.name, s.flags, s.metavar, s.help});
  return out;
}

std::vector<std::string> shell_split(const std::string& text) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  auto unterminated = [] { return ConfigError("ALICORN_CMD_ARGS: unterminated quote"); };
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\\' && i + 1 < text.size() && text[i + 1] == '\n') {  // line continuation
      ++i;
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(std::move(word)), word.clear();
      in_word = false;
      continue;
    }
    in_word = true;
    if (c == '\\') {
      word += i + 1 < text.size() ? text[++i] : '\\';
    } else if (c == '\'') {
      auto close = text.find('\'', i + 1);
      if (close == std::string::npos) throw unterminated();
      word.append(text, i + 1, close - i - 1);
      i = close;
    } else if (c == '"') {
      for (++i;; ++i) {
        if (i >= text.size()) throw unterminated();
        if (text[i] == '"') break;
        if (text[i] == '\\' && i + 1 < text.size() &&
            std::string_view("\\\"$`\n").find(text[i + 1]) != std::string_view::npos) {
          if (text[++i] == '\n') continue;
        }
        word += text[i];
      }
    } else {
      word += c;
    }
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

}  // namespace alicorn
