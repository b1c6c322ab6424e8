// gen_settings_doc: writes docs/configuration.md (--markdown) and the alicorn(1) man page
// (--man) from the core's settings table (alicorn::describe_settings()), so the documentation
// lists exactly the settings, flags and defaults the binary accepts.
//
//   gen_settings_doc --markdown [-o FILE]
//   gen_settings_doc --man [-o FILE]
//
// Built by cmake/AlicornDocs.cmake (not installed). `ninja docs` regenerates the committed files;
// the ctest test docs.generated_up_to_date fails when they differ from what this prints.
//
// Defaults: a setting's help text ends with "[default: ...]" where the default needs words
// ("$WEB_CONCURRENCY or 1"); for the others the default is what load_config() resolves with no
// file, no environment and no arguments, rendered the way --print-config renders it.
// The output depends on nothing but the table and the project version: no dates, no paths.
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

#ifndef ALICORN_VERSION
#error "ALICORN_VERSION must be defined"
#endif

namespace {

struct Row {
  std::string name;
  std::vector<std::string> flags;  // "-b", "--bind"; or {"APP_MODULE"} for the positional
  std::string metavar;
  std::string meaning;             // help without the default suffix
  std::string default_value;       // "" when there is none
  std::string status;              // "" works; "no-op: ..."; "refused ...: ..."
  bool positional = false;
  bool file_only = false;          // no flag: a config-file name (server hooks, ...)
};

// Options that are not settings: they select an action or the config file. Kept in the same
// order as `alicorn --help` shows them.
struct Extra {
  const char* flags;
  const char* metavar;
  const char* meaning;
};
const Extra kCommandLineOnly[] = {
    {"-c,--config", "FILE",
     "Read settings from this file: Python (gunicorn.conf.py, any extension but .yaml/.yml), "
     "python:MODULE, or YAML (.yaml, .yml). Without -c, ./gunicorn.conf.py is read when it "
     "exists. Also accepted in $GUNICORN_CMD_ARGS and $ALICORN_CMD_ARGS"},
    {"-h,--help", "", "Show the usage and exit"},
    {"-v,--version", "", "Print \"alicorn VERSION\" and exit"},
    {"--list-workers", "",
     "List the worker plugins found on the plugin search path, with their versions, the ABI "
     "version each negotiated and their paths (refused files are listed with the reason), and "
     "exit"},
    {"--print-config", "",
     "Print every resolved setting as YAML (a valid config file) and exit"},
    {"--check-config", "",
     "Validate the configuration, load the worker plugin and import the application, then "
     "exit 0 (or non-zero with the error)"},
};

struct EnvVar {
  const char* name;
  const char* meaning;
};
const EnvVar kEnvironment[] = {
    {"GUNICORN_CMD_ARGS",
     "Extra command-line arguments, split like a POSIX shell does (as Gunicorn); they override "
     "the config file, and ALICORN_CMD_ARGS and the real command line override them"},
    {"ALICORN_CMD_ARGS",
     "Like GUNICORN_CMD_ARGS, one layer above it; the real command line overrides both"},
    {"ALICORN_PLUGIN_PATH",
     "Colon-separated folders searched first for -k NAME (as NAME.so), before the folder "
     "beside the binary (<prefix>/<libdir>/alicorn/workers) and the compiled-in install folder"},
    {"PORT", "When set, the default bind is 0.0.0.0:$PORT (as Gunicorn)"},
    {"WEB_CONCURRENCY", "When set, the default number of workers"},
    {"VIRTUAL_ENV", "When set, the default virtualenv"},
    {"FORWARDED_ALLOW_IPS", "When set, the default of forwarded_allow_ips (as Gunicorn)"},
    {"LISTEN_FDS, LISTEN_PID",
     "systemd socket activation: the listening sockets are inherited and bind is ignored"},
    {"NOTIFY_SOCKET", "set by systemd for Type=notify units: readiness and reloads are reported"},
};

struct ExitCode {
  int code;
  const char* meaning;
};
const ExitCode kExitCodes[] = {
    {0, "clean stop (TERM, INT, QUIT), or an action such as --version finished"},
    {1, "runtime failure in the master: it cannot listen, the worker plugin was refused"},
    {2, "invalid configuration: the message names the setting and the accepted values"},
    {3, "a worker failed to boot (Gunicorn's WORKER_BOOT_ERROR)"},
    {4, "the application could not be imported (Gunicorn's APP_LOAD_ERROR)"},
};

struct SignalRow {
  const char* name;
  const char* meaning;
};
const SignalRow kSignals[] = {
    {"TERM", "graceful stop: workers finish in-flight requests within graceful_timeout"},
    {"INT, QUIT", "fast stop"},
    {"HUP",
     "reload the configuration (the same command line, the YAML file read again), start new "
     "workers and retire the old ones gracefully"},
    {"TTIN, TTOU", "one worker more, one worker less"},
    {"USR1", "reopen the log files (master and workers)"},
    {"USR2",
     "upgrade: start a new master from the binary on disk, which inherits the listening "
     "sockets; stop the old one with TERM once the new one serves"},
    {"WINCH", "when daemonized, stop the workers gracefully (the master stays)"},
};

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t end = s.find(sep, start);
    out.emplace_back(s.substr(start, end == std::string_view::npos ? s.npos : end - start));
    if (end == std::string_view::npos) return out;
    start = end + 1;
  }
}

