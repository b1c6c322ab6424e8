// The HTTP connection (http/) driven through the session_* host API with a fake application
// adapter: no Python, no WSGI. Checks the framing, keep-alive, pipelining, the adapter contract
// (run / next / end) and that nothing throws across the C ABI.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "app/app_adapter.hpp"
#include "config/config.hpp"
#include "http/http_session.hpp"
#include "net/listeners.hpp"
#include "plugin/worker_runtime.hpp"

namespace alicorn {
namespace {

struct Seen {
  std::string method, target, scheme, remote_addr, remote_port, server_name, body;
  int runs = 0, nexts = 0, ends = 0;
  int64_t end_body_sent = -1;
};

// The application: a function of the request that fills the reply.
using Handler = std::function<app::AppSession::Result(app::Request&, app::Reply&)>;

class FakeSession final : public app::AppSession {
 public:
  FakeSession(Handler& h, Seen& seen, std::vector<std::string>& stream)
      : handler_(h), seen_(seen), stream_(stream) {}
  Result run(app::Request& req, app::Reply& reply) override {
    ++seen_.runs;
    seen_.method = req.method;
    seen_.target = req.target;
    seen_.scheme = req.scheme;
    seen_.remote_addr = req.remote_addr;
    seen_.remote_port = req.remote_port;
    seen_.server_name = req.server_name;
    seen_.body = req.body;
    next_ = 0;
    Result r = handler_(req, reply);
    needs_end = true;
    return r;
  }
  Next next(app::Reply& reply) override {
    ++seen_.nexts;
    if (next_ >= stream_.size()) return Next::End;
    if (stream_[next_] == "!") return Next::Error;
    reply.chunks.emplace_back(stream_[next_++]);
    return Next::More;
  }
  void end(const app::Reply&, int64_t body_sent) override {
    ++seen_.ends;
    seen_.end_body_sent = body_sent;
    needs_end = false;
  }

 private:
  Handler& handler_;
  Seen& seen_;
  std::vector<std::string>& stream_;
  size_t next_ = 0;
};

class FakeAdapter final : public app::AppAdapter {
 public:
  app::AppSession* open_session() override { return new FakeSession(handler, seen, stream); }
  Handler handler;
  Seen seen;
  std::vector<std::string> stream;  // chunks next() yields; "!" fails
};

class HttpSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Listener l;
    l.server_name = "listener.test";
    l.server_port = "8000";
    listeners_.items().push_back(std::move(l));
    ctx_.config = &config_;
    ctx_.listeners = &listeners_;
    ctx_.listener_fds = {-1};
    ctx_.capabilities = ALICORN_CAP_KEEPALIVE | ALICORN_CAP_NONBLOCKING;
    ctx_.worker_config.keepalive = 2;
    ctx_.wsgi = static_cast<app::AppAdapter*>(&adapter_);
    adapter_.handler = [](app::Request&, app::Reply& r) {
      r.status = "200 OK";
      r.code = 200;
      r.started = true;
      r.headers = {{"Content-Type", "text/plain"}};
      static const std::string kBody = "Hello, World!";
      r.chunks.emplace_back(kBody);
      return app::AppSession::Result::Ok;
    };
    sockaddr_in peer{};
    peer.sin_family = AF_INET;
    peer.sin_port = htons(40000);
    ::inet_pton(AF_INET, "10.1.2.3", &peer.sin_addr);
    alicorn_conn_info info{};
    info.struct_size = sizeof info;
    info.fd = -1;
    info.peer = reinterpret_cast<const sockaddr*>(&peer);
    info.peer_len = sizeof peer;
    s_ = session_new(&ctx_, &info);
    ASSERT_NE(s_, nullptr);
  }
  void TearDown() override { session_free(s_); }

  int feed(std::string_view bytes) { return session_feed(s_, bytes.data(), bytes.size()); }

