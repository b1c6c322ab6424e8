// Configuration: Gunicorn's setting names and flags, resolved from four layers.
//
// Precedence, lowest first: built-in defaults < YAML file (-c/--config) < ALICORN_CMD_ARGS
// (shell-split, same flags as the command line) < the command line. A YAML file uses the
// setting names as keys (`bind: ["127.0.0.1:8000"]`, `workers: 2`, `worker_class: sync`,
// `wsgi_app: hello:app`). Every value is validated before anything is forked; a bad one is
// refused with a ConfigError whose message names the setting and what it accepts.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "config/app_spec.hpp"
#include "net/bind.hpp"

namespace alicorn {

// Thrown for every invalid setting, unknown flag or unreadable config file. what() is the
// message shown to the user, e.g. "workers: 'abc' is not an integer (expected >= 1)".
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Config {
  // Server socket
  std::vector<BindAddress> bind;        // --bind/-b, repeatable; default 127.0.0.1:8000
                                        // (0.0.0.0:$PORT when $PORT is set, as Gunicorn)
  int backlog = 2048;                   // --backlog
  bool reuse_port = false;              // --reuse-port

  // Worker processes
  int workers = 1;                      // --workers/-w; default $WEB_CONCURRENCY or 1
  std::string worker_class = "sync";    // --worker-class/-k: a name or a path to a .so
  int threads = 1;                      // --threads
  int worker_connections = 1000;        // --worker-connections
  int max_requests = 0;                 // --max-requests (0 = never recycle)
  int max_requests_jitter = 0;          // --max-requests-jitter
  double timeout = 30;                  // --timeout/-t, seconds (0 = never)
  double graceful_timeout = 30;         // --graceful-timeout, seconds
  double keepalive = 2;                 // --keep-alive, seconds

  // Security limits
  int limit_request_line = 4094;        // --limit-request-line (0 = unlimited, max 8190)
  int limit_request_fields = 100;       // --limit-request-fields (max 32768)
  int limit_request_field_size = 8190;  // --limit-request-field_size (0 = unlimited)
  int limit_request_body = 0;           // --limit-request-body, bytes (0 = unlimited)

  // At the edge: the proxy in front (docs/deployment.md; checked by net/edge_settings.cpp)
  std::vector<std::string> forwarded_allow_ips{"127.0.0.1", "::1"};  // --forwarded-allow-ips;
                                        // default $FORWARDED_ALLOW_IPS; addresses, CIDR, *
  std::map<std::string, std::string> secure_scheme_headers{  // YAML mapping, --secure-scheme-header
      {"X-FORWARDED-PROTOCOL", "ssl"}, {"X-FORWARDED-PROTO", "https"}, {"X-FORWARDED-SSL", "on"}};
  std::vector<std::string> forwarder_headers{"SCRIPT_NAME", "PATH_INFO"};  // --forwarder-headers
  std::optional<std::string> root_path; // --root-path: SCRIPT_NAME [default: $SCRIPT_NAME]
  std::string proxy_protocol = "off";   // --proxy-protocol[=MODE]: off, v1, v2, auto (bare: auto)
  std::vector<std::string> proxy_allow_ips{"127.0.0.1", "::1"};  // --proxy-allow-from

  // Logging through Python's logging (logconfig*; python/py_logging.cpp): when one is set, the
  // error and access logs go to the loggers gunicorn.error and gunicorn.access.
  std::optional<std::string> logconfig;       // --log-config: an ini file for fileConfig
  std::optional<std::string> logconfig_dict;  // a dict for dictConfig, held as JSON text
  std::optional<std::string> logconfig_json;  // --log-config-json: a JSON file for dictConfig
  // uwsgi protocol (nginx uwsgi_pass; http/uwsgi_parser.hpp, checked by net/uwsgi_settings.cpp)
  std::string protocol = "http";        // --protocol: http or uwsgi
  std::vector<std::string> uwsgi_allow_ips{"127.0.0.1", "::1"};  // --uwsgi-allow-ips

  // Code reload (master/reloader.cpp): replace the workers when the app's source changes
  bool reload = false;                  // --reload
  std::string reload_engine = "auto";   // --reload-engine: auto (= inotify), inotify, poll
  std::vector<std::string> reload_extra_files;  // --reload-extra-file, repeatable
  // TLS in the core (net/tls.cpp builds the context, http/session_tls.cpp the connections)
  std::optional<std::string> certfile;  // --certfile: PEM certificate (chain); TLS when set
  std::optional<std::string> keyfile;   // --keyfile: PEM private key [default: in certfile]
  std::optional<std::string> ca_certs;  // --ca-certs: CA bundle for client certificates
  int cert_reqs = 0;                    // --cert-reqs: 0 none, 1 optional, 2 required
  std::optional<std::string> ciphers;   // --ciphers: OpenSSL cipher list [default: OpenSSL's]
  std::string ssl_version = "TLS_SERVER";  // --ssl-version: minimum version (TLS 1.2 default)
  bool do_handshake_on_connect = false; // --do-handshake-on-connect: no-op
  bool suppress_ragged_eofs = true;     // --suppress-ragged-eofs

  // Server mechanics / Python
  std::optional<std::string> chdir;     // --chdir
  std::vector<std::string> pythonpath;  // --pythonpath, comma-separated, repeatable
  std::optional<std::string> virtualenv;// --virtualenv; default $VIRTUAL_ENV
  std::map<std::string, std::string> raw_env;  // --env/-e KEY=VALUE, repeatable
  std::optional<std::string> pidfile;   // --pid/-p
  bool preload_app = false;             // --preload
  std::optional<std::string> wsgi_app;  // positional APP_MODULE, or `wsgi_app:` in YAML
  std::optional<AppSpec> app;           // parsed wsgi_app (set when wsgi_app is)
  std::optional<std::string> hooks;     // --hooks: a Python module (name or .py path) whose
                                        // functions named like Gunicorn's server hooks are called

  // Process: daemon, privileges, names
  bool daemon = false;                  // --daemon/-D: detach from the terminal
  std::optional<std::string> user;      // --user/-u: workers run as this user (name or uid)
  std::optional<std::string> group;     // --group/-g: workers run as this group (name or gid)
  int umask = 0;                        // --umask/-m: file mode mask for unix sockets (octal)
  bool initgroups = false;              // --initgroups: workers get the user's supplementary groups
  std::optional<std::string> proc_name; // --name/-n: process title name [default: the app spec]

  // Logging
  std::optional<std::string> accesslog;  // --access-logfile ("-" = stdout); none by default
  std::string access_log_format =        // --access-logformat
      R"(%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s")";
  std::string errorlog = "-";            // --error-logfile/--log-file ("-" = stderr)
  std::string loglevel = "info";         // --log-level: debug, info, warning, error, critical

