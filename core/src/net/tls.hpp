// TLS in the core (issue 14): the server's OpenSSL context, built from the settings in the
// master at startup (a missing, unreadable or mismatched certificate or key stops the start,
// before any fork) and inherited by every worker. The per-connection layer that uses it is
// http/session_tls.cpp; the plugins never see TLS.
#pragma once

#include <string>

#include "config/config.hpp"

struct ssl_ctx_st;

namespace alicorn {

// Checks the TLS settings and, when certfile is set, builds the server context (replacing one
// built before, for a reload). Throws ConfigError naming the setting and the file.
void validate_tls_settings(Config& config);

// The server context, or nullptr when TLS is off (no certfile).
ssl_ctx_st* tls_server_ctx();
// Serve with the context an ssl_context hook made (its owner keeps it alive) instead of the one
// built from the settings; ALPN http/1.1, no session tickets and no session cache are applied to
// it as to ours.
void tls_adopt_context(ssl_ctx_st* ctx);

// OpenSSL's error queue of this thread, emptied, as one line ("" when it is empty).
std::string tls_error_queue();

}  // namespace alicorn