// The defaults as --print-config shows them with nothing configured.
std::map<std::string, std::string> resolved_defaults() {
  const char* argv[] = {"alicorn", "--print-config"};
  alicorn::LoadedConfig loaded = alicorn::load_config(2, argv, alicorn::Environment{});
  YAML::Node root = YAML::Load(alicorn::to_yaml(loaded.config));
  std::map<std::string, std::string> out;
  for (const auto& kv : root) {
    const YAML::Node& v = kv.second;
    std::string text;
    if (v.IsNull()) {
      text = "";
    } else if (v.IsScalar()) {
      text = v.Scalar();
    } else if (v.IsSequence()) {
      for (const auto& item : v) text += (text.empty() ? "" : ", ") + item.Scalar();
    } else if (v.IsMap()) {
      for (const auto& e : v)
        text += (text.empty() ? "" : ", ") + e.first.Scalar() + "=" + e.second.Scalar();
    }
    out[kv.first.Scalar()] = text;
  }
  return out;
}

std::vector<Row> rows() {
  const auto defaults = resolved_defaults();
  std::vector<Row> out;
  for (const auto& s : alicorn::describe_settings()) {
    Row r;
    r.name = s.name;
    r.metavar = s.metavar;
    r.positional = !s.flags.empty() && s.flags[0] != '-';
    r.file_only = s.flags.empty();
    r.flags = r.file_only ? std::vector<std::string>{} : split(s.flags, ',');
    r.meaning = s.help;
    r.status = s.status;
    const std::string tag = " [default: ";
    if (auto at = r.meaning.rfind(tag); at != std::string::npos && r.meaning.back() == ']') {
      r.default_value = r.meaning.substr(at + tag.size(), r.meaning.size() - at - tag.size() - 1);
      r.meaning.erase(at);
    } else if (auto it = defaults.find(s.name); it != defaults.end()) {
      r.default_value = it->second;
    }
    out.push_back(std::move(r));
  }
  return out;
}

std::string default_yaml() {
  const char* argv[] = {"alicorn", "--print-config"};
  return alicorn::to_yaml(alicorn::load_config(2, argv, alicorn::Environment{}).config);
}

// ---- Markdown ----------------------------------------------------------------------------

std::string md_cell(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += "\\|";
    else out += c;
  }
  return out;
}

std::string md_code(std::string_view s) {
  // A code span cannot hold a backtick run of its own length; none of ours has backticks.
  return "`" + md_cell(s) + "`";
}

std::string md_flags(const std::vector<std::string>& flags, const std::string& metavar) {
  std::string out;
  for (const auto& f : flags) {
    if (!out.empty()) out += ", ";
    out += md_code(metavar.empty() ? f : f + " " + metavar);
  }
  return out;
}