  std::optional<std::string> config;     // --config/-c: the config file that was read (YAML,
                                         // Python, or python:MODULE); ./gunicorn.conf.py if any
  bool config_is_python = false;         // it was run as Python, in the master

  // More of Gunicorn's settings (docs/configuration.md gives each one's status)
  std::optional<std::string> worker_tmp_dir;  // --worker-tmp-dir: validated, else a no-op
  std::optional<std::string> tmp_upload_dir;  // validated, else a no-op (unused in Gunicorn too)
  std::optional<std::string> paste;      // --paste/--paster: PasteDeploy ini naming the app
  std::map<std::string, std::string> raw_paste_global_conf;  // --paste-global KEY=VALUE
  bool sendfile = true;                  // --no-sendfile turns it off
  bool spew = false;                     // --spew: refused (see configuration.md)
  bool enable_stdio_inheritance = false; // -R: a no-op (stdio is inherited unless --daemon)
  bool strip_header_spaces = false;      // only the RFC 9112 behaviour (false) is accepted
  bool permit_obsolete_folding = false;  // likewise
  bool casefold_http_method = false;     // upper-case the method (with the next one)
  bool permit_unconventional_http_method = false;   // any token method
  bool permit_unconventional_http_version = false;  // likewise
  bool tolerate_dangerous_framing = false;          // likewise
  std::string header_map = "drop";       // --header-map: drop, refuse (400) or dangerous
  std::string default_proc_name = "";    // the process name when proc_name is unset
  // The default (or "simple", "glogging.Logger") is the native logger; any other dotted path
  // is a Python class with glogging.Logger's interface (python/py_logging.cpp).
  std::string logger_class = "gunicorn.glogging.Logger";
  // Server hooks defined in a Python config file: hook name -> the callable's repr.
  std::map<std::string, std::string> server_hooks;
  // Operations (core/src/metrics, core/src/control; docs/operations.md)
  int max_worker_memory = 0;                   // --max-worker-memory MB: replace a worker past
                                               // this RSS, gracefully (0 = never)
  std::optional<std::string> metrics_bind;     // --metrics-bind: Prometheus endpoint address
  std::optional<std::string> statsd_host;      // --statsd-host HOST:PORT or unix:PATH
  std::optional<std::string> statsd_prefix;    // --statsd-prefix
  std::optional<std::string> dogstatsd_tags;   // --dogstatsd-tags: comma-separated key:value
  bool enable_backlog_metric = false;          // --enable-backlog-metric
  std::string control_socket = "alicorn.ctl";  // --control-socket PATH
  int control_socket_mode = 0600;              // --control-socket-mode (octal)
  bool control_socket_disable = false;         // --no-control-socket
  bool syslog = false;                         // --log-syslog
  std::string syslog_addr = "udp://localhost:514";  // --log-syslog-to
  std::optional<std::string> syslog_prefix;    // --log-syslog-prefix
  std::string syslog_facility = "user";        // --log-syslog-facility
  bool disable_redirect_access_to_syslog = false;  // --disable-redirect-access-to-syslog
  bool capture_output = false;                 // --capture-output
  // Features not served yet (config.cpp, kLaterSettings): refused when turned on, their tuning
  // knobs accepted as no-ops.
  std::vector<std::string> http_protocols{"h1"};  // --http-protocols: h1 only
  int http2_max_concurrent_streams = 100;
  int http2_initial_window_size = 65535;
  int http2_max_frame_size = 16384;
  int http2_max_header_list_size = 65536;
  std::string asgi_loop = "auto";
  std::string asgi_lifespan = "auto";
  int asgi_disconnect_grace_period = 3;
  std::vector<std::string> dirty_apps;            // refused when set
  int dirty_workers = 0;                          // refused above 0
  int dirty_timeout = 300;
  int dirty_threads = 1;
  int dirty_graceful_timeout = 30;