  // Drain session_pull; returns the bytes a plugin would write and the number of pulls.
  std::string pull_all(int* pulls = nullptr, int* last = nullptr) {
    std::string wire;
    int n = 0, rc;
    do {
      alicorn_output out{};
      out.struct_size = sizeof out;
      rc = session_pull(s_, &out);
      ++n;
      for (int i = 0; i < out.iovcnt; ++i)
        wire.append(static_cast<const char*>(out.iov[i].iov_base), out.iov[i].iov_len);
      if (n == 1 && pulls == nullptr) first_iovcnt_ = out.iovcnt;
    } while (rc == ALICORN_PULL_MORE && n < 100);
    if (pulls) *pulls = n;
    if (last) *last = rc;
    return wire;
  }

  static std::string body_of(const std::string& wire) {
    auto p = wire.find("\r\n\r\n");
    return p == std::string::npos ? "" : wire.substr(p + 4);
  }

  Config config_;
  ListenerSet listeners_;
  alicorn_worker_ctx ctx_;
  FakeAdapter adapter_;
  alicorn_session* s_ = nullptr;
  int first_iovcnt_ = 0;
};

TEST_F(HttpSessionTest, CompleteBodyIsOneBufferWithLengthAndKeepAlive) {
  ASSERT_EQ(feed("GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n"), ALICORN_FEED_READY);
  ASSERT_EQ(session_run(s_), 0);
  std::string wire = pull_all();
  EXPECT_EQ(first_iovcnt_, 1);  // head and body together: one writev
  EXPECT_EQ(wire.rfind("HTTP/1.1 200 OK\r\nServer: alicorn\r\nDate: ", 0), 0u) << wire;
  EXPECT_NE(wire.find("\r\nContent-Type: text/plain\r\n"), std::string::npos);
  EXPECT_NE(wire.find("\r\nContent-Length: 13\r\n"), std::string::npos);
  EXPECT_EQ(wire.find("Connection:"), std::string::npos);
  EXPECT_EQ(body_of(wire), "Hello, World!");
  EXPECT_EQ(session_keep_alive(s_), 1);
  EXPECT_EQ(adapter_.seen.method, "GET");
  EXPECT_EQ(adapter_.seen.target, "/a?b=1");
  EXPECT_EQ(adapter_.seen.ends, 1);
  EXPECT_EQ(adapter_.seen.end_body_sent, 13);
}

TEST_F(HttpSessionTest, RequestCarriesPeerSchemeAndListener) {
  ASSERT_EQ(feed("POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"), ALICORN_FEED_READY);
  ASSERT_EQ(session_run(s_), 0);
  pull_all();
  EXPECT_EQ(adapter_.seen.scheme, "http");
  EXPECT_EQ(adapter_.seen.remote_addr, "10.1.2.3");
  EXPECT_EQ(adapter_.seen.remote_port, "40000");
  EXPECT_EQ(adapter_.seen.server_name, "listener.test");
  EXPECT_EQ(adapter_.seen.body, "abc");
}

TEST_F(HttpSessionTest, PipelinedRequestsAreServedInOrder) {
  ASSERT_EQ(feed("GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n"),
            ALICORN_FEED_READY);
  ASSERT_EQ(session_run(s_), 0);
  pull_all();
  EXPECT_EQ(adapter_.seen.target, "/1");
  ASSERT_EQ(session_keep_alive(s_), 1);
  ASSERT_EQ(feed(""), ALICORN_FEED_READY);
  ASSERT_EQ(session_run(s_), 0);
  pull_all();
  EXPECT_EQ(adapter_.seen.target, "/2");
  EXPECT_EQ(adapter_.seen.runs, 2);
}

