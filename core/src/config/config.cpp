// Configuration: one table of settings drives the command line, ALICORN_CMD_ARGS, the YAML
// file, validation and --print-config (see config.hpp).
//
// Each layer is first read into raw text values per setting; the layers are merged (a higher
// layer that sets a setting replaces it whole, lists included); only then is every value
// converted and validated, so an error names the setting and where the value came from.
#include "config/config.hpp"
#include "net/edge_settings.hpp"
#include "net/tls.hpp"
#include "net/uwsgi_settings.hpp"

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
// A server hook: a callable from a Python config file, kept by python/config_file.cpp; the
// Config records its repr in server_hooks.
struct HookSlot {};
constexpr HookSlot kHook{};
using Field = std::variant<int Config::*, double Config::*, bool Config::*, std::string Config::*,
                           std::optional<std::string> Config::*, std::vector<std::string> Config::*,
                           std::vector<BindAddress> Config::*, StringMap Config::*, HookSlot>;

struct Setting {
  const char* name;     // the YAML key, and the name every error message starts with
  const char* flags;    // CLI11 names, or the positional's name
  Field field;
  const char* metavar;  // "" for a boolean flag
  const char* help;
  int min = 0;          // bounds for integers (min also for seconds)
  int max = std::numeric_limits<int>::max();
  const char* status = "";  // "" works; "no-op: why"; "refused: what to use instead" (values
                            // other than the default are refused, see check_supported)
};

constexpr int kAny = std::numeric_limits<int>::max();