  bool operator==(const Config&) const = default;
};

// What the command line asked for besides serving.
enum class Action {
  Serve,        // the default
  Version,      // --version / -v: print "alicorn <version>" and exit 0
  Help,         // --help / -h: usage on stdout, exit 0
  CheckConfig,  // --check-config: validate (and load the app), exit 0 or 1
  PrintConfig,  // --print-config: print every resolved setting as YAML, exit 0
  ListWorkers   // --list-workers: list the worker plugins found, exit 0
};

struct LoadedConfig {
  Config config;
  Action action = Action::Serve;
  std::string help_text;  // filled for Action::Help
  // Where each setting's value came from: "default", "file <path>", "env GUNICORN_CMD_ARGS",
  // "env PORT", "cli". Settings missing here have their built-in default.
  std::map<std::string, std::string> sources;
  // Names in a config file that look like typos of a setting ("workers" for "worker"): one
  // line each, logged as warnings once the logs are set up.
  std::vector<std::string> warnings;
};

// A value read from a Python config file, converted from the Python object.
struct FileEntry;
struct FileValue {
  enum class Kind { None, Bool, Int, Float, Str, List, Dict, Callable, Other };
  Kind kind = Kind::None;
  bool b = false;
  long long i = 0;
  double f = 0;
  std::string text;       // Str: the string; Callable and Other: repr()
  std::string type_name;  // the Python type's name, for messages
  std::vector<FileValue> items;                            // List (list, tuple, set)
  std::vector<FileEntry> entries;  // Dict (keys as str())
};
// One dict entry. A struct, not std::pair: a pair of an incomplete FileValue inside FileValue is
// refused by clang with libstdc++ (the fuzz build).
struct FileEntry {
  std::string first;
  FileValue second;
  FileEntry(std::string key, FileValue value) : first(std::move(key)), second(std::move(value)) {}
};
using FileNames = std::vector<std::pair<std::string, FileValue>>;