TEST_F(HttpSessionTest, StreamingBodyIsChunkedOnHttp11) {
  adapter_.stream = {"ab", "cde"};
  adapter_.handler = [](app::Request&, app::Reply& r) {
    r.status = "200 OK";
    r.code = 200;
    r.started = true;
    r.body = app::Reply::Body::Streaming;
    return app::AppSession::Result::Ok;
  };
  ASSERT_EQ(feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), ALICORN_FEED_READY);
  ASSERT_EQ(session_run(s_), 0);
  int last = 0;
  std::string wire = pull_all(nullptr, &last);
  EXPECT_EQ(last, ALICORN_PULL_DONE);
  EXPECT_NE(wire.find("\r\nTransfer-Encoding: chunked\r\n"), std::string::npos) << wire;
  EXPECT_EQ(body_of(wire), "2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n");
  EXPECT_EQ(adapter_.seen.nexts, 3);
  EXPECT_EQ(adapter_.seen.end_body_sent, 5);
  EXPECT_EQ(session_keep_alive(s_), 1);
}

TEST_F(HttpSessionTest, StreamingBodyIsCloseDelimitedOnHttp10) {
  adapter_.stream = {"ab"};
  adapter_.handler = [](app::Request&, app::Reply& r) {
    r.status = "200 OK";
    r.code = 200;
    r.started = true;
    r.body = app::Reply::Body::Streaming;
    return app::AppSession::Result::Ok;
  };
  ASSERT_EQ(feed("GET / HTTP/1.0\r\n\r\n"), ALICORN_FEED_READY);
  ASSERT_EQ(session_run(s_), 0);
  std::string wire = pull_all();
  EXPECT_NE(wire.find("\r\nConnection: close\r\n"), std::string::npos) << wire;
  EXPECT_EQ(body_of(wire), "ab");
  EXPECT_EQ(session_keep_alive(s_), 0);
}

TEST_F(HttpSessionTest, AppLengthIsEnforcedAndShortBodyCloses) {
  adapter_.handler = [](app::Request&, app::Reply& r) {
    r.status = "200 OK";
    r.code = 200;
    r.started = true;
    r.length = 20;
    static const std::string kBody = "short";
    r.chunks.emplace_back(kBody);
    return app::AppSession::Result::Ok;
  };
  ASSERT_EQ(feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), ALICORN_FEED_READY);
  ASSERT_EQ(session_run(s_), 0);
  std::string wire = pull_all();
  EXPECT_NE(wire.find("\r\nContent-Length: 20\r\n"), std::string::npos);
  EXPECT_EQ(session_keep_alive(s_), 0);
}

TEST_F(HttpSessionTest, StreamingStopsAskingOnceTheLengthIsSent) {
  // Ten chunks on offer but Content-Length 5: "ab", "cde" fill it, the app is asked once
  // more (a generator may end there) and then no more (an endless iterable would otherwise
  // be pulled forever, its bytes dropped).
  adapter_.stream = {"ab", "cde", "f", "g", "h", "i", "j", "k", "l", "m"};
  adapter_.handler = [](app::Request&, app::Reply& r) {
    r.status = "200 OK";
    r.code = 200;
    r.started = true;
    r.length = 5;
    r.body = app::Reply::Body::Streaming;
    return app::AppSession::Result::Ok;
  };
  ASSERT_EQ(feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), ALICORN_FEED_READY);
  ASSERT_EQ(session_run(s_), 0);
  int last = 0;
  std::string wire = pull_all(nullptr, &last);
  EXPECT_EQ(last, ALICORN_PULL_DONE);
  EXPECT_NE(wire.find("\r\nContent-Length: 5\r\n"), std::string::npos) << wire;
  EXPECT_EQ(body_of(wire), "abcde");
  EXPECT_EQ(adapter_.seen.nexts, 3);
  EXPECT_EQ(adapter_.seen.ends, 1);
  EXPECT_EQ(adapter_.seen.end_body_sent, 5);
  EXPECT_EQ(session_keep_alive(s_), 1);
}

TEST_F(HttpSessionTest, HeadHasLengthButNoBody) {
  ASSERT_EQ(feed("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"), ALICORN_FEED_READY);
  ASSERT_EQ(session_run(s_), 0);
  std::string wire = pull_all();
  EXPECT_NE(wire.find("\r\nContent-Length: 13\r\n"), std::string::npos);
  EXPECT_EQ(body_of(wire), "");
}

