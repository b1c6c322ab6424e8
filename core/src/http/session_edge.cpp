#include "http/session_edge.hpp"

#include "log/log.hpp"
#include "net/edge_settings.hpp"
#include "plugin/worker_runtime.hpp"

namespace alicorn {

void edge_session_init(alicorn_session* s, const alicorn_conn_info* info) {
  const EdgeSettings& e = edge_settings(*s->ctx->config);
  const sockaddr* peer = info->peer;
  s->forwarded_trusted = e.forwarded.trusts(peer);
  if (e.proxy_mode != ProxyMode::Off) {
    bool trusted = peer == nullptr || peer->sa_family == AF_UNIX || e.proxy_allow.contains(peer);
    s->proxy = std::make_unique<ProxyHeaderParser>(e.proxy_mode, trusted);
  }
}

int edge_consume_proxy(alicorn_session* s, const char*& data, size_t& len) {
  size_t used = 0;
  switch (s->proxy->feed(data, len, used)) {
    case ProxyHeaderParser::Result::NeedMore:
      return 0;
    case ProxyHeaderParser::Result::Done: {
      const ProxyHeader& h = s->proxy->header();
      if (!h.local) {
        log::error().debug("PROXY v{} header from ip={}: client {} port {}", h.version,
                           s->remote_addr, h.src_addr, h.src_port);
        s->remote_addr = h.src_addr;
        s->remote_port = std::to_string(h.src_port);
      }
      data += used;
      len -= used;
      s->proxy.reset();
      return 1;
    }
    case ProxyHeaderParser::Result::Absent:
      s->pending.append(s->proxy->buffered());  // replayed before this call's bytes
      s->proxy.reset();
      return 1;
    case ProxyHeaderParser::Result::Error:
      break;
  }
  log::error().warn("Invalid PROXY protocol header from ip={}: {}; closing the connection",
                    s->remote_addr, s->proxy->error());
  return ALICORN_EINVAL;
}

void edge_after_headers(alicorn_session* s) {
  const EdgeSettings& e = edge_settings(*s->ctx->config);
  s->ex().fwd = read_forwarded(e.forwarded, s->forwarded_trusted, s->parser.headers());
  if (s->ex().fwd.error_status != 0) {
    s->parser.reject(s->ex().fwd.error_status, s->ex().fwd.error);
  } else if (e.forwarded.refuse_underscore) {
    if (const HttpHeader* h =
            refused_underscore_header(e.forwarded, s->forwarded_trusted, s->parser.headers()))
      s->parser.reject(400, "header name with an underscore: " + std::string(h->name) +
                                " (header_map = refuse)");
  }
}

void edge_describe(alicorn_session* s) {
  app::Request& q = s->ex().req;
  if (s->ex().fwd.https) q.scheme = "https";
  q.script_name = s->ex().fwd.script_name;
  if (!q.script_name) {
    const std::string& root = edge_settings(*s->ctx->config).forwarded.root_path;
    if (!root.empty()) q.script_name = std::string_view(root);
  }
  q.path_info = s->ex().fwd.path_info;
  q.remote_user = s->ex().fwd.remote_user;
}

}  // namespace alicorn
