#include "log/access_log.hpp"

#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <ctime>
#include <fmt/format.h>

#include "log/log.hpp"

namespace alicorn {
namespace {

std::string_view request_header(const RequestParser* req, std::string_view name) {
  if (req == nullptr) return {};
  for (const auto& h : req->headers())
    if (iequals(h.name, name)) return h.value;
  return {};
}

void append_or_dash(std::string& out, std::string_view v) {
  if (v.empty()) out.push_back('-');
  else out.append(v);
}

int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %(U)s is Gunicorn's PATH_INFO: the path percent-decoded.
void append_path(std::string& out, std::string_view path) {
  if (path.empty()) {
    out.push_back('-');
    return;
  }
  for (size_t i = 0; i < path.size(); ++i) {
    int hi, lo;
    if (path[i] == '%' && i + 2 < path.size() && (hi = hexval(path[i + 1])) >= 0 &&
        (lo = hexval(path[i + 2])) >= 0) {
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(path[i]);
    }
  }
}

// %(u)s: the user of "Authorization: Basic base64(user:password)", as Gunicorn finds it;
// empty when there is none or it does not decode.
std::string basic_auth_user(std::string_view auth) {
  if (auth.size() < 6 || strncasecmp(auth.data(), "basic ", 6) != 0) return {};
  std::string_view b64 = auth.substr(6);
  while (!b64.empty() && (b64.front() == ' ' || b64.front() == '\t')) b64.remove_prefix(1);
  while (!b64.empty() && (b64.back() == ' ' || b64.back() == '\t')) b64.remove_suffix(1);
  std::string decoded;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : b64) {
    int v = c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26
          : c >= '0' && c <= '9' ? c - '0' + 52 : c == '+' ? 62 : c == '/' ? 63 : c == '=' ? -2 : -1;
    if (v == -2) break;
    if (v < 0) return {};
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      decoded.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  auto colon = decoded.find(':');
  if (colon == std::string::npos) return {};
  return decoded.substr(0, colon);
}

// %({name}e)s: Gunicorn looks the name up (any case) in the WSGI environ. The variables the
// connection knows come from the request; any other name from the process environment.
void append_environ(std::string& out, const AccessRecord& rec, const std::string& name) {
  const RequestParser* req = rec.request;
  auto is = [&](std::string_view key) {
    return name.size() == key.size() && strncasecmp(name.data(), key.data(), key.size()) == 0;
  };
  if (req != nullptr) {
    std::string_view target = req->target();
    auto q = target.find('?');
    if (is("REQUEST_METHOD")) return append_or_dash(out, req->method());
    if (is("RAW_URI")) return append_or_dash(out, target);
    if (is("PATH_INFO")) return append_path(out, target.substr(0, q));
    if (is("QUERY_STRING")) {
      if (q != std::string_view::npos) out.append(target.substr(q + 1));
      return;
    }
    if (is("SERVER_PROTOCOL")) {
      fmt::format_to(std::back_inserter(out), "HTTP/{}.{}", req->http_major(), req->http_minor());
      return;
    }
    if (is("REMOTE_ADDR")) return append_or_dash(out, rec.remote_addr);
    if (name.size() > 5 && strncasecmp(name.data(), "HTTP_", 5) == 0) {
      for (const auto& h : req->headers()) {
        if (h.name.size() != name.size() - 5) continue;
        bool same = true;
        for (size_t i = 0; i < h.name.size() && same; ++i) {
          char a = h.name[i] == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(h.name[i])));
          same = a == std::toupper(static_cast<unsigned char>(name[i + 5]));
        }
        if (same) return append_or_dash(out, h.value);
      }
      return append_or_dash(out, {});
    }
  }
  const char* v = std::getenv(name.c_str());
  append_or_dash(out, v ? v : "");
}

AccessLogFormat g_format = AccessLogFormat::compile(
    R"(%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s")");

}  // namespace

