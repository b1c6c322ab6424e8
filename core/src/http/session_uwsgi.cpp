#include "http/session_uwsgi.hpp"

#include <sys/socket.h>

#include "log/log.hpp"
#include "net/edge_settings.hpp"
#include "net/uwsgi_settings.hpp"
#include "plugin/worker_runtime.hpp"

namespace alicorn {

void uwsgi_session_init(alicorn_session* s, const alicorn_conn_info* info) {
  const UwsgiSettings& u = uwsgi_settings(*s->ctx->config);
  if (!u.enabled) return;
  s->uwsgi = true;
  const sockaddr* peer = info->peer;
  s->uwsgi_refused = !(peer == nullptr || peer->sa_family == AF_UNIX || u.allow.contains(peer));
  s->uwsgi_packet = std::make_unique<UwsgiParser>(u.max_datasize);
}

int uwsgi_consume_packet(alicorn_session* s, const char*& data, size_t& len) {
  const std::string& peer = s->remote_addr.empty() ? std::string("unix socket") : s->remote_addr;
  if (s->uwsgi_refused) {
    log::error().warn("uwsgi request from ip={} refused: the address is not in "
                      "uwsgi_allow_ips; closing the connection", peer);
    s->uwsgi_packet.reset();
    return ALICORN_EINVAL;
  }
  if (len == 0) return 0;
  size_t used = 0;
  std::string why;
  switch (s->uwsgi_packet->feed(data, len, used)) {
    case UwsgiParser::Result::NeedMore:
      return 0;
    case UwsgiParser::Result::Error:
      why = s->uwsgi_packet->error();
      break;
    case UwsgiParser::Result::Done: {
      auto req = std::make_unique<UwsgiRequest>();
      if (!uwsgi_to_request(s->uwsgi_packet->vars(), *req, why)) break;
      s->pending.append(req->head);  // parsed before this call's remaining bytes (the body)
      s->uwsgi_req = std::move(req);
      s->uwsgi_packet.reset();
      data += used;
      len -= used;
      return 1;
    }
  }
  log::error().warn("Invalid uwsgi packet from ip={}: {}; closing the connection", peer, why);
  s->uwsgi_packet.reset();
  s->uwsgi_refused = true;  // any later bytes are refused too
  return ALICORN_EINVAL;
}

void uwsgi_describe(alicorn_session* s) {
  app::Request& q = s->ex().req;
  const UwsgiRequest* u = s->uwsgi_req.get();
  if (u == nullptr) return;
  q.scheme = u->scheme;
  if (u->remote_addr) q.remote_addr = *u->remote_addr;
  if (u->remote_port) q.remote_port = *u->remote_port;
  if (u->server_name || u->server_port) {
    q.server_fixed = true;
    if (u->server_name) q.server_name = *u->server_name;
    if (u->server_port) q.server_port = *u->server_port;
  }
  q.script_name = u->script_name ? std::optional<std::string_view>(*u->script_name) : std::nullopt;
  if (!q.script_name) {  // as for HTTP: root_path (or $SCRIPT_NAME) when the proxy sent none
    const std::string& root = edge_settings(*s->ctx->config).forwarded.root_path;
    if (!root.empty()) q.script_name = std::string_view(root);
  }
  q.path_info = u->path_info ? std::optional<std::string_view>(*u->path_info) : std::nullopt;
  q.query_string =
      u->query_string ? std::optional<std::string_view>(*u->query_string) : std::nullopt;
  q.remote_user = u->remote_user ? std::optional<std::string_view>(*u->remote_user) : std::nullopt;
  q.extra = &u->extra;
}

}  // namespace alicorn
