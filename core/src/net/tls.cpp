#include "net/tls.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

namespace alicorn {
namespace {

SSL_CTX* g_ctx = nullptr;

std::string ssl_errors() {
  std::string all = tls_error_queue();
  return all.empty() ? "unknown OpenSSL error" : all;
}

// Gunicorn's ssl_version: a Python ssl.PROTOCOL_* name or number. The generic ones (TLS,
// TLS_SERVER, SSLv23) and TLSv1_2 mean TLS 1.2 at least; TLSv1 and TLSv1_1 are taken as that
// minimum (OpenSSL's security level may refuse them anyway); TLSv1_3 means 1.3 only.
int min_version(const std::string& v) {
  std::string u;
  for (char c : v) u += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (u.rfind("PROTOCOL_", 0) == 0) u = u.substr(9);
  if (u.rfind("SSL.PROTOCOL_", 0) == 0) u = u.substr(13);
  if (u == "TLS" || u == "TLS_SERVER" || u == "SSLV23" || u == "2" || u == "17" ||
      u == "TLSV1_2" || u == "TLSV1.2" || u == "5")
    return TLS1_2_VERSION;
  if (u == "TLSV1" || u == "3") return TLS1_VERSION;
  if (u == "TLSV1_1" || u == "4") return TLS1_1_VERSION;
  if (u == "TLSV1_3" || u == "TLSV1.3") return TLS1_3_VERSION;
  return 0;
}

bool readable(const std::string& path, std::string& why) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    why = std::strerror(errno);
    return false;
  }
  std::fclose(f);
  return true;
}

int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void*) {
  static const unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned char* sel = nullptr;
  if (SSL_select_next_proto(&sel, outlen, kHttp11, sizeof kHttp11, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;  // no http/1.1 offered: go on without ALPN
  *out = sel;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

void validate_tls_settings(Config& c) {
  if (c.cert_reqs < 0 || c.cert_reqs > 2)
    throw ConfigError("cert_reqs: " + std::to_string(c.cert_reqs) +
                      " (expected 0 none, 1 optional, 2 required)");
  int min = min_version(c.ssl_version);
  if (min == 0)
    throw ConfigError("ssl_version: '" + c.ssl_version +
                      "' is not a TLS version (expected TLS_SERVER, TLS, SSLv23, TLSv1, TLSv1_1, "
                      "TLSv1_2, TLSv1_3 or their ssl.PROTOCOL_* numbers)");
  if (!c.certfile) {
    if (c.keyfile) throw ConfigError("keyfile: set without certfile (TLS needs both)");
    if (g_ctx != nullptr) SSL_CTX_free(g_ctx), g_ctx = nullptr;
    return;
  }
  const std::string& cert = *c.certfile;
  const std::string key = c.keyfile ? *c.keyfile : cert;  // a PEM holding both, as in Gunicorn
  std::string why;
  if (!readable(cert, why)) throw ConfigError("certfile: cannot read '" + cert + "': " + why);
  if (!readable(key, why))
    throw ConfigError(std::string(c.keyfile ? "keyfile" : "certfile") + ": cannot read '" + key +
                      "': " + why);
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) throw ConfigError("certfile: cannot create a TLS context: " + ssl_errors());
  auto fail = [&](const std::string& what) {
    std::string e = ssl_errors();
    SSL_CTX_free(ctx);
    throw ConfigError(what + ": " + e);
  };
  SSL_CTX_set_min_proto_version(ctx, min);
  if (min == TLS1_3_VERSION) SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_num_tickets(ctx, 0);  // no post-handshake output to send
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1)
    fail("certfile: '" + cert + "' is not a PEM certificate");
  if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH)
      fail("keyfile: '" + key + "' does not match certfile '" + cert + "'");
    fail(std::string(c.keyfile ? "keyfile" : "certfile") + ": '" + key +
         "' is not a PEM private key");
  }
  if (SSL_CTX_check_private_key(ctx) != 1)
    fail("keyfile: '" + key + "' does not match certfile '" + cert + "'");
  if (c.ciphers && !c.ciphers->empty() && SSL_CTX_set_cipher_list(ctx, c.ciphers->c_str()) != 1)
    fail("ciphers: '" + *c.ciphers + "' names no usable cipher");
  if (c.ca_certs) {
    if (!readable(*c.ca_certs, why)) {
      SSL_CTX_free(ctx);
      throw ConfigError("ca_certs: cannot read '" + *c.ca_certs + "': " + why);
    }
    if (SSL_CTX_load_verify_locations(ctx, c.ca_certs->c_str(), nullptr) != 1)
      fail("ca_certs: '" + *c.ca_certs + "' holds no PEM certificate");
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(c.ca_certs->c_str()))
      SSL_CTX_set_client_CA_list(ctx, names);
  } else if (c.cert_reqs != 0) {
    SSL_CTX_free(ctx);
    throw ConfigError("cert_reqs: " + std::to_string(c.cert_reqs) +
                      " verifies client certificates and needs ca_certs");
  }
  int mode = c.cert_reqs == 0   ? SSL_VERIFY_NONE
             : c.cert_reqs == 1 ? SSL_VERIFY_PEER
                                : SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  SSL_CTX_set_verify(ctx, mode, nullptr);
  SSL_CTX_set_alpn_select_cb(ctx, select_alpn, nullptr);
  ERR_clear_error();
  if (g_ctx != nullptr) SSL_CTX_free(g_ctx);
  g_ctx = ctx;
}

ssl_ctx_st* tls_server_ctx() { return g_ctx; }

void tls_adopt_context(ssl_ctx_st* ctx) {
  SSL_CTX_up_ref(ctx);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_num_tickets(ctx, 0);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_alpn_select_cb(ctx, select_alpn, nullptr);
  if (g_ctx != nullptr) SSL_CTX_free(g_ctx);
  g_ctx = ctx;
}

std::string tls_error_queue() {
  std::string all;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!all.empty()) all += "; ";
    all += buf;
  }
  return all;
}

}  // namespace alicorn
