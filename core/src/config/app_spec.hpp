// The WSGI application to serve: `module:callable`, `module:factory()`, `module:factory(args)`,
// or `module` alone meaning `module:application` (Gunicorn's spelling). Parsing is pure: the
// module is imported by the Python runtime in the worker (or the master with --preload).
#pragma once

#include <map>
#include <string>
#include <string_view>

namespace alicorn {

struct AppSpec {
  std::string module;      // dotted module path, e.g. "myproject.wsgi"
  std::string attribute;   // dotted attribute path in it, e.g. "application" or "create_app"
  bool call = false;       // true for `factory(...)`: call the attribute to get the app
  std::string call_args;   // the text between the parentheses, e.g. "'dev', debug=True";
                           // evaluated as Python literal arguments by the runtime
  std::string spec;        // the text it was parsed from
  // --paste: the app is PasteDeploy's loadapp("config:<paste_file>", global_conf=...); module,
  // attribute and call are then unused.
  std::string paste_file;  // absolute path, with "#name" when one was given
  std::map<std::string, std::string> paste_global_conf;

  bool operator==(const AppSpec&) const = default;
};

// Throws ConfigError("wsgi_app: ...") for an empty module, a bad identifier, unbalanced
// parentheses or anything after the closing parenthesis.
AppSpec parse_app_spec(std::string_view spec);

}  // namespace alicorn
