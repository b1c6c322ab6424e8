// Pure parts of core/src/metrics: bucket and class mapping, the Prometheus text, statsd
// address parsing, prefix normalisation and datagram format.
#include <gtest/gtest.h>

#include "metrics/prometheus.hpp"
#include "metrics/statsd.hpp"
#include "metrics/worker_counters.hpp"

using namespace alicorn::metrics;

TEST(WorkerCounters, StatusClassAndBuckets) {
  EXPECT_EQ(status_class(200), 2u);
  EXPECT_EQ(status_class(599), 5u);
  EXPECT_EQ(status_class(0), 0u);
  EXPECT_EQ(status_class(600), 0u);
  EXPECT_EQ(bucket_for(0), 0u);
  EXPECT_EQ(bucket_for(1000), 0u);  // le is inclusive
  EXPECT_EQ(bucket_for(1001), 1u);
  EXPECT_EQ(bucket_for(10000000), kBuckets - 2);
  EXPECT_EQ(bucket_for(10000001), kBuckets - 1);  // +Inf
}

TEST(WorkerCounters, TotalsAddAndReset) {
  WorkerCounters c{};
  c.by_class[2].store(3);
  c.buckets[1].store(2);
  c.buckets[4].store(1);
  c.duration_sum_us.store(500);
  c.in_flight.store(-1);  // a transient negative never shows
  CounterTotals t;
  t.add(c, true);
  EXPECT_EQ(t.by_class[2], 3u);
  EXPECT_EQ(t.count(), 3u);
  EXPECT_EQ(t.in_flight, 0);
  reset(c);
  CounterTotals z;
  z.add(c, true);
  EXPECT_EQ(z.count(), 0u);
}

TEST(Prometheus, CumulativeBucketsAndLabels) {
  ServerSnapshot s;
  s.totals.by_class[2] = 5;
  s.totals.buckets[0] = 2;
  s.totals.buckets[3] = 3;
  s.totals.duration_sum_us = 1500000;
  s.workers.push_back({42, 0, 1, 7, 1048576, 0, 0, "running"});
  s.workers_target = 1;
  s.restarts["memory"] = 2;
  s.backlog.push_back({"http://127.0.0.1:80", 4});
  s.backlog.push_back({"unix:/x\"y", -1});
  std::string text = render_prometheus(s);
  EXPECT_NE(text.find("alicorn_requests_total{status=\"2xx\"} 5\n"), std::string::npos);
  EXPECT_NE(text.find("alicorn_request_duration_seconds_bucket{le=\"0.001\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("alicorn_request_duration_seconds_bucket{le=\"0.01\"} 5\n"), std::string::npos);
  EXPECT_NE(text.find("alicorn_request_duration_seconds_bucket{le=\"+Inf\"} 5\n"), std::string::npos);
  EXPECT_NE(text.find("alicorn_request_duration_seconds_sum 1.5\n"), std::string::npos);
  EXPECT_NE(text.find("alicorn_request_duration_seconds_count 5\n"), std::string::npos);
  EXPECT_NE(text.find("alicorn_worker_restarts_total{reason=\"memory\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("alicorn_listen_backlog{listener=\"http://127.0.0.1:80\"} 4\n"), std::string::npos);
  EXPECT_EQ(text.find("unix:/x"), std::string::npos);  // unknown backlog: no sample
  EXPECT_NE(text.find("alicorn_worker_rss_bytes{pid=\"42\",slot=\"0\"} 1048576\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE alicorn_request_duration_seconds histogram\n"), std::string::npos);
}

TEST(Statsd, ParseHost) {
  auto t = parse_statsd_host("localhost:8125");
  EXPECT_EQ(t.host, "localhost");
  EXPECT_EQ(t.port, "8125");
  t = parse_statsd_host("[::1]:9125");
  EXPECT_EQ(t.host, "::1");
  EXPECT_EQ(t.port, "9125");
  t = parse_statsd_host("statsd");
  EXPECT_EQ(t.port, "8125");
  t = parse_statsd_host("unix:/run/statsd.sock");
  EXPECT_TRUE(t.unix_socket);
  EXPECT_EQ(t.host, "/run/statsd.sock");
  EXPECT_THROW(parse_statsd_host("host:99999"), std::invalid_argument);
  EXPECT_THROW(parse_statsd_host("host:abc"), std::invalid_argument);
  EXPECT_THROW(parse_statsd_host("unix:"), std::invalid_argument);
  EXPECT_THROW(parse_statsd_host("[::1:80"), std::invalid_argument);
}

TEST(Statsd, PrefixAsGunicorn) {
  EXPECT_EQ(normalize_prefix(""), "");
  EXPECT_EQ(normalize_prefix("app"), "app.");
  EXPECT_EQ(normalize_prefix("app."), "app.");
  EXPECT_EQ(normalize_prefix("app..."), "app.");
  EXPECT_EQ(normalize_prefix("a.b"), "a.b.");
}

#include "log/syslog_sink.hpp"

TEST(Syslog, ParseAddrAndFacility) {
  using alicorn::log::SyslogTarget;
  auto t = alicorn::log::parse_syslog_addr("udp://localhost:514");
  EXPECT_EQ(t.kind, SyslogTarget::Kind::Udp);
  EXPECT_EQ(t.host, "localhost");
  EXPECT_EQ(t.port, "514");
  t = alicorn::log::parse_syslog_addr("tcp://[::1]:601");
  EXPECT_EQ(t.kind, SyslogTarget::Kind::Tcp);
  EXPECT_EQ(t.host, "::1");
  t = alicorn::log::parse_syslog_addr("unix:///dev/log");
  EXPECT_EQ(t.kind, SyslogTarget::Kind::Unix);
  EXPECT_EQ(t.host, "/dev/log");
  t = alicorn::log::parse_syslog_addr("udp://loghost");
  EXPECT_EQ(t.port, "514");
  EXPECT_THROW(alicorn::log::parse_syslog_addr("smtp://x"), std::invalid_argument);
  EXPECT_THROW(alicorn::log::parse_syslog_addr("udp://host:0"), std::invalid_argument);
  EXPECT_THROW(alicorn::log::parse_syslog_addr("unix://"), std::invalid_argument);
  EXPECT_EQ(alicorn::log::syslog_facility("user"), 1);
  EXPECT_EQ(alicorn::log::syslog_facility("LOCAL7"), 23);
  EXPECT_EQ(alicorn::log::syslog_facility("nope"), -1);
}