void markdown(std::ostream& o) {
  const auto table = rows();
  o << "<!-- Generated by tools/gen_settings_doc.cpp from the settings table in "
       "core/src/config/config.cpp.\n"
       "     Do not edit: change the table, then run `ninja -C build docs`. -->\n"
       "# Configuration reference\n\n"
       "Every setting alicorn "
    << ALICORN_VERSION
    << " accepts, with its command-line flag, its config-file name (the same in a\n"
       "Python file and as a YAML key), its default and its status. The names are Gunicorn's,\n"
       "so a Gunicorn command line and a `gunicorn.conf.py` work unchanged (see\n"
       "[migrating-from-gunicorn.md](migrating-from-gunicorn.md)).\n\n"
       "Settings come from these layers; a later layer replaces a setting of an earlier one "
       "whole\n(lists included):\n\n"
       "1. the built-in defaults (some taken from the environment: `PORT` gives "
       "`0.0.0.0:$PORT`,\n   `WEB_CONCURRENCY`, `VIRTUAL_ENV`, `FORWARDED_ALLOW_IPS`),\n"
       "2. the config file: `-c FILE` (Python, run like Gunicorn runs it, unless it ends in "
       "`.yaml`/`.yml`),\n   `-c python:MODULE`, or `./gunicorn.conf.py` when there is no "
       "`-c`,\n"
       "3. `$GUNICORN_CMD_ARGS`, then `$ALICORN_CMD_ARGS` (the same flags as the command line),\n"
       "4. the command line.\n\n"
       "A Python config file runs in the master's embedded interpreter before anything is "
       "forked,\nwith `__file__` set and the environment visible. Its module-level names that "
       "are settings\nare taken with Gunicorn's conversions (`workers = \"4\"` is 4, one string "
       "is a one-item\nlist); other names are its own business, except that a name close to a "
       "setting gets a\nwarning (`worker` -> `workers`). Functions named like a server hook "
       "(`post_fork`, ...)\nare the hooks; the objects they receive are described in "
       "[migrating-from-gunicorn.md](migrating-from-gunicorn.md#the-objects-hooks-receive).\nA file that raises stops alicorn with its traceback "
       "and exit code 2. On HUP the file is\nrun again; if it fails, the running "
       "configuration stays and the log says why.\n\n"
       "Status: *works* unless the table says *no-op* (accepted, validated, and with the "
       "reason\nit changes nothing here) or *refused* (only the default value is accepted; "
       "anything else\nstops alicorn at startup with a message saying what to use instead).\n\n"
       "Every value is checked before anything is forked: an invalid one stops alicorn with "
       "exit code 2\nand a message that names the setting and what it accepts, e.g.\n"
       "`workers: 'abc' is not an integer (expected an integer >= 1)`. `alicorn --print-config`"
       "\nshows the resolved settings as YAML, `alicorn --check-config` also imports the app.\n\n"
       "## Settings\n\n"
       "| Name | Command line | Default | Meaning | Status |\n"
       "|---|---|---|---|---|\n";
  for (const auto& r : table) {
    std::string flags = r.positional  ? md_code(r.flags[0]) + " (positional)"
                        : r.file_only ? "config file only"
                                      : md_flags(r.flags, r.metavar);
    std::string def = r.default_value.empty() ? "none" : md_code(r.default_value);
    if (r.metavar.empty() && !r.positional && !r.file_only) def += " (a flag)";
    std::string status = r.status.empty() ? "works" : r.status;
    o << "| " << md_code(r.name) << " | " << flags << " | " << def << " | "
      << md_cell(r.meaning) << " | " << md_cell(status) << " |\n";
  }
  o << "\nIn YAML, a flag setting takes `true` or `false`; a repeatable setting (`bind`, "
       "`pythonpath`,\n`raw_env`) takes one value or a list; `raw_env` also takes a mapping; "
       "`null` unsets a setting\nthat has no value by default. On the command line a flag "
       "setting takes no value.\n\n"
       "## Command-line only\n\n"
       "| Option | Meaning |\n|---|---|\n";
  for (const auto& e : kCommandLineOnly)
    o << "| " << md_flags(split(e.flags, ','), e.metavar) << " | " << md_cell(e.meaning)
      << " |\n";
  o << "\n## Environment\n\n| Variable | Meaning |\n|---|---|\n";
  for (const auto& e : kEnvironment)
    o << "| " << md_code(e.name) << " | " << md_cell(e.meaning) << " |\n";
  o << "\n## A YAML file with every default\n\n"
       "This is `alicorn --print-config` with nothing configured; any subset of it is a valid\n"
       "config file (`wsgi_app` is the APP_MODULE):\n\n```yaml\n"
    << default_yaml() << "```\n";
}