TEST_F(HttpSessionTest, AppErrorIs500AndCloses) {
  adapter_.handler = [](app::Request&, app::Reply&) { return app::AppSession::Result::AppError; };
  ASSERT_EQ(feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), ALICORN_FEED_READY);
  ASSERT_EQ(session_run(s_), 0);
  std::string wire = pull_all();
  EXPECT_EQ(wire.rfind("HTTP/1.1 500 Internal Server Error\r\n", 0), 0u) << wire;
  EXPECT_NE(wire.find("\r\nConnection: close\r\n"), std::string::npos);
  EXPECT_EQ(session_keep_alive(s_), 0);
}

TEST_F(HttpSessionTest, ErrorMidStreamAborts) {
  adapter_.stream = {"ab", "!"};
  adapter_.handler = [](app::Request&, app::Reply& r) {
    r.status = "200 OK";
    r.code = 200;
    r.started = true;
    r.body = app::Reply::Body::Streaming;
    return app::AppSession::Result::Ok;
  };
  ASSERT_EQ(feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), ALICORN_FEED_READY);
  ASSERT_EQ(session_run(s_), 0);
  int last = 0;
  pull_all(nullptr, &last);
  EXPECT_EQ(last, ALICORN_PULL_ABORT);
  EXPECT_EQ(adapter_.seen.ends, 1);
  EXPECT_EQ(session_keep_alive(s_), 0);
}

TEST_F(HttpSessionTest, MalformedRequestIsAnsweredWithoutTheApp) {
  ASSERT_EQ(feed("GET / HTTP/1.1\r\n\r\n"), ALICORN_FEED_READY);  // no Host
  ASSERT_EQ(session_run(s_), 0);
  std::string wire = pull_all();
  EXPECT_EQ(wire.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << wire;
  EXPECT_EQ(adapter_.seen.runs, 0);
  EXPECT_EQ(session_keep_alive(s_), 0);
}

TEST_F(HttpSessionTest, ExceptionsDoNotCrossTheAbi) {
  adapter_.handler = [](app::Request&, app::Reply&) -> app::AppSession::Result {
    throw std::bad_alloc();
  };
  ASSERT_EQ(feed("GET /oom HTTP/1.1\r\nHost: x\r\n\r\n"), ALICORN_FEED_READY);
  EXPECT_EQ(session_run(s_), ALICORN_ENOMEM);
  EXPECT_EQ(session_keep_alive(s_), 0);
}

TEST_F(HttpSessionTest, OtherExceptionsAreAnInternalError) {
  adapter_.handler = [](app::Request&, app::Reply&) -> app::AppSession::Result {
    throw std::runtime_error("boom");
  };
  ASSERT_EQ(feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), ALICORN_FEED_READY);
  EXPECT_EQ(session_run(s_), -EIO);
  EXPECT_EQ(session_keep_alive(s_), 0);
}

TEST_F(HttpSessionTest, WrongStateAndNullAreRefused) {
  EXPECT_EQ(session_run(s_), ALICORN_ESTATE);
  alicorn_output out{};
  EXPECT_EQ(session_pull(s_, &out), ALICORN_ESTATE);
  EXPECT_EQ(session_run(nullptr), ALICORN_EINVAL);
  EXPECT_EQ(session_feed(nullptr, "", 0), ALICORN_EINVAL);
  EXPECT_EQ(session_pull(s_, nullptr), ALICORN_EINVAL);
}

// A blocking worker that gives recv/send: the body streams through app::BodyStream while the
// application runs.
struct FakeSocket {
  std::vector<std::string> incoming;  // what recv returns, in order; then 0 (EOF) or `error`
  ssize_t error = 0;
  std::string sent;
  static ssize_t recv(void* io, void* buf, size_t len) {
    auto* self = static_cast<FakeSocket*>(io);
    if (self->incoming.empty()) return self->error;
    std::string chunk = self->incoming.front();
    self->incoming.erase(self->incoming.begin());
    size_t n = std::min(len, chunk.size());
    std::memcpy(buf, chunk.data(), n);
    return static_cast<ssize_t>(n);
  }
  static ssize_t send(void* io, const void* buf, size_t len) {
    static_cast<FakeSocket*>(io)->sent.append(static_cast<const char*>(buf), len);
    return static_cast<ssize_t>(len);
  }
};

