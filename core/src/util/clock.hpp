// The server's clocks, in one place. Monotonic time for every interval (heartbeats, timeouts,
// request durations); wall-clock time only where a human reads it (access-log timestamps).
#pragma once

#include <sys/time.h>
#include <time.h>

#include <cstdint>

namespace alicorn::clock {

// Monotonic microseconds (CLOCK_MONOTONIC): request durations.
inline int64_t mono_us() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

// Monotonic milliseconds: heartbeats, graceful-stop deadlines, worker timeouts.
inline int64_t mono_ms() { return mono_us() / 1000; }

// Wall-clock microseconds since the epoch: the access log's %(t)s.
inline int64_t unix_us() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

}  // namespace alicorn::clock