// Gunicorn's settings beyond the core set below: accepted under their flag, config-file name
// and YAML key. Those marked refused accept their default value only.
const Setting kMoreSettings[] = {
    {"worker_tmp_dir", "--worker-tmp-dir", &Config::worker_tmp_dir, "DIR",
     "Gunicorn's heartbeat file folder; validated (a writable folder) and otherwise unused", 0,
     kAny, "no-op: the heartbeat is shared memory, not a file; the folder is still validated"},
    {"tmp_upload_dir", "", &Config::tmp_upload_dir, "DIR",
     "Folder for temporary request data; validated and otherwise unused (as in Gunicorn)", 0,
     kAny, "no-op: Gunicorn does not use it either; the folder is still validated"},
    {"paste", "--paste,--paster", &Config::paste, "FILE",
     "Load the app from a PasteDeploy ini file (config:FILE#name); needs python3-pastedeploy"},
    {"raw_paste_global_conf", "--paste-global", &Config::raw_paste_global_conf, "KEY=VALUE",
     "A global_conf variable for the PasteDeploy ini; repeatable"},
    {"sendfile", "--no-sendfile{false}", &Config::sendfile, "",
     "--no-sendfile: send wsgi.file_wrapper bodies by reading and writing instead of "
     "sendfile(2) [default: sendfile on]"},
    {"spew", "--spew", &Config::spew, "", "Trace every Python line executed (refused)", 0, kAny,
     "refused: use a post_worker_init hook that calls sys.settrace, or python -X importtime"},
    {"enable_stdio_inheritance", "-R,--enable-stdio-inheritance", &Config::enable_stdio_inheritance,
     "", "Keep stdio when daemonised (accepted; stdio is inherited as it is)", 0, kAny,
     "no-op: the workers always inherit the master's stdio; with --daemon it is /dev/null"},
    {"strip_header_spaces", "--strip-header-spaces", &Config::strip_header_spaces, "",
     "Strip spaces before a header's colon (refused when true)", 0, kAny,
     "refused when true: a space before the colon is refused as RFC 9112 requires; fix the client"},
    {"permit_obsolete_folding", "--permit-obsolete-folding", &Config::permit_obsolete_folding, "",
     "Accept obsolete line folding in headers (refused when true)", 0, kAny,
     "refused when true: obsolete folding is refused (RFC 9112); fix the client"},
    {"casefold_http_method", "--casefold-http-method", &Config::casefold_http_method, "",
     "Upper-case the method before the app sees it (with --permit-unconventional-http-method, "
     "which lets lower-case methods through)"},
    {"permit_unconventional_http_method", "--permit-unconventional-http-method",
     &Config::permit_unconventional_http_method, "",
     "Accept any RFC 9110 token as the method: lower-case letters, '#', fewer than 3 or more "
     "than 20 bytes (default: upper-case tokens of 3 to 20 bytes, as Gunicorn)"},
    {"permit_unconventional_http_version", "--permit-unconventional-http-version",
     &Config::permit_unconventional_http_version, "",
     "Accept HTTP versions other than 1.0 and 1.1 (refused when true)", 0, kAny,
     "refused when true: only HTTP/1.0 and HTTP/1.1 are served"},
    {"tolerate_dangerous_framing", "--tolerate-dangerous-framing",
     &Config::tolerate_dangerous_framing, "",
     "Accept ambiguous Content-Length/Transfer-Encoding framing (refused when true)", 0, kAny,
     "refused when true: ambiguous framing is how requests are smuggled; fix the client or proxy"},
    {"header_map", "--header-map", &Config::header_map, "MODE",
     "Headers with an underscore in the name: drop (left out of the environ, so X_Forwarded_For "
     "cannot pose as X-Forwarded-For), refuse (400), or dangerous (passed as HTTP_X_FORWARDED_FOR, "
     "colliding with the dashed name) [default: drop]"},
    {"default_proc_name", "", &Config::default_proc_name, "NAME",
     "Process name when proc_name is unset [default: the app spec]"},
    {"logger_class", "--logger-class", &Config::logger_class, "CLASS",
     "The logger: the default is alicorn's native one; module.Class names a subclass of "
     "gunicorn.glogging.Logger or alicorn.glogging.Logger, imported in the master, whose "
     "access() writes the access log and whose error()/info()/... get the error log "
     "[default: gunicorn.glogging.Logger]"},
    {"on_starting", "", kHook, "", "Hook on_starting(server): before the master starts"},
    {"on_reload", "", kHook, "", "Hook on_reload(server): on HUP, before the new workers"},
    {"when_ready", "", kHook, "", "Hook when_ready(server): the listeners are open"},
    {"pre_fork", "", kHook, "", "Hook pre_fork(server, worker): before a worker is forked"},
    {"post_fork", "", kHook, "", "Hook post_fork(server, worker): in the worker, after fork"},
    {"post_worker_init", "", kHook, "",
     "Hook post_worker_init(worker): in the worker, the app is loaded"},
    {"worker_int", "", kHook, "", "Hook worker_int(worker): the worker got INT or QUIT"},
    {"worker_abort", "", kHook, "", "Hook worker_abort(worker): the worker got ABRT (timeout)"},
    {"pre_exec", "", kHook, "", "Hook pre_exec(server): before the new master is exec'd (USR2)"},
    {"pre_request", "", kHook, "", "Hook pre_request(worker, req): before the app is called"},
    {"post_request", "", kHook, "",
     "Hook post_request(worker, req, environ, resp): the response is done (2 to 4 arguments)"},
    {"child_exit", "", kHook, "", "Hook child_exit(server, worker): in the master, a worker exited"},
    {"worker_exit", "", kHook, "", "Hook worker_exit(server, worker): in the worker, as it exits"},
    {"nworkers_changed", "", kHook, "",
     "Hook nworkers_changed(server, new_value, old_value): the worker count changed"},
    {"on_exit", "", kHook, "", "Hook on_exit(server): the master is exiting"},
    {"ssl_context", "", kHook, "",
     "Hook ssl_context(config, default_ssl_context_factory): called in the master at startup "
     "when certfile is set; the ssl.SSLContext it returns serves every TLS connection"},
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
    // At the edge (docs/deployment.md): trusted proxies, forwarded headers, PROXY protocol.
    {"forwarded_allow_ips", "--forwarded-allow-ips", &Config::forwarded_allow_ips, "ADDRS",
     "Comma-separated addresses and CIDR networks (or *) whose forwarded headers are trusted; "
     "unix-socket peers always are [default: $FORWARDED_ALLOW_IPS or 127.0.0.1,::1]"},
    {"secure_scheme_headers", "--secure-scheme-header", &Config::secure_scheme_headers,
     "NAME=VALUE",
     "Header and value by which a trusted proxy says the request came over HTTPS; repeatable, "
     "replaces the defaults [default: X-FORWARDED-PROTOCOL=ssl, X-FORWARDED-PROTO=https, "
     "X-FORWARDED-SSL=on]"},
    {"forwarder_headers", "--forwarder-headers", &Config::forwarder_headers, "NAMES",
     "Comma-separated header names a trusted proxy may use to set SCRIPT_NAME, PATH_INFO or "
     "REMOTE_USER [default: SCRIPT_NAME,PATH_INFO]"},
    {"root_path", "--root-path", &Config::root_path, "PATH",
     "SCRIPT_NAME of the app, the prefix it is mounted at behind a proxy [default: $SCRIPT_NAME]"},
    {"proxy_protocol", "--proxy-protocol", &Config::proxy_protocol, "MODE",
     "Expect a PROXY protocol header (HAProxy) from proxy_allow_ips: off, v1, v2 or auto "
     "[default: off; the bare flag means auto]"},
    {"proxy_allow_ips", "--proxy-allow-from", &Config::proxy_allow_ips, "ADDRS",
     "Comma-separated addresses and CIDR networks (or *) that must send a PROXY header "
     "[default: 127.0.0.1,::1]"},
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

// Settings of features alicorn does not serve yet (Gunicorn 25+: HTTP/2, the ASGI worker,
// dirty workers). Those that would turn the feature on are refused when set (check_supported);
// the tuning knobs that only matter once it is on are accepted as no-ops, so a config file
// that sets them with the feature off still starts.
constexpr const char* kNoH2 =
    "HTTP/2 is not served yet: terminate HTTP/2 in the proxy in front (nginx, HAProxy) and "
    "speak HTTP/1.1 to alicorn";
constexpr const char* kNoAsgi =
    "the ASGI worker does not exist yet (alicorn serves WSGI apps); run ASGI apps under uvicorn";
constexpr const char* kNoDirty =
    "dirty workers do not exist yet; run long jobs in a task queue (Celery, RQ) instead";
const Setting kLaterSettings[] = {
    {"http_protocols", "--http-protocols", &Config::http_protocols, "PROTOCOLS",
     "Comma-separated HTTP protocols to serve: h1 only (h2 is refused) [default: h1]", 0, kAny,
     "refused unless h1: HTTP/2 is not served yet; terminate it in the proxy in front"},
    {"http2_max_concurrent_streams", "--http2-max-concurrent-streams",
     &Config::http2_max_concurrent_streams, "INT",
     "HTTP/2 tuning; a no-op while only h1 is served [default: 100]", 0, kAny,
     "no-op: applies to HTTP/2, which is not served yet"},
    {"http2_initial_window_size", "--http2-initial-window-size",
     &Config::http2_initial_window_size, "INT",
     "HTTP/2 tuning; a no-op while only h1 is served [default: 65535]", 0, kAny,
     "no-op: applies to HTTP/2, which is not served yet"},
    {"http2_max_frame_size", "--http2-max-frame-size", &Config::http2_max_frame_size, "INT",
     "HTTP/2 tuning; a no-op while only h1 is served [default: 16384]", 0, kAny,
     "no-op: applies to HTTP/2, which is not served yet"},
    {"http2_max_header_list_size", "--http2-max-header-list-size",
     &Config::http2_max_header_list_size, "INT",
     "HTTP/2 tuning; a no-op while only h1 is served [default: 65536]", 0, kAny,
     "no-op: applies to HTTP/2, which is not served yet"},
    {"asgi_loop", "--asgi-loop", &Config::asgi_loop, "LOOP",
     "ASGI worker event loop; a no-op (there is no ASGI worker yet) [default: auto]", 0, kAny,
     "no-op: applies to the ASGI worker, which does not exist yet"},
    {"asgi_lifespan", "--asgi-lifespan", &Config::asgi_lifespan, "MODE",
     "ASGI lifespan protocol; a no-op (there is no ASGI worker yet) [default: auto]", 0, kAny,
     "no-op: applies to the ASGI worker, which does not exist yet"},
    {"asgi_disconnect_grace_period", "--asgi-disconnect-grace-period",
     &Config::asgi_disconnect_grace_period, "SECONDS",
     "ASGI disconnect grace period; a no-op (there is no ASGI worker yet) [default: 3]", 0, kAny,
     "no-op: applies to the ASGI worker, which does not exist yet"},
    {"dirty_apps", "--dirty-app", &Config::dirty_apps, "APP",
     "Apps for dirty workers (refused: dirty workers do not exist yet)", 0, kAny,
     "refused when set: dirty workers do not exist yet"},
    {"dirty_workers", "--dirty-workers", &Config::dirty_workers, "INT",
     "Number of dirty workers: 0 only (refused above 0) [default: 0]", 0, kAny,
     "refused above 0: dirty workers do not exist yet"},
    {"dirty_timeout", "--dirty-timeout", &Config::dirty_timeout, "SECONDS",
     "Dirty worker timeout; a no-op without dirty workers [default: 300]", 0, kAny,
     "no-op: applies to dirty workers, which do not exist yet"},
    {"dirty_threads", "--dirty-threads", &Config::dirty_threads, "INT",
     "Threads per dirty worker; a no-op without dirty workers [default: 1]", 0, kAny,
     "no-op: applies to dirty workers, which do not exist yet"},
    {"dirty_graceful_timeout", "--dirty-graceful-timeout", &Config::dirty_graceful_timeout,
     "SECONDS", "Dirty worker graceful timeout; a no-op without dirty workers [default: 30]", 0,
     kAny, "no-op: applies to dirty workers, which do not exist yet"},
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
constexpr const char* kGunicornCmdArgsVar = "GUNICORN_CMD_ARGS";
constexpr const char* kDefaultConfigFile = "gunicorn.conf.py";

// The uwsgi protocol (nginx uwsgi_pass): http/uwsgi_parser.hpp, net/uwsgi_settings.cpp.
const Setting kUwsgiSettings[] = {
    {"protocol", "--protocol", &Config::protocol, "PROTOCOL",
     "The protocol spoken on the listeners: http, or uwsgi for nginx's uwsgi_pass (one request "
     "per connection; the peer must be in uwsgi_allow_ips) [default: http]"},
    {"uwsgi_allow_ips", "--uwsgi-allow-ips", &Config::uwsgi_allow_ips, "ADDRS",
     "Comma-separated addresses and CIDR networks (or *) allowed to send uwsgi requests; "
     "unix-socket peers always are [default: 127.0.0.1,::1]"},
};

// Code reload (master/reloader.cpp): the master watches the app's *.py files and replaces the
// workers gracefully (as HUP does) when one changes.
const Setting kReloadSettings[] = {
    {"reload", "--reload", &Config::reload, "",
     "Replace the workers gracefully when a *.py file under the app's folder (chdir or the "
     "working directory, and pythonpath) or a reload_extra_files entry changes; a file that "
     "does not compile is logged and the current workers keep serving (for development)"},
    {"reload_engine", "--reload-engine", &Config::reload_engine, "ENGINE",
     "How --reload watches: auto (= inotify), inotify, or poll (stat every second) "
     "[default: auto]"},
    {"reload_extra_files", "--reload-extra-file", &Config::reload_extra_files, "FILE",
     "A further file whose change replaces the workers with --reload (templates, config); "
     "repeatable"},
};

// TLS in the core (net/tls.cpp, http/session_tls.cpp): Gunicorn's names and flags.
const Setting kTlsSettings[] = {
    {"certfile", "--certfile", &Config::certfile, "FILE",
     "SSL certificate file (PEM, the chain after the certificate); serves HTTPS on every "
     "listener when set [default: None]"},
    {"keyfile", "--keyfile", &Config::keyfile, "FILE",
     "SSL key file (PEM) [default: the key in certfile]"},
    {"ca_certs", "--ca-certs", &Config::ca_certs, "FILE",
     "CA certificates file (PEM) to verify client certificates with [default: None]"},
    {"cert_reqs", "--cert-reqs", &Config::cert_reqs, "INT",
     "Whether client certificates are asked for: 0 none, 1 optional, 2 required (needs "
     "ca_certs) [default: 0]", 0, 2},
    {"ciphers", "--ciphers", &Config::ciphers, "CIPHERS",
     "OpenSSL cipher list for TLS 1.2 [default: OpenSSL's]"},
    {"ssl_version", "--ssl-version", &Config::ssl_version, "VERSION",
     "Minimum TLS version: TLS_SERVER, TLS, SSLv23 (all TLS 1.2), TLSv1, TLSv1_1, TLSv1_2, "
     "TLSv1_3, or the ssl.PROTOCOL_* numbers [default: TLS_SERVER]"},
    {"do_handshake_on_connect", "--do-handshake-on-connect", &Config::do_handshake_on_connect,
     "", "Accepted; the handshake always runs with the first bytes the client sends [default: "
     "False]", 0, kAny, "no-op: the handshake runs inside the session as bytes arrive"},
    {"suppress_ragged_eofs", "--suppress-ragged-eofs", &Config::suppress_ragged_eofs, "",
     "Accepted; a client closing without close_notify is always an ordinary end of "
     "connection [default: True]", 0, kAny,
     "no-op: the socket's end is the plugin's; the session never reports a ragged EOF"},
};

// Logging through Python's logging module (python/py_logging.cpp): with one of these set, the
// error log and the access log are the loggers gunicorn.error and gunicorn.access.
const Setting kLogConfigSettings[] = {
    {"logconfig", "--log-config", &Config::logconfig, "FILE",
     "An ini file for logging.config.fileConfig; the error and access logs then go through "
     "Python's loggers gunicorn.error and gunicorn.access"},
    {"logconfig_dict", "", &Config::logconfig_dict, "DICT",
     "A dict for logging.config.dictConfig, merged over Gunicorn's defaults (a Python config "
     "file's dict, JSON-representable values; or a JSON string)"},
    {"logconfig_json", "--log-config-json", &Config::logconfig_json, "FILE",
     "A JSON file for logging.config.dictConfig, merged over Gunicorn's defaults"},
};

// Every setting: the core table, then the others.
const std::vector<const Setting*>& all_settings() {
  static const std::vector<const Setting*> all = [] {
    std::vector<const Setting*> v;
    for (const auto& s : kSettings) v.push_back(&s);
    for (const auto& s : kMoreSettings) v.push_back(&s);
    for (const auto& s : kLaterSettings) v.push_back(&s);
    for (const auto& s : kUwsgiSettings) v.push_back(&s);
    for (const auto& s : kReloadSettings) v.push_back(&s);
    for (const auto& s : kTlsSettings) v.push_back(&s);
    for (const auto& s : kLogConfigSettings) v.push_back(&s);
    return v;
  }();
  return all;
}

const Setting* find_setting(std::string_view name) {
  for (const Setting* s : all_settings())
    if (name == s->name) return s;
  return nullptr;
}

bool is_hook(const Setting& s) { return std::holds_alternative<HookSlot>(s.field); }

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
  std::string origin = "cli";       // for --print-config: default, file, env, cli (+ detail)
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
            c.*f = f == &Config::default_proc_name ? last : to_text(s, last);
            if (f == &Config::worker_class) c.*f = map_worker_class(c.*f);
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
          [&](HookSlot) { c.server_hooks[s.name] = last; },
      },
      s.field);
}

