// TLS on a connection (issue 14), all inside the session: the plugin moves ciphertext and never
// knows. Memory BIOs: session_feed puts the bytes the plugin read into the SSL read BIO and the
// decrypted bytes go on to the HTTP parser (after the PROXY header, which comes in clear);
// session_pull encrypts the iovecs it hands out (a head, chunks, "100 Continue") into one buffer
// and hands out that instead. Handshake bytes leave the same way: session_feed answers
// ALICORN_FEED_SEND and the next pull carries them. The file segment (sendfile) is never used
// on a TLS connection: describe_request turns can_sendfile off, so files come as chunks.
#pragma once

#include <alicorn/worker.h>

#include <cstddef>
#include <string>

namespace alicorn {

struct TlsConn;

// At session_new, when the server has a TLS context: the SSL object, scheme "https".
void tls_session_init(alicorn_session* s);

// The plugin's bytes in; what they decrypt to appended to `plain`. 0, or < 0 when the
// handshake or a record failed (logged; the connection closes).
int tls_decrypt(alicorn_session* s, const char* data, size_t len, std::string& plain);

// Encrypted bytes wait to be sent (handshake).
bool tls_has_output(const alicorn_session* s);

// Replace out's iovecs by their encryption, behind any bytes waiting; one iovec, valid until
// the next pull. `last`: the connection closes after these bytes: a close_notify alert follows
// them (RFC 8446 6.1), so the client can tell a complete response from a truncated one.
void tls_encrypt(alicorn_session* s, alicorn_output* out, bool last = false);

void tls_free(TlsConn* t) noexcept;

}  // namespace alicorn
