// The arbiter's operational settings (umask, user, group, daemon, proc_name, hooks), to_json,
// and ListenerSet::inherit / update (over loopback sockets).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "net/listeners.hpp"
#include "master/process.hpp"

using namespace alicorn;

namespace {

Config cfg(std::vector<std::string> args) {
  std::vector<const char*> argv{"alicorn"};
  for (const auto& a : args) argv.push_back(a.c_str());
  return load_config(static_cast<int>(argv.size()), argv.data(), {}).config;
}

std::string error_of(std::vector<std::string> args) {
  try {
    cfg(std::move(args));
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

int port_of(int fd) {
  sockaddr_in sin{};
  socklen_t len = sizeof sin;
  getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len);
  return ntohs(sin.sin_port);
}

}  // namespace

TEST(OpsConfig, ParseUmask) {
  EXPECT_EQ(parse_umask("0"), 0);
  EXPECT_EQ(parse_umask("022"), 022);
  EXPECT_EQ(parse_umask("0o22"), 022);
  EXPECT_EQ(parse_umask("0O777"), 0777);
  EXPECT_EQ(parse_umask("0x12"), 0x12);
  EXPECT_EQ(parse_umask("18"), 18);
  EXPECT_EQ(parse_umask(" 0077 "), 077);
  EXPECT_EQ(parse_umask(""), -1);
  EXPECT_EQ(parse_umask("08"), -1);
  EXPECT_EQ(parse_umask("01000"), -1);
  EXPECT_EQ(parse_umask("-1"), -1);
  EXPECT_EQ(parse_umask("0o"), -1);
  EXPECT_EQ(parse_umask("abc"), -1);
}

TEST(OpsConfig, FlagsAndDefaults) {
  Config d = cfg({"m:a"});
  EXPECT_FALSE(d.daemon);
  EXPECT_FALSE(d.user);
  EXPECT_FALSE(d.group);
  EXPECT_EQ(d.umask, 0);
  EXPECT_FALSE(d.initgroups);
  EXPECT_FALSE(d.proc_name);
  EXPECT_FALSE(d.hooks);

  Config c = cfg({"-D", "-u", "0", "-g", "0", "-m", "027", "--initgroups", "-n", "site",
                  "--hooks", "pkg.hooks", "m:a"});
  EXPECT_TRUE(c.daemon);
  EXPECT_EQ(c.user, "0");
  EXPECT_EQ(c.group, "0");
  EXPECT_EQ(c.umask, 027);
  EXPECT_TRUE(c.initgroups);
  EXPECT_EQ(c.proc_name, "site");
  EXPECT_EQ(c.hooks, "pkg.hooks");
  Config long_flags = cfg({"--daemon", "--user", "root", "--group", "root", "--umask", "0o7",
                           "--name", "x", "m:a"});
  EXPECT_EQ(long_flags.umask, 7);
  EXPECT_EQ(long_flags.user, "root");
}

TEST(OpsConfig, RefusedValuesNameTheSetting) {
  EXPECT_NE(error_of({"--umask", "999", "m:a"}).find("umask: '999' is not a valid umask"),
            std::string::npos);
  EXPECT_NE(error_of({"--user", "no-such-user-xyz", "m:a"})
                .find("user: 'no-such-user-xyz' is not a known user"),
            std::string::npos);
  EXPECT_NE(error_of({"--group", "no-such-group-xyz", "m:a"})
                .find("group: 'no-such-group-xyz' is not a known group"),
            std::string::npos);
  EXPECT_NE(error_of({"--name=", "m:a"}).find("proc_name"), std::string::npos);
}

TEST(OpsConfig, ResolveUserAndGroup) {
  ResolvedUser root = resolve_user("root");
  EXPECT_EQ(root.uid, 0u);
  EXPECT_EQ(root.primary_gid, 0u);
  EXPECT_EQ(root.name, "root");
  ResolvedUser numeric = resolve_user("0");
  EXPECT_EQ(numeric.name, "root");
  ResolvedUser unknown_id = resolve_user("4000000");
  EXPECT_EQ(unknown_id.uid, 4000000u);
  EXPECT_EQ(unknown_id.name, "");
  EXPECT_EQ(resolve_group("root"), 0u);
  EXPECT_EQ(resolve_group("123"), 123u);
  EXPECT_THROW(resolve_user("no-such-user-xyz"), ConfigError);
  EXPECT_THROW(resolve_group("no-such-group-xyz"), ConfigError);
}

TEST(OpsConfig, IdentityDefaultsToThePrimaryGroup) {
  Identity id = resolve_identity(cfg({"-u", "root", "m:a"}));
  ASSERT_TRUE(id.uid);
  ASSERT_TRUE(id.gid);
  EXPECT_EQ(*id.uid, 0u);
  EXPECT_EQ(*id.gid, 0u);
  EXPECT_EQ(id.user_name, "root");
  Identity none = resolve_identity(cfg({"m:a"}));
  EXPECT_FALSE(none.uid);
  EXPECT_FALSE(none.gid);
  EXPECT_FALSE(identity_changes(none));
}

TEST(OpsConfig, YamlRoundTripOfTheNewSettings) {
  Config original = cfg({"-D", "-u", "0", "-g", "0", "-m", "0o22", "--initgroups", "-n",
                         "a b", "--hooks", "/etc/x hooks.py", "m:a"});
  std::string yaml = to_yaml(original);
  EXPECT_NE(yaml.find("umask: 0022"), std::string::npos) << yaml;
  auto dir = std::filesystem::temp_directory_path() / ("alicorn-ops-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::string path = (dir / "c.yaml").string();
  {
    FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(yaml.c_str(), f);
    std::fclose(f);
  }
  Config reloaded = cfg({"-c", path});
  reloaded.config.reset();
  EXPECT_EQ(reloaded, original) << yaml;
  std::filesystem::remove_all(dir);
}

TEST(OpsConfig, ToJson) {
  Config c = cfg({"-b", "127.0.0.1:9", "-w", "3", "-e", "K=\"q\"\n", "-n", "n", "m:a"});
  std::string json = to_json(c);
  EXPECT_EQ(json.front(), '{');
  EXPECT_EQ(json.back(), '}');
  EXPECT_NE(json.find("\"workers\": 3"), std::string::npos) << json;
  EXPECT_NE(json.find("\"bind\": [\"127.0.0.1:9\"]"), std::string::npos) << json;
  EXPECT_NE(json.find("\"raw_env\": {\"K\": \"\\\"q\\\"\\n\"}"), std::string::npos) << json;
  EXPECT_NE(json.find("\"proc_name\": \"n\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"hooks\": null"), std::string::npos) << json;
  EXPECT_NE(json.find("\"daemon\": false"), std::string::npos) << json;
  EXPECT_NE(json.find("\"timeout\": 30"), std::string::npos) << json;
}

// ---- ListenerSet::inherit / update ----------------------------------------------------------

TEST(ListenerUpdate, KeepsOpensAndCloses) {
  ListenOptions opts;
  ListenerSet set = ListenerSet::open({parse_bind("127.0.0.1:0")}, opts);
  ASSERT_EQ(set.items().size(), 1u);
  int first_fd = set.items()[0].fd.get();
  int port = port_of(first_fd);
  ASSERT_GT(port, 0);
  BindAddress same = parse_bind("127.0.0.1:" + std::to_string(port));

  // The same address (by its resolved port): the socket stays, nothing opened or closed.
  ListenerChanges none = set.update({same}, opts);
  EXPECT_TRUE(none.opened.empty());
  EXPECT_TRUE(none.closed.empty());
  ASSERT_EQ(set.items().size(), 1u);
  EXPECT_EQ(set.items()[0].fd.get(), first_fd);

  // Add one.
  ListenerChanges added = set.update({same, parse_bind("127.0.0.1:0")}, opts);
  EXPECT_EQ(added.opened.size(), 1u);
  EXPECT_TRUE(added.closed.empty());
  ASSERT_EQ(set.items().size(), 2u);
  EXPECT_EQ(set.items()[0].fd.get(), first_fd);
  int second_port = port_of(set.items()[1].fd.get());

  // Remove the first: it is closed.
  ListenerChanges removed =
      set.update({parse_bind("127.0.0.1:" + std::to_string(second_port))}, opts);
  EXPECT_TRUE(removed.opened.empty());
  ASSERT_EQ(removed.closed.size(), 1u);
  EXPECT_EQ(removed.closed[0], "http://127.0.0.1:" + std::to_string(port));
  ASSERT_EQ(set.items().size(), 1u);
  EXPECT_EQ(port_of(set.items()[0].fd.get()), second_port);
}

TEST(ListenerUpdate, AllOrNothing) {
  ListenOptions opts;
  ListenerSet set = ListenerSet::open({parse_bind("127.0.0.1:0")}, opts);
  int fd = set.items()[0].fd.get();
  int port = port_of(fd);
  BindAddress same = parse_bind("127.0.0.1:" + std::to_string(port));
  // An address that cannot be bound: nothing changes.
  EXPECT_THROW(set.update({same, parse_bind("unix:/nonexistent-dir/x.sock")}, opts),
               std::runtime_error);
  ASSERT_EQ(set.items().size(), 1u);
  EXPECT_EQ(set.items()[0].fd.get(), fd);
}

TEST(ListenerUpdate, InheritMatchesUnixAndTcp) {
  auto dir = std::filesystem::temp_directory_path() / ("alicorn-lu-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::string path = (dir / "s.sock").string();
  ListenOptions opts;
  opts.umask = 077;
  ListenerSet original = ListenerSet::open({parse_bind("127.0.0.1:0"), parse_bind("unix:" + path)},
                                           opts);
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  int tcp_port = port_of(original.items()[0].fd.get());
  // As a new master would receive them after exec: plain fd numbers.
  std::vector<int> fds;
  for (int fd : original.fds()) fds.push_back(dup(fd));
  ListenerSet inherited = ListenerSet::inherit(fds, true);
  ASSERT_EQ(inherited.items().size(), 2u);
  EXPECT_TRUE(inherited.items()[1].is_unix);
  ListenerChanges changes =
      inherited.update({parse_bind("unix:" + path),
                        parse_bind("127.0.0.1:" + std::to_string(tcp_port))},
                       opts, false);
  EXPECT_TRUE(changes.opened.empty());
  EXPECT_TRUE(changes.closed.empty());
  ASSERT_EQ(inherited.items().size(), 2u);
  EXPECT_EQ(inherited.items()[0].fd.get(), fds[1]);  // reordered as the bind list says
  EXPECT_EQ(inherited.items()[1].fd.get(), fds[0]);
  inherited.close(false);
  original.close(true);
  std::filesystem::remove_all(dir);
}

TEST(ListenerUpdate, InheritRefusesWhatIsNotAListeningSocket) {
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  EXPECT_THROW(ListenerSet::inherit({pipefd[0]}, true), std::runtime_error);
  close(pipefd[1]);
}