// Settings accepted with their default only (see their status in kMoreSettings).
void check_supported(const Config& c, const std::map<std::string, std::string>& sources) {
  auto where = [&](const char* name) {
    auto it = sources.find(name);
    return it != sources.end() && it->second.rfind("file ", 0) == 0 ? it->second.substr(5) + ": "
                                                                    : std::string();
  };
  // `why` defaults to the setting's status without its "refused ...: " head.
  auto refuse = [&](const char* name, const std::string& value, std::string why = {}) {
    if (why.empty()) {
      std::string status = find_setting(name)->status;
      auto colon = status.find(": ");
      why = colon == std::string::npos ? status : status.substr(colon + 2);
    }
    throw ConfigError(fmt::format("{}{}: '{}' is not supported by alicorn: {}", where(name), name,
                                  value, why));
  };
  const std::pair<const char*, bool> flags[] = {
      {"spew", c.spew},
      {"strip_header_spaces", c.strip_header_spaces},
      {"permit_obsolete_folding", c.permit_obsolete_folding},
      {"permit_unconventional_http_version", c.permit_unconventional_http_version},
      {"tolerate_dangerous_framing", c.tolerate_dangerous_framing},
  };
  for (const auto& [name, on] : flags)
    if (on) refuse(name, "true");
  for (const auto& p : c.http_protocols)
    if (lower(p) != "h1")
      refuse("http_protocols", p, lower(p) == "h2" ? kNoH2 : "the HTTP protocols are h1 (and h2, later)");
  if (!c.dirty_apps.empty()) refuse("dirty_apps", c.dirty_apps.front(), kNoDirty);
  if (c.dirty_workers > 0) refuse("dirty_workers", std::to_string(c.dirty_workers), kNoDirty);
  if (const std::string m = lower(c.header_map); m != "drop" && m != "refuse" && m != "dangerous")
    throw ConfigError(fmt::format("{}header_map: '{}' is not a mode: use drop, refuse or dangerous",
                                  where("header_map"), c.header_map));
  if (const std::string e = lower(c.reload_engine); e != "auto" && e != "inotify" && e != "poll")
    throw ConfigError(fmt::format(
        "{}reload_engine: '{}' is not an engine: use auto, inotify or poll", where("reload_engine"),
        c.reload_engine));
  if (uses_logger_class(c)) {
    // The class is imported later (python/py_logging.cpp, before any fork); here the shape.
    const std::string& v = c.logger_class;
    bool ok = !v.empty() && v.front() != '.' && v.back() != '.' && v.back() != ':' &&
              (v.find('.') != std::string::npos || v.find(':') != std::string::npos) &&
              v.find_first_of(" \t/") == std::string::npos;
    if (!ok)
      throw ConfigError(fmt::format("{}logger_class: '{}' is not a class path: use module.Class "
                                    "(a subclass of gunicorn.glogging.Logger or "
                                    "alicorn.glogging.Logger)",
                                    where("logger_class"), v));
  }
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
      "Settings are also read from a config file (-c: Python like Gunicorn's gunicorn.conf.py, "
      "python:MODULE, or YAML for .yaml/.yml; ./gunicorn.conf.py when there is no -c) and from "
      "$GUNICORN_CMD_ARGS and $ALICORN_CMD_ARGS; the command line wins over them, the "
      "variables over the file.");

  auto* config = single_value(app.add_option(
                     "-c,--config", "Config file: Python (gunicorn.conf.py), python:MODULE, or "
                                    "YAML (.yaml, .yml) [default: ./gunicorn.conf.py if present]"))
                     ->type_name("FILE");
  std::vector<CLI::Option*> action_opts;
  for (const auto& a : kActions)
    action_opts.push_back(app.add_flag(a.flags)->description(a.help)->disable_flag_override());
  std::vector<CLI::Option*> setting_opts;
  std::vector<const Setting*> with_flags;
  for (const Setting* s : all_settings()) {
    if (*s->flags == '\0') continue;  // config-file only (hooks, tmp_upload_dir, ...)
    auto* text = std::get_if<std::string Config::*>(&s->field);
    bool flag = std::holds_alternative<bool Config::*>(s->field) ||
                (text && *text == &Config::proxy_protocol);  // bare flag or --proxy-protocol=v2
    CLI::Option* o = flag ? app.add_flag(s->flags) : single_value(app.add_option(s->flags));
    setting_opts.push_back(o->description(s->help)->type_name(s->metavar));
    with_flags.push_back(s);
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
  for (size_t i = 0; i < with_flags.size(); ++i)
    if (setting_opts[i]->count() > 0)
      out.layer[with_flags[i]->name] = Raw{setting_opts[i]->results(), false, source,
                                           source.empty() ? "cli" : "env " + source};
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
      for (const Setting* k : all_settings())
        if (!is_hook(*k)) known += std::string(known.empty() ? "" : ", ") + k->name;
      std::string near = closest_setting(key);
      if (!near.empty())
        throw ConfigError(
            fmt::format("{}: unknown setting '{}' (did you mean '{}'?)", path, key, near));
      throw ConfigError(
          fmt::format("{}: unknown setting '{}' (expected one of: {})", path, key, known));
    }
    if (is_hook(*s))
      throw ConfigError(fmt::format("{}: {}: a server hook is a Python function; define it in a "
                                    "Python config file (gunicorn.conf.py)", path, key));
    const YAML::Node& v = kv.second;
    Raw raw{{}, false, path, "file " + path};
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

