#include "http/session_tls.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <new>
#include <stdexcept>

#include "http/http_connection.hpp"
#include "log/log.hpp"
#include "net/tls.hpp"
#include "plugin/worker_runtime.hpp"

namespace alicorn {

struct TlsConn {
  SSL* ssl = nullptr;
  BIO* rbio = nullptr;  // ciphertext from the client (owned by ssl)
  BIO* wbio = nullptr;  // ciphertext to the client (owned by ssl)
  std::string cipher;   // what the last pull handed out
  bool handshaken = false;
  bool closed = false;  // close_notify received
  bool shutdown_sent = false;  // our close_notify is out
};

namespace {

std::string ssl_errors() { return tls_error_queue(); }

int fail(alicorn_session* s, const char* what, int err) {
  std::string why = ssl_errors();
  if (why.empty()) why = err == SSL_ERROR_SYSCALL ? "unexpected end of stream" : "error " + std::to_string(err);
  log::error().info("TLS {} failed from ip={}: {}; closing the connection", what,
                    s->remote_addr.empty() ? "unix socket" : s->remote_addr, why);
  return ALICORN_EINVAL;
}

}  // namespace

void tls_session_init(alicorn_session* s) {
  SSL_CTX* ctx = tls_server_ctx();
  if (ctx == nullptr) return;
  auto* t = new TlsConn;
  t->ssl = SSL_new(ctx);
  t->rbio = BIO_new(BIO_s_mem());
  t->wbio = BIO_new(BIO_s_mem());
  if (t->ssl == nullptr || t->rbio == nullptr || t->wbio == nullptr) {
    if (t->rbio) BIO_free(t->rbio);
    if (t->wbio) BIO_free(t->wbio);
    if (t->ssl) SSL_free(t->ssl);
    delete t;
    ERR_clear_error();
    throw std::bad_alloc();
  }
  BIO_set_mem_eof_return(t->rbio, -1);  // empty means "more to come", not EOF
  SSL_set_bio(t->ssl, t->rbio, t->wbio);
  SSL_set_accept_state(t->ssl);
  s->tls = t;
  s->scheme = "https";
}

int tls_decrypt(alicorn_session* s, const char* data, size_t len, std::string& plain) {
  TlsConn* t = s->tls;
  if (len > 0 && BIO_write(t->rbio, data, static_cast<int>(len)) != static_cast<int>(len))
    throw std::bad_alloc();
  if (!t->handshaken) {
    ERR_clear_error();
    int r = SSL_do_handshake(t->ssl);
    if (r <= 0) {
      int err = SSL_get_error(t->ssl, r);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return 0;
      return fail(s, "handshake", err);
    }
    t->handshaken = true;
    const unsigned char* alpn = nullptr;
    unsigned int alpn_len = 0;
    SSL_get0_alpn_selected(t->ssl, &alpn, &alpn_len);
    log::error().debug("TLS handshake with ip={}: {} {}{}{}", s->remote_addr,
                       SSL_get_version(t->ssl), SSL_get_cipher_name(t->ssl),
                       alpn_len ? " ALPN " : "",
                       std::string(reinterpret_cast<const char*>(alpn), alpn_len));
  }
  char buf[16 * 1024];
  while (!t->closed) {
    ERR_clear_error();
    int n = SSL_read(t->ssl, buf, sizeof buf);
    if (n > 0) {
      plain.append(buf, static_cast<size_t>(n));
      continue;
    }
    int err = SSL_get_error(t->ssl, n);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) break;
    if (err == SSL_ERROR_ZERO_RETURN) {
      t->closed = true;  // the client's close_notify: what came before still counts
      break;
    }
    return fail(s, "read", err);
  }
  return 0;
}

bool tls_has_output(const alicorn_session* s) {
  return s->tls != nullptr && BIO_ctrl_pending(s->tls->wbio) > 0;
}

void tls_encrypt(alicorn_session* s, alicorn_output* out, bool last) {
  TlsConn* t = s->tls;
  for (int i = 0; i < out->iovcnt; ++i) {
    const iovec& v = out->iov[i];
    if (v.iov_len == 0) continue;
    ERR_clear_error();
    int n = SSL_write(t->ssl, v.iov_base, static_cast<int>(v.iov_len));
    if (n != static_cast<int>(v.iov_len))
      throw std::runtime_error("TLS write failed: " + ssl_errors());
  }
  if (last && !t->shutdown_sent) {
    ERR_clear_error();
    SSL_shutdown(t->ssl);  // queues close_notify in wbio; we do not wait for the client's
    ERR_clear_error();
    t->shutdown_sent = true;
  }
  size_t pending = BIO_ctrl_pending(t->wbio);
  t->cipher.resize(pending);
  if (pending > 0 && BIO_read(t->wbio, t->cipher.data(), static_cast<int>(pending)) !=
                         static_cast<int>(pending))
    throw std::runtime_error("TLS write buffer short read");
  out->iovcnt = 0;
  if (pending > 0) {
    out->iov[0] = {t->cipher.data(), pending};
    out->iovcnt = 1;
  }
}

void tls_free(TlsConn* t) noexcept {
  if (t == nullptr) return;
  SSL_free(t->ssl);  // frees both BIOs
  delete t;
}

}  // namespace alicorn
