// `alicorn ctl [-s PATH] [--json] COMMAND...`: talk to a running master's control socket.
#pragma once

namespace alicorn::control {

// argv[0] is "ctl". Returns the exit code: 0 done, 1 refused or unreachable, 2 bad usage.
int ctl_main(int argc, char** argv);

}  // namespace alicorn::control