// ---- Python config file ------------------------------------------------------------------

PythonConfigReader& python_reader() {
  static PythonConfigReader reader;
  return reader;
}

const char* kind_name(const FileValue& v) {
  switch (v.kind) {
    case FileValue::Kind::None: return "None";
    case FileValue::Kind::Bool: return "a bool";
    case FileValue::Kind::Int: return "an int";
    case FileValue::Kind::Float: return "a float";
    case FileValue::Kind::Str: return "a str";
    case FileValue::Kind::List: return "a list";
    case FileValue::Kind::Dict: return "a dict";
    case FileValue::Kind::Callable: return "a callable";
    default: return "an object";
  }
}

std::string number_text(const FileValue& v) {
  if (v.kind == FileValue::Kind::Int) return std::to_string(v.i);
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v.f);
  return std::string(buf, ec == std::errc() ? end : buf);
}

void json_string(const std::string& text, std::string& out) {
  out.push_back('"');
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20) {
      out += fmt::format("\\u{:04x}", c);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  out.push_back('"');
}

// A Python value (logconfig_dict) as JSON; a callable or another object is refused, naming it.
void file_value_json(const FileValue& v, const char* name, const std::string& path,
                     std::string& out) {
  using K = FileValue::Kind;
  switch (v.kind) {
    case K::None: out += "null"; break;
    case K::Bool: out += v.b ? "true" : "false"; break;
    case K::Int:
    case K::Float: out += number_text(v); break;
    case K::Str: json_string(v.text, out); break;
    case K::List:
      out.push_back('[');
      for (size_t i = 0; i < v.items.size(); ++i) {
        if (i) out.push_back(',');
        file_value_json(v.items[i], name, path, out);
      }
      out.push_back(']');
      break;
    case K::Dict:
      out.push_back('{');
      for (size_t i = 0; i < v.entries.size(); ++i) {
        if (i) out.push_back(',');
        json_string(v.entries[i].first, out);
        out.push_back(':');
        file_value_json(v.entries[i].second, name, path, out);
      }
      out.push_back('}');
      break;
    default:
      throw ConfigError(fmt::format("{}: {}: {} is not supported inside the dict (only str, "
                                    "int, float, bool, None, lists and dicts; name a class or "
                                    "stream by string, e.g. 'ext://sys.stdout')",
                                    path, name, v.text.empty() ? v.type_name : v.text));
  }
}

