// Parsing of the WSGI application spec, `module:attr`, `module:factory(args)` (see app_spec.hpp).
#include "config/app_spec.hpp"

#include <string>

#include "config/config.hpp"

namespace alicorn {
namespace {

[[noreturn]] void fail(std::string_view spec, const std::string& problem) {
  throw ConfigError("wsgi_app: '" + std::string(spec) + "' " + problem +
                    " (expected MODULE:ATTRIBUTE, e.g. myproject.wsgi:application)");
}

// Bytes >= 0x80 are accepted as letters: Python 3 allows non-ASCII identifiers, and the import
// in the worker reports anything this lenience lets through.
bool ident_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}
bool ident_char(char c) { return ident_start(c) || (c >= '0' && c <= '9'); }

// "a.b.c": one or more identifiers joined by single dots.
bool dotted_identifier(std::string_view text) {
  bool at_start = true;
  for (char c : text) {
    if (c == '.') {
      if (at_start) return false;
      at_start = true;
    } else if (at_start ? !ident_start(c) : !ident_char(c)) {
      return false;
    } else {
      at_start = false;
    }
  }
  return !at_start;
}

// Index of the ')' that closes the '(' at `open`, skipping quoted strings; npos if unbalanced.
size_t matching_paren(std::string_view text, size_t open) {
  int depth = 0;
  char quote = 0;
  for (size_t i = open; i < text.size(); ++i) {
    char c = text[i];
    if (quote) {
      if (c == '\\') ++i;
      else if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '(') {
      ++depth;
    } else if (c == ')' && --depth == 0) {
      return i;
    }
  }
  return std::string_view::npos;
}

std::string_view trim(std::string_view s) {
  const char* ws = " \t\r\n";
  auto first = s.find_first_not_of(ws);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(ws) - first + 1);
}

}  // namespace

AppSpec parse_app_spec(std::string_view spec) {
  if (spec.empty())
    throw ConfigError("wsgi_app: empty application spec (expected MODULE:ATTRIBUTE, "
                      "e.g. myproject.wsgi:application)");
  AppSpec out;
  out.spec = std::string(spec);
  auto colon = spec.find(':');
  std::string_view module = spec.substr(0, colon);
  std::string_view attr = colon == std::string_view::npos ? "application" : spec.substr(colon + 1);

  if (module.empty()) fail(spec, "has an empty module name");
  if (!dotted_identifier(module))
    fail(spec, "has an invalid module name '" + std::string(module) + "'");
  if (attr.empty()) fail(spec, "has an empty attribute after ':'");

  if (auto open = attr.find('('); open != std::string_view::npos) {
    auto close = matching_paren(attr, open);
    if (close == std::string_view::npos) fail(spec, "has unbalanced parentheses");
    if (close + 1 != attr.size())
      fail(spec, "has unexpected text after ')': '" + std::string(attr.substr(close + 1)) + "'");
    out.call = true;
    out.call_args = std::string(trim(attr.substr(open + 1, close - open - 1)));
    attr = attr.substr(0, open);
  } else if (attr.find(')') != std::string_view::npos) {
    fail(spec, "has unbalanced parentheses");
  }
  if (!dotted_identifier(attr))
    fail(spec, "has an invalid attribute name '" + std::string(attr) + "'");

  out.module = std::string(module);
  out.attribute = std::string(attr);
  return out;
}

}  // namespace alicorn