// ---- man page ----------------------------------------------------------------------------

// Escape text for troff: backslashes, and a leading '.' or '\'' that would start a request.
std::string roff(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '\\') out += "\\e";
    else if (c == '-') out += "\\-";
    else out += c;
  }
  if (!out.empty() && (out[0] == '.' || out[0] == '\'')) out.insert(0, "\\&");
  return out;
}

std::string roff_flags(const std::vector<std::string>& flags, const std::string& metavar) {
  std::string out;
  for (const auto& f : flags) {
    if (!out.empty()) out += ", ";
    out += "\\fB" + roff(f) + "\\fR";
    if (!metavar.empty()) out += " \\fI" + roff(metavar) + "\\fR";
  }
  return out;
}

void man(std::ostream& o) {
  const auto table = rows();
  o << ".\\\" Generated by tools/gen_settings_doc.cpp from the settings table in "
       "core/src/config/config.cpp.\n"
       ".\\\" Do not edit: change the table, then run `ninja -C build docs`.\n"
       ".TH ALICORN 1 \"\" \"alicorn "
    << ALICORN_VERSION
    << "\" \"User Commands\"\n"
       ".nh\n"
       ".SH NAME\n"
       "alicorn \\- pre\\-fork WSGI HTTP server with pluggable worker classes\n"
       ".SH SYNOPSIS\n"
       ".B alicorn\n"
       "[\\fIOPTIONS\\fR] [\\fIAPP_MODULE\\fR]\n"
       ".br\n"
       ".B alicorn \\-c\n"
       "\\fIFILE.yaml\\fR [\\fIOPTIONS\\fR]\n"
       ".SH DESCRIPTION\n"
       ".B alicorn\n"
       "runs a WSGI application (Django, Flask, ...) behind a master process that binds the\n"
       "listening sockets and forks worker processes, as Gunicorn does, and takes Gunicorn's\n"
       "flags and setting names. The master never talks to clients: it watches the workers\n"
       "(heartbeats, exit status), keeps their number, and handles signals.\n"
       "Each worker runs one worker class, loaded from a shared\\-object plugin:\n"
       ".B sync\n"
       "(the default),\n"
       ".B gthread\n"
       "(a thread pool),\n"
       ".B uv\n"
       "(a libuv event loop), or any plugin built against the alicorn SDK.\n"
       ".PP\n"
       "\\fIAPP_MODULE\\fR is \\fIMODULE\\fR:\\fIATTRIBUTE\\fR, \\fIMODULE\\fR:"
       "\\fIFACTORY\\fR(\\fIARGS\\fR), or \\fIMODULE\\fR\n"
       "(meaning \\fIMODULE\\fR:application).\n"
       ".PP\n"
       "Settings come from, lowest precedence first: the defaults, the config file given with\n"
       ".B \\-c\n"
       "(Python as Gunicorn's gunicorn.conf.py, python:MODULE, or YAML for .yaml/.yml;\n"
       "./gunicorn.conf.py when there is no \\-c), the \\fBGUNICORN_CMD_ARGS\\fR and\n"
       "\\fBALICORN_CMD_ARGS\\fR environment variables, and the command line.\n"
       "Every value is checked before anything is forked.\n"
       ".SH OPTIONS\n";
  for (const auto& r : table) {
    if (r.positional || r.file_only) continue;
    o << ".TP\n" << roff_flags(r.flags, r.metavar) << "\n" << roff(r.meaning) << ".\n";
    o << "YAML key: \\fB" << roff(r.name) << "\\fR";
    if (!r.default_value.empty()) o << "; default: " << roff(r.default_value);
    if (r.metavar.empty()) o << " (a flag)";
    o << ".\n";
  }
  for (const auto& e : kCommandLineOnly)
    o << ".TP\n" << roff_flags(split(e.flags, ','), e.metavar) << "\n" << roff(e.meaning)
      << ".\n";
  o << ".SH CONFIGURATION FILE\n"
       "A YAML mapping of setting names (the YAML keys above) to values, for example:\n"
       ".PP\n.nf\n.RS\n"
       "bind: [\"127.0.0.1:8000\", \"unix:/run/site/alicorn.sock\"]\n"
       "workers: 4\n"
       "worker_class: gthread\n"
       "threads: 8\n"
       "wsgi_app: mysite.wsgi:application\n"
       "chdir: /srv/mysite\n"
       ".RE\n.fi\n"
       ".PP\n"
       ".B alicorn \\-\\-print\\-config\n"
       "prints every resolved setting in this form.\n"
       ".SH WORKER PLUGINS\n"
       "\\fB\\-k\\fR \\fINAME\\fR loads \\fINAME\\fR.so from the first folder that has it:\n"
       "each folder of \\fBALICORN_PLUGIN_PATH\\fR, then\n"
       "\\fI<prefix>/<libdir>/alicorn/workers\\fR beside the binary, then the folder\n"
       "compiled in at build time.\n"
       "\\fB\\-k\\fR \\fI/path/to/plugin.so\\fR loads that file.\n"
       "A plugin built for another ABI major is refused with a message naming both versions.\n"
       ".B alicorn \\-\\-list\\-workers\n"
       "shows what is found.\n"
       ".SH SIGNALS\n";
  for (const auto& s : kSignals)
    o << ".TP\n.B " << roff(s.name) << "\n" << roff(s.meaning) << ".\n";
  o << ".PP\n"
       "See \\fIoperations.md\\fR (installed with the documentation) for zero\\-downtime\n"
       "procedures.\n";
  o << ".SH ENVIRONMENT\n";
  for (const auto& e : kEnvironment)
    o << ".TP\n.B " << roff(e.name) << "\n" << roff(e.meaning) << ".\n";
  o << ".SH EXIT STATUS\n";
  for (const auto& e : kExitCodes) o << ".TP\n.B " << e.code << "\n" << roff(e.meaning) << ".\n";
  o << ".SH EXAMPLES\n"
       ".nf\n"
       "alicorn \\-w 4 \\-k gthread \\-\\-threads 8 \\-b 0.0.0.0:8000 mysite.wsgi:application\n"
       "alicorn \\-w 2 \\-k uv \\-b unix:/run/mysite/alicorn.sock mysite.wsgi:application\n"
       "alicorn \\-c /etc/alicorn/mysite.yaml\n"
       "alicorn \\-k ./my_worker.so hello:app\n"
       ".fi\n"
       ".SH SEE ALSO\n"
       "The documentation installed in \\fI<prefix>/share/doc/alicorn\\fR (configuration.md,\n"
       "deployment.md, migrating\\-from\\-gunicorn.md) and, for plugin authors, in\n"
       "\\fI<prefix>/share/doc/alicorn\\-dev\\fR (writing\\-a\\-worker\\-plugin.md).\n";
}

int usage(int code) {
  std::fprintf(code == 0 ? stdout : stderr,
               "usage: gen_settings_doc --markdown|--man [-o FILE]\n");
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  std::string format, output;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--markdown" || a == "--man") format = a.substr(2);
    else if (a == "-o" && i + 1 < argc) output = argv[++i];
    else if (a == "-h" || a == "--help") return usage(0);
    else return usage(2);
  }
  if (format.empty()) return usage(2);
  try {
    std::ostringstream text;
    if (format == "markdown") markdown(text);
    else man(text);
    if (output.empty()) {
      std::cout << text.str();
      return std::cout.flush() ? 0 : 1;
    }
    std::ofstream out(output, std::ios::binary | std::ios::trunc);
    out << text.str();
    out.close();
    if (!out) {
      std::fprintf(stderr, "gen_settings_doc: cannot write %s: %s\n", output.c_str(),
                   std::strerror(errno));
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gen_settings_doc: %s\n", e.what());
    return 1;
  }
}