// One module-level value converted to the text a layer holds, with Gunicorn's leniency where it
// has it (an int setting takes "4" as well as 4; a list setting takes one string) and a
// message naming the setting and the Python type otherwise.
Raw python_raw(const Setting& s, const FileValue& v, const std::string& path) {
  Raw raw{{}, false, path, "file " + path};
  using K = FileValue::Kind;
  auto wrong = [&](const char* expected) {
    std::string shown = v.kind == K::Str ? "'" + v.text + "'" : v.text;
    return ConfigError(fmt::format("{}: {}: expected {}, got {}{}", path, s.name, expected,
                                   kind_name(v), shown.empty() ? "" : " (" + shown + ")"));
  };
  auto scalar_text = [&](const FileValue& item, const char* expected) -> std::string {
    if (item.kind == K::Str) return item.text;
    if (item.kind == K::Int || item.kind == K::Float) return number_text(item);
    throw wrong(expected);
  };
  std::visit(
      overloaded{
          [&](int Config::*f) {
            if (v.kind == K::Float && std::floor(v.f) == v.f) raw.values.push_back(number_text(v));
            else if (v.kind == K::Int || v.kind == K::Str)
              raw.values.push_back(f == &Config::umask && v.kind == K::Int
                                       ? fmt::format("0{:o}", v.i)
                                       : scalar_text(v, ""));
            else throw wrong("an integer");
          },
          [&](double Config::*) {
            if (v.kind == K::Int || v.kind == K::Float || v.kind == K::Str)
              raw.values.push_back(scalar_text(v, ""));
            else throw wrong("a number of seconds");
          },
          [&](bool Config::*) {
            if (v.kind == K::Bool) raw.values.push_back(v.b ? "true" : "false");
            else if (v.kind == K::Str) raw.values.push_back(v.text);
            else throw wrong("True or False");
          },
          [&](std::string Config::*f) {
            if (v.kind == K::Int && f == &Config::ssl_version) {  // ssl.PROTOCOL_TLS_SERVER, ...
              raw.values.push_back(std::to_string(v.i));
              return;
            }
            if (v.kind != K::Str) throw wrong("a string");
            raw.values.push_back(v.text);
          },
          [&](std::optional<std::string> Config::*f) {
            if (f == &Config::logconfig_dict && v.kind == K::Dict) {
              if (v.entries.empty()) {  // Gunicorn's default, {}: not set
                raw.null = true;
                return;
              }
              std::string json;
              file_value_json(v, s.name, path, json);
              raw.values.push_back(json);
              return;
            }
            if (v.kind == K::None) raw.null = true;
            else if (v.kind == K::Str) raw.values.push_back(v.text);
            else if (v.kind == K::Int && (f == &Config::user || f == &Config::group))
              raw.values.push_back(std::to_string(v.i));
            else throw wrong("a string");
          },
          [&](std::vector<std::string> Config::*) {
            if (v.kind == K::Str) raw.values.push_back(v.text);
            else if (v.kind == K::List)
              for (const auto& item : v.items) raw.values.push_back(scalar_text(item, "a list of strings"));
            else if (v.kind != K::None) throw wrong("a string or a list of strings");
          },
          [&](std::vector<BindAddress> Config::*) {
            if (v.kind == K::Str) raw.values.push_back(v.text);
            else if (v.kind == K::List)
              for (const auto& item : v.items) {
                if (item.kind != K::Str) throw wrong("a list of address strings");
                raw.values.push_back(item.text);
              }
            else throw wrong("an address string or a list of them");
          },
          [&](StringMap Config::*) {
            if (v.kind == K::Str) raw.values.push_back(v.text);
            else if (v.kind == K::List)
              for (const auto& item : v.items) {
                if (item.kind != K::Str) throw wrong("a list of KEY=VALUE strings");
                raw.values.push_back(item.text);
              }
            else if (v.kind == K::Dict)
              for (const auto& [key, item] : v.entries)
                raw.values.push_back(key + "=" + scalar_text(item, "a dict of strings"));
            else if (v.kind != K::None) throw wrong("a list of KEY=VALUE strings or a dict");
          },
          [&](HookSlot) {
            if (v.kind != K::Callable) throw wrong("a callable (a function)");
            raw.values.push_back(v.text);
          },
      },
      s.field);
  if (v.kind == K::Callable && !is_hook(s)) throw wrong("a value, not a callable");
  return raw;
}