AccessLogFormat AccessLogFormat::compile(std::string_view format) {
  AccessLogFormat f;
  std::string literal;
  size_t i = 0;
  while (i < format.size()) {
    if (format.compare(i, 2, "%(") == 0) {
      size_t close = format.find(")s", i + 2);
      if (close != std::string_view::npos) {
        std::string_view name = format.substr(i + 2, close - i - 2);
        if (!literal.empty()) f.parts_.push_back({Atom::Literal, std::move(literal)});
        literal.clear();
        Part part{Atom::Unknown, {}};
        if (name.size() > 3 && name.front() == '{' && name[name.size() - 2] == '}') {
          char kind = name.back();
          part.text = std::string(name.substr(1, name.size() - 3));
          part.atom = kind == 'i' ? Atom::In : kind == 'o' ? Atom::Out : kind == 'e' ? Atom::Env : Atom::Unknown;
        } else if (name.size() == 1) {
          static constexpr std::string_view kAtoms = "hlutrmUqHsBbfaTMDLp";
          auto pos = kAtoms.find(name[0]);
          if (pos != std::string_view::npos) part.atom = static_cast<Atom>(pos + 1);
        }
        f.parts_.push_back(std::move(part));
        i = close + 2;
        continue;
      }
    }
    literal.push_back(format[i++]);
  }
  if (!literal.empty()) f.parts_.push_back({Atom::Literal, std::move(literal)});
  return f;
}

void AccessLogFormat::render(const AccessRecord& rec, std::string& out) const {
  const RequestParser* req = rec.request;
  std::string_view target = req ? req->target() : std::string_view();
  auto q = target.find('?');
  for (const auto& part : parts_) {
    switch (part.atom) {
      case Atom::Literal: out.append(part.text); break;
      case Atom::h: append_or_dash(out, rec.remote_addr); break;
      case Atom::l: out.push_back('-'); break;
      case Atom::u: append_or_dash(out, basic_auth_user(request_header(req, "authorization"))); break;
      case Atom::t: {
        time_t secs = static_cast<time_t>(rec.start_unix_us / 1000000);
        std::tm tm{};
        ::localtime_r(&secs, &tm);
        char buf[64];
        size_t n = std::strftime(buf, sizeof buf, "[%d/%b/%Y:%H:%M:%S %z]", &tm);
        out.append(buf, n);
        break;
      }
      case Atom::r:
        if (req) out.append(req->request_line());
        else out.push_back('-');
        break;
      case Atom::m: append_or_dash(out, req ? req->method() : std::string_view()); break;
      case Atom::U: append_path(out, target.substr(0, q)); break;
      case Atom::q: if (q != std::string_view::npos) out.append(target.substr(q + 1)); break;
      case Atom::H:
        if (req) fmt::format_to(std::back_inserter(out), "HTTP/{}.{}", req->http_major(), req->http_minor());
        else out.push_back('-');
        break;
      case Atom::s: fmt::format_to(std::back_inserter(out), "{}", rec.status); break;
      case Atom::B: fmt::format_to(std::back_inserter(out), "{}", rec.body_bytes); break;
      case Atom::b:  // as Gunicorn's glogging: str(resp.sent), "0" for an empty body
        fmt::format_to(std::back_inserter(out), "{}", rec.body_bytes);
        break;
      case Atom::f: append_or_dash(out, request_header(req, "referer")); break;
      case Atom::a: append_or_dash(out, request_header(req, "user-agent")); break;
      case Atom::T: fmt::format_to(std::back_inserter(out), "{}", rec.duration_us / 1000000); break;
      case Atom::M: fmt::format_to(std::back_inserter(out), "{}", rec.duration_us / 1000); break;
      case Atom::D: fmt::format_to(std::back_inserter(out), "{}", rec.duration_us); break;
      case Atom::L:
        fmt::format_to(std::back_inserter(out), "{:.6f}", static_cast<double>(rec.duration_us) / 1e6);
        break;
      case Atom::p: fmt::format_to(std::back_inserter(out), "<{}>", ::getpid()); break;
      case Atom::In: append_or_dash(out, request_header(req, part.text)); break;
      case Atom::Out: {
        std::string_view v;
        if (rec.response_headers)
          for (const auto& [name, value] : *rec.response_headers)
            if (iequals(name, part.text)) v = value;
        if (v.empty() && rec.content_length >= 0 && iequals(part.text, "content-length")) {
          fmt::format_to(std::back_inserter(out), "{}", rec.content_length);
          break;
        }
        append_or_dash(out, v);
        break;
      }
      case Atom::Env: append_environ(out, rec, part.text); break;
      case Atom::Unknown: out.push_back('-'); break;
    }
  }
}

void set_access_log_format(std::string_view format) { g_format = AccessLogFormat::compile(format); }

void write_access_log(const AccessRecord& record) {
  spdlog::logger* logger = log::access();
  if (logger == nullptr) return;
  thread_local std::string line;
  line.clear();
  g_format.render(record, line);
  logger->info("{}", line);
}

}  // namespace alicorn