class StreamingBodyTest : public HttpSessionTest {
 protected:
  void SetUp() override {
    HttpSessionTest::SetUp();
    session_free(s_);
    ctx_.capabilities = ALICORN_CAP_KEEPALIVE;  // blocking
    alicorn_conn_info info{};
    info.struct_size = sizeof info;
    info.fd = -1;
    info.io = &sock_;
    info.recv = FakeSocket::recv;
    info.send = FakeSocket::send;
    s_ = session_new(&ctx_, &info);
    ASSERT_NE(s_, nullptr);
    // The application reads the whole body, then answers with it.
    adapter_.handler = [this](app::Request& req, app::Reply& r) {
      read_body_.clear();
      if (req.stream == nullptr) return app::AppSession::Result::AppError;
      for (;;) {
        std::string_view b = req.stream->buffered();
        read_body_.append(b);
        req.stream->consume(b.size());
        int rc = req.stream->fill();
        if (rc < 0) return app::AppSession::Result::BodyError;
        if (rc == 0) break;
      }
      r.status = "200 OK";
      r.code = 200;
      r.started = true;
      r.chunks.emplace_back(read_body_);
      return app::AppSession::Result::Ok;
    };
  }
  FakeSocket sock_;
  std::string read_body_;
};

TEST_F(StreamingBodyTest, BodyArrivesWhileTheAppReadsAndContinueIsSentOnFirstRead) {
  sock_.incoming = {"hel", "lo"};
  ASSERT_EQ(feed("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                 "Expect: 100-continue\r\n\r\n"),
            ALICORN_FEED_READY);  // headers only: the body is the app's to read
  EXPECT_EQ(sock_.sent, "");
  ASSERT_EQ(session_run(s_), 0);
  EXPECT_EQ(sock_.sent, "HTTP/1.1 100 Continue\r\n\r\n");
  EXPECT_EQ(read_body_, "hello");
  EXPECT_EQ(body_of(pull_all()), "hello");
  EXPECT_EQ(session_keep_alive(s_), 1);
}

TEST_F(StreamingBodyTest, ClientGoneMidBodyIs400AndNotReused) {
  sock_.incoming = {"hel"};
  ASSERT_EQ(feed("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"),
            ALICORN_FEED_READY);
  ASSERT_EQ(session_run(s_), 0);
  std::string wire = pull_all();
  EXPECT_EQ(wire.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << wire;
  EXPECT_NE(wire.find("incomplete request body"), std::string::npos);
  EXPECT_EQ(session_keep_alive(s_), 0);
}

TEST_F(StreamingBodyTest, StalledClientIs408) {
  sock_.incoming = {"hel"};
  sock_.error = -EAGAIN;  // SO_RCVTIMEO expired
  ASSERT_EQ(feed("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"),
            ALICORN_FEED_READY);
  ASSERT_EQ(session_run(s_), 0);
  std::string wire = pull_all();
  EXPECT_EQ(wire.rfind("HTTP/1.1 408 Request Timeout\r\n", 0), 0u) << wire;
  EXPECT_EQ(session_keep_alive(s_), 0);
}

TEST_F(StreamingBodyTest, MalformedChunkedBodyIs400FromTheParser) {
  sock_.incoming = {"zz\r\n"};
  ASSERT_EQ(feed("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"),
            ALICORN_FEED_READY);
  ASSERT_EQ(session_run(s_), 0);
  std::string wire = pull_all();
  EXPECT_EQ(wire.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << wire;
  EXPECT_EQ(session_keep_alive(s_), 0);
}

}  // namespace
}  // namespace alicorn