Layer read_python(const std::string& spec, const std::optional<std::string>& virtualenv,
                  const std::vector<std::string>& argv, std::vector<std::string>& warnings,
                  std::optional<Action>& action) {
  if (spec.rfind("python:", 0) != 0) {
    std::error_code ec;
    if (std::filesystem::is_directory(spec, ec))
      throw ConfigError(fmt::format("{}: cannot read config file: it is a directory", spec));
    if (!std::filesystem::exists(spec, ec))
      throw ConfigError(fmt::format("{}: cannot read config file: it does not exist", spec));
  }
  if (!python_reader())
    throw ConfigError(fmt::format("{}: Python config files need the embedded interpreter "
                                  "(use a .yaml file here)", spec));
  FileNames names = python_reader()(spec, virtualenv, argv);
  Layer layer;
  for (const auto& [name, value] : names) {
    // Gunicorn's check_config / print_config are settings too: true asks for that action.
    if (name == "check_config" || name == "print_config") {
      if (value.kind != FileValue::Kind::Bool)
        throw ConfigError(fmt::format("{}: {}: expected True or False, got {}", spec, name,
                                      kind_name(value)));
      if (value.b && !action)
        action = name == "check_config" ? Action::CheckConfig : Action::PrintConfig;
      continue;
    }
    const Setting* s = find_setting(name);
    if (s == nullptr) {
      std::string near = closest_setting(name);
      if (!near.empty())
        warnings.push_back(fmt::format("{}: '{}' is not a setting; did you mean '{}'? (ignored)",
                                       spec, name, near));
      continue;  // as in Gunicorn, other module-level names are the file's own business
    }
    if (name == "wsgi_app" && value.kind == FileValue::Kind::Callable)
      throw ConfigError(fmt::format("{}: wsgi_app: expected a string naming the app "
                                    "(\"module:app\"), got a callable", spec));
    layer[s->name] = python_raw(*s, value, spec);
  }
  return layer;
}

bool is_yaml_path(const std::string& path) {
  auto ext = lower(std::filesystem::path(path).extension().string());
  return ext == ".yaml" || ext == ".yml";
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t prev = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cur = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] == b[j - 1] ? 0 : 1)});
      prev = cur;
    }
  }
  return row[b.size()];
}

// ---- defaults that come from the environment ----------------------------------------------