// Runs a Python config file (a path, or python:MODULE) and gives its module-level names. Set by
// the embedding side (python/config_file.cpp); `virtualenv` is the one resolved so far (command
// line, environment) for starting the interpreter. Throws ConfigError (with the traceback).
using PythonConfigReader = std::function<FileNames(
    const std::string& spec, const std::optional<std::string>& virtualenv,
    const std::vector<std::string>& argv)>;
void set_python_config_reader(PythonConfigReader reader);

// The worker class a name means: Gunicorn's class paths and egg: names map to ours ("sync",
// "gthread"); gevent, eventlet, tornado and the uvicorn workers throw ConfigError naming the
// closest alicorn worker; anything else is returned as given (a plugin name or a .so path).
std::string map_worker_class(const std::string& name);

// Close matches among the setting names, for "did you mean" warnings ("" when none).
std::string closest_setting(const std::string& name);

// The process environment as a map (so tests can pass their own).
using Environment = std::map<std::string, std::string>;
Environment current_environment();

// Resolve the four layers. argv[0] is the program name. Throws ConfigError.
LoadedConfig load_config(int argc, const char* const* argv, const Environment& env);

// Render every setting as YAML that load_config would read back to the same Config. With
// `sources`, each line ends with a comment saying where the value came from.
std::string to_yaml(const Config& config,
                    const std::map<std::string, std::string>* sources = nullptr);

// True when logger_class names a Python class rather than the default (native) logger.
bool uses_logger_class(const Config& config);

// Every setting as one JSON object (setting name -> value), for the hooks' server.cfg.
std::string to_json(const Config& config);

// Resolve --user / --group: a name or a numeric id. Throw ConfigError naming the setting when
// the name is unknown. resolve_user also gives the user's name and primary group when known.
struct ResolvedUser {
  unsigned uid = 0;
  unsigned primary_gid = 0;
  std::string name;  // "" when the uid has no passwd entry
};
ResolvedUser resolve_user(const std::string& spec);
unsigned resolve_group(const std::string& spec);

// Parse an umask the way Gunicorn and the shell write it: "0o22", "022" (a leading 0 means
// octal), "0x12", or a decimal "18". Returns -1 when invalid or outside 0..0777.
int parse_umask(const std::string& text);

// One row of the settings table, for generated documentation (docs/, the man page).
struct SettingInfo {
  std::string name;     // YAML key, e.g. "worker_class"
  std::string flags;    // e.g. "-k,--worker-class" (or the positional's name)
  std::string metavar;  // e.g. "CLASS"; "" for a boolean flag
  std::string help;     // one line, ending with "[default: ...]" where there is one
  std::string status;   // "" (works), "no-op: why", "refused: what to use instead"
};
std::vector<SettingInfo> describe_settings();

// Split a string the way a POSIX shell splits words (quotes and backslashes honoured), for
// ALICORN_CMD_ARGS. Throws ConfigError on an unterminated quote.
std::vector<std::string> shell_split(const std::string& text);

}  // namespace alicorn