Layer default_layer(const Environment& env) {
  auto get = [&](const char* name) -> const std::string* {
    auto it = env.find(name);
    return it == env.end() || it->second.empty() ? nullptr : &it->second;
  };
  Layer layer;
  if (const auto* port = get("PORT"))
    layer["bind"] = Raw{{"0.0.0.0:" + *port}, false, "PORT", "env PORT"};
  else layer["bind"] = Raw{{"127.0.0.1:8000"}, false, "", "default"};
  if (const auto* n = get("WEB_CONCURRENCY"))
    layer["workers"] = Raw{{*n}, false, "WEB_CONCURRENCY", "env WEB_CONCURRENCY"};
  if (const auto* venv = get("VIRTUAL_ENV"))
    layer["virtualenv"] = Raw{{*venv}, false, "VIRTUAL_ENV", "env VIRTUAL_ENV"};
  // As in Gunicorn, FORWARDED_ALLOW_IPS is that setting's default (when the setting exists).
  if (const auto* ips = get("FORWARDED_ALLOW_IPS"); ips && find_setting("forwarded_allow_ips"))
    layer["forwarded_allow_ips"] =
        Raw{{*ips}, false, "FORWARDED_ALLOW_IPS", "env FORWARDED_ALLOW_IPS"};
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
  // GUNICORN_CMD_ARGS (as Gunicorn), then ALICORN_CMD_ARGS over it; both over the file.
  ParsedArgs from_gunicorn_env, from_env;
  if (auto it = env.find(kGunicornCmdArgsVar); it != env.end())
    try {
      from_gunicorn_env = parse_args(program, shell_split(it->second), kGunicornCmdArgsVar);
    } catch (const ConfigError& e) {
      std::string what = e.what();
      if (what.rfind(kCmdArgsVar, 0) == 0) what = kGunicornCmdArgsVar + what.substr(std::strlen(kCmdArgsVar));
      throw ConfigError(what);
    }
  if (auto it = env.find(kCmdArgsVar); it != env.end())
    from_env = parse_args(program, shell_split(it->second), kCmdArgsVar);
  if (!cli.action && answers_at_once(from_env)) return out;
  if (!cli.action && !from_env.action && answers_at_once(from_gunicorn_env)) return out;
  out.action = cli.action.value_or(
      from_env.action.value_or(from_gunicorn_env.action.value_or(Action::Serve)));

  Config& config = out.config;
  config.config = cli.config ? cli.config : from_env.config ? from_env.config
                                                            : from_gunicorn_env.config;
  std::error_code ec;
  if (!config.config && std::filesystem::is_regular_file(kDefaultConfigFile, ec))
    config.config = std::string("./") + kDefaultConfigFile;  // as Gunicorn: ./gunicorn.conf.py
  Layer merged = default_layer(env);
  Layer file;
  if (config.config && is_yaml_path(*config.config)) {
    file = read_yaml(*config.config);
  } else if (config.config) {
    // The interpreter starts before the file runs, in the virtualenv named so far.
    std::optional<std::string> venv;
    for (Layer* layer : {&merged, &from_gunicorn_env.layer, &from_env.layer, &cli.layer})
      if (auto it = layer->find("virtualenv"); it != layer->end() && !it->second.values.empty())
        venv = it->second.values.back();
    std::vector<std::string> args(argv, argv + std::max(argc, 0));
    std::optional<Action> file_action;
    file = read_python(*config.config, venv, args, out.warnings, file_action);
    config.config_is_python = true;
    if (file_action && !cli.action && !from_env.action && !from_gunicorn_env.action)
      out.action = *file_action;
  }
  for (Layer* layer : {&file, &from_gunicorn_env.layer, &from_env.layer, &cli.layer})
    for (auto& [name, raw] : *layer) merged[name] = std::move(raw);

  for (const Setting* sp : all_settings()) {
    const Setting& s = *sp;
    auto it = merged.find(s.name);
    if (it == merged.end()) continue;
    out.sources[s.name] = it->second.origin;
    try {
      apply(config, s, it->second);
    } catch (const ConfigError& e) {
      if (it->second.source.empty()) throw;
      std::string what = e.what();
      // A Python file's own messages already start with its path.
      if (what.rfind(it->second.source + ": ", 0) == 0) throw;
      throw ConfigError(it->second.source + ": " + what);
    }
  }
  check_supported(config, out.sources);
  validate_edge_settings(config);  // forwarded headers, PROXY protocol (net/edge_settings.cpp)
  validate_uwsgi_settings(config);  // protocol, uwsgi_allow_ips (net/uwsgi_settings.cpp)
  validate_tls_settings(config);  // certfile, keyfile, ...: the TLS context (net/tls.cpp)
  if (config.paste) {  // --paste names the app (and wins over wsgi_app, as in Gunicorn)
    std::string file = *config.paste, name;
    if (auto hash = file.find('#'); hash != std::string::npos)
      name = file.substr(hash), file = file.substr(0, hash);
    std::error_code exists_ec;
    if (!std::filesystem::is_regular_file(file, exists_ec))
      throw ConfigError(fmt::format("paste: '{}' is not a file (expected a PasteDeploy .ini)",
                                    file));
    AppSpec spec;
    spec.spec = "paste:" + *config.paste;
    spec.paste_file = std::filesystem::absolute(file).string() + name;
    spec.paste_global_conf = config.raw_paste_global_conf;
    config.app = spec;
  }
  // As in Gunicorn: the sync worker with more than one thread means the threaded worker.
  if (config.worker_class == "sync" && config.threads > 1) config.worker_class = "gthread";
  if (!config.app && (out.action == Action::Serve || out.action == Action::CheckConfig))
    throw ConfigError("wsgi_app: no application given (expected APP_MODULE on the command line "
                      "or wsgi_app in the config file, e.g. myproject.wsgi:application)");
  return out;
}

void set_python_config_reader(PythonConfigReader reader) { python_reader() = std::move(reader); }

std::string closest_setting(const std::string& name) {
  std::string dashed = lower(name);
  std::replace(dashed.begin(), dashed.end(), '-', '_');
  if (dashed != name && find_setting(dashed)) return dashed;
  // The name of a flag for the setting: `preload` for preload_app (--preload), `pid` for pidfile.
  std::string flag = "--" + dashed;
  std::replace(flag.begin(), flag.end(), '_', '-');
  for (const Setting* s : all_settings()) {
    std::string_view flags = s->flags;
    while (!flags.empty()) {
      auto comma = flags.find(',');
      std::string_view one = flags.substr(0, comma);
      if (auto brace = one.find('{'); brace != std::string_view::npos) one = one.substr(0, brace);
      if (one == flag) return s->name;
      flags = comma == std::string_view::npos ? "" : flags.substr(comma + 1);
    }
  }
  if (name.size() < 4) return "";
  std::string best;
  size_t best_distance = name.size() >= 8 ? 3 : 2;  // closer than this
  for (const Setting* s : all_settings()) {
    size_t d = edit_distance(dashed, s->name);
    if (d < best_distance) best_distance = d, best = s->name;
  }
  return best;
}

std::string map_worker_class(const std::string& name) {
  std::string n = name;
  for (const char* prefix : {"egg:gunicorn#", "gunicorn.workers."})
    if (n.rfind(prefix, 0) == 0) n = n.substr(std::strlen(prefix));
  static const std::pair<const char*, const char*> kSame[] = {
      {"sync", "sync"},       {"sync.SyncWorker", "sync"}, {"gthread", "gthread"},
      {"gthread.ThreadWorker", "gthread"}, {"uv", "uv"}};
  for (const auto& [from, to] : kSame)
    if (n == from) return to;
  struct Refused {
    const char* name;
    const char* advice;
  };
  static const Refused kRefused[] = {
      {"gevent", "use uv: one event loop per worker serving many connections, no monkey-patching"},
      {"ggevent.GeventWorker", "use uv: one event loop per worker serving many connections"},
      {"gevent_wsgi", "use uv"}, {"gevent_pywsgi", "use uv"},
      {"ggevent.GeventPyWSGIWorker", "use uv"},
      {"eventlet", "use uv: one event loop per worker serving many connections"},
      {"geventlet.EventletWorker", "use uv"},
      {"tornado", "use uv (or gthread for a blocking app)"},
      {"gtornado.TornadoWorker", "use uv (or gthread for a blocking app)"},
      {"uvicorn.workers.UvicornWorker",
       "ASGI apps are not served yet (alicorn serves WSGI); for a WSGI app use uv"},
      {"uvicorn.workers.UvicornH11Worker",
       "ASGI apps are not served yet (alicorn serves WSGI); for a WSGI app use uv"},
      {"asgi", kNoAsgi},
      {"uvicorn_worker.UvicornWorker",
       "ASGI apps are not served yet (alicorn serves WSGI); for a WSGI app use uv"},
  };
  for (const auto& r : kRefused)
    if (n == r.name)
      throw ConfigError(fmt::format("worker_class: '{}' is not available in alicorn: {}", name,
                                    r.advice));
  return name;
}

std::string to_yaml(const Config& config, const std::map<std::string, std::string>* sources) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  for (const Setting* sp : all_settings()) {
    const Setting& s = *sp;
    if (is_hook(s)) continue;  // not something YAML holds: listed as comments below
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
                   [&](HookSlot) {},
               },
               s.field);
  }
  out << YAML::EndMap;
  std::string text = std::string(out.c_str()) + "\n";
  if (sources) {
    // Each setting's line is preceded by "# from <source>" (default, file PATH, env VAR, cli),
    // so the YAML itself stays as it reads back.
    std::string annotated;
    std::string_view rest = text;
    while (!rest.empty()) {
      auto nl = rest.find('\n');
      std::string_view line = rest.substr(0, nl == std::string_view::npos ? rest.size() : nl + 1);
      rest.remove_prefix(line.size());
      auto colon = line.find(':');
      if (colon != std::string_view::npos && !line.empty() && line[0] != ' ' && line[0] != '#') {
        std::string name(line.substr(0, colon));
        if (find_setting(name)) {
          auto it = sources->find(name);
          annotated += "# from " + (it == sources->end() ? std::string("default") : it->second) +
                       "\n";
        }
      }
      annotated += line;
    }
    text = annotated;
    for (const Setting* sp : all_settings()) {
      if (!is_hook(*sp)) continue;
      auto it = config.server_hooks.find(sp->name);
      auto src = sources->find(sp->name);
      text += it == config.server_hooks.end()
                  ? fmt::format("# hook {}: not set (from default)\n", sp->name)
                  : fmt::format("# hook {}: {} (from {})\n", sp->name, it->second,
                                src == sources->end() ? "file" : src->second);
    }
  }
  return text;
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

bool uses_logger_class(const Config& config) {
  const std::string& v = config.logger_class;
  return v != "gunicorn.glogging.Logger" && v != "glogging.Logger" && v != "simple";
}

std::string to_json(const Config& config) {
  std::string out = "{";
  bool first = true;
  for (const Setting* sp : all_settings()) {
    const Setting& s = *sp;
    if (is_hook(s)) continue;
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
                   [&](HookSlot) {},
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
  for (const Setting* s : all_settings()) {
    std::string flags = s->flags;
    if (auto brace = flags.find('{'); brace != std::string::npos)  // --no-sendfile{false}
      flags.erase(brace, flags.find('}') - brace + 1);
    out.push_back({s->name, flags, s->metavar, s->help, s->status});
  }
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
