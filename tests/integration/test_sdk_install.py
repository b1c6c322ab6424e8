"""Install, SDK and packaging, as a third party and a distribution see them.

`cmake --install <build> --prefix <tmp>` once (setUpClass), then:
  * the layout: bin/alicorn, the versioned libalicorn-core, the plugins under
    <libdir>/alicorn/workers, the SDK headers, the CMake package, alicorn.pc, the man page;
  * the installed binary finds its own plugins (`-k sync`) and lists them with --list-workers;
  * sdk/examples/echo_worker builds out of tree against <tmp> with find_package(alicorn)
    (CMAKE_PREFIX_PATH) and with make + pkg-config, and its "example" worker class serves by
    path, by name once installed into the prefix, and through ALICORN_PLUGIN_PATH;
  * `cpack -G DEB` on the build tree makes the five packages with the right Depends.
Bounded: everything here takes well under a minute on two cores.
"""

import glob
import hashlib
import http.client
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

from harness import (ALICORN_BIN, BUILD_DIR, HELLO, REQUEST_TIMEOUT, SOURCE_DIR,
                     AlicornTestCase, Result, project_version, run_alicorn, server_env)

EXAMPLE_SRC = os.path.join(SOURCE_DIR, "sdk", "examples", "echo_worker")
EXAMPLE_VERSION = "1.0.0"  # project(alicorn_example_worker VERSION ...) in its CMakeLists.txt
COMMAND_TIMEOUT = 90


def sdk_abi():
    with open(os.path.join(SOURCE_DIR, "sdk", "include", "alicorn", "worker.h")) as f:
        text = f.read()
    return "%s.%s" % (re.search(r"#define ALICORN_ABI_MAJOR (\d+)", text).group(1),
                      re.search(r"#define ALICORN_ABI_MINOR (\d+)", text).group(1))


def command(args, *, env=None, cwd=None, timeout=COMMAND_TIMEOUT):
    """Run a build/install command; fail with its output if it fails."""
    full_env = dict(os.environ)
    for var in ("CMAKE_PREFIX_PATH", "PKG_CONFIG_PATH", "ALICORN_PLUGIN_PATH", "DESTDIR",
                "MAKEFLAGS", "CFLAGS", "LDFLAGS"):
        full_env.pop(var, None)
    full_env.update(env or {})
    proc = subprocess.run(args, cwd=cwd, env=full_env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    out = proc.stdout.decode(errors="replace")
    if proc.returncode != 0:
        raise AssertionError("%s failed with %d:\n%s" % (" ".join(args), proc.returncode,
                                                           out[-6000:]))
    return out


def exported_symbols(path):
    """Dynamic symbols a shared object defines (nm -D --defined-only)."""
    out = command(["nm", "-D", "--defined-only", path])
    return sorted(line.split()[-1] for line in out.splitlines() if line.strip())


class SdkInstall(AlicornTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = tempfile.mkdtemp(prefix="alicorn-sdk-")
        try:
            cls._install_and_build()
        except BaseException:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise

    @classmethod
    def _install_and_build(cls):
        cls.prefix = os.path.join(cls.tmp, "prefix")
        cls.install_log = command(["cmake", "--install", BUILD_DIR, "--prefix", cls.prefix])
        found = (glob.glob(os.path.join(cls.prefix, "lib*", "libalicorn-core.so.*")) +
                 glob.glob(os.path.join(cls.prefix, "lib", "*", "libalicorn-core.so.*")))
        if not found:
            raise AssertionError("no libalicorn-core.so.* under %s:\n%s"
                                 % (cls.prefix, cls.install_log))
        cls.libdir = os.path.dirname(found[0])
        cls.workerdir = os.path.join(cls.libdir, "alicorn", "workers")
        cls.bin = os.path.join(cls.prefix, "bin", "alicorn")

        # The example, out of tree with CMake against the install, then installed into it.
        cls.example_build = os.path.join(cls.tmp, "example-cmake")
        generator = ["-G", "Ninja"] if shutil.which("ninja") else []
        cls.configure_log = command(
            ["cmake", "-S", EXAMPLE_SRC, "-B", cls.example_build] + generator +
            ["-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_PREFIX_PATH=" + cls.prefix,
             "-DCMAKE_INSTALL_PREFIX=" + cls.prefix])
        command(["cmake", "--build", cls.example_build])
        cls.example_so = os.path.join(cls.example_build, "example.so")
        command(["cmake", "--install", cls.example_build])
        # Reconfigured for another prefix, the function says the plugin would not be found.
        cls.other_prefix_log = command(
            ["cmake", "-S", EXAMPLE_SRC, "-B", cls.example_build,
             "-DCMAKE_INSTALL_PREFIX=" + os.path.join(cls.tmp, "elsewhere")])

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)
        super().tearDownClass()

    def installed(self, *parts):
        return os.path.join(self.prefix, *parts)

    # -- layout --------------------------------------------------------------------------------
    def test_layout(self):
        version = project_version()
        major = version.split(".")[0]
        self.assertTrue(os.access(self.bin, os.X_OK), self.install_log)
        lib = os.path.join(self.libdir, "libalicorn-core.so")
        self.assertTrue(os.path.isfile(lib + "." + version) and
                        not os.path.islink(lib + "." + version), self.install_log)
        self.assertEqual(os.readlink(lib + "." + major), "libalicorn-core.so." + version)
        self.assertEqual(os.readlink(lib), "libalicorn-core.so." + major)
        for name in ("sync", "gthread", "uv", "example"):
            self.assertTrue(os.path.isfile(os.path.join(self.workerdir, name + ".so")), name)
        # Test plugins and build tools stay in the build tree.
        self.assertEqual(sorted(os.listdir(self.workerdir)),
                         ["example.so", "gthread.so", "sync.so", "uv.so"])
        self.assertEqual(os.listdir(self.installed("bin")), ["alicorn"])
        self.assertEqual(sorted(os.listdir(self.installed("include", "alicorn"))),
                         ["worker.h", "worker_io.h"])
        cmake_dir = os.path.join(self.libdir, "cmake", "alicorn")
        for name in ("alicornConfig.cmake", "alicornConfigVersion.cmake", "alicornTargets.cmake",
                     "AlicornPlugin.cmake"):
            self.assertTrue(os.path.isfile(os.path.join(cmake_dir, name)), name)
        self.assertTrue(os.path.isfile(os.path.join(self.libdir, "pkgconfig", "alicorn.pc")))
        self.assertTrue(os.path.isfile(self.installed("share", "man", "man1", "alicorn.1")))
        self.assertTrue(os.path.isfile(self.installed("share", "doc", "alicorn-dev",
                                                      "writing-a-worker-plugin.md")))
        self.assertTrue(os.path.isfile(self.installed("share", "doc", "alicorn",
                                                      "configuration.md")))

    def test_soname_and_runpath(self):
        if not shutil.which("readelf"):
            self.skipTest("readelf not installed")
        major = project_version().split(".")[0]
        lib = os.path.join(self.libdir, "libalicorn-core.so." + project_version())
        self.assertIn("Library soname: [libalicorn-core.so.%s]" % major,
                      command(["readelf", "-d", lib]))
        # The binary finds its library relative to itself, wherever the prefix is.
        rel = os.path.relpath(self.libdir, self.prefix)
        self.assertRegex(command(["readelf", "-d", self.bin]),
                         r"R(UN)?PATH.*\[\$ORIGIN/\.\./%s\]" % re.escape(rel))

    def test_plugins_export_only_negotiate(self):
        if not shutil.which("nm"):
            self.skipTest("nm not installed")
        for name in ("sync", "gthread", "uv", "example"):
            with self.subTest(plugin=name):
                self.assertEqual(exported_symbols(os.path.join(self.workerdir, name + ".so")),
                                 ["alicorn_worker_negotiate"])

    # -- the installed binary ------------------------------------------------------------------
    def test_installed_binary_serves_sync(self):
        server = self.start_server("hello:app", ["-k", "sync"], program=self.bin)
        self.assertServesHello(server)
        server.wait_log(r"Using worker: sync")
        self.assertStopsCleanly(server)

    def test_list_workers_from_install(self):
        res = self._run_installed(["--list-workers"])
        self.assertEqual(res.returncode, 0, res)
        rows = {}
        for line in res.stdout.splitlines()[1:]:
            fields = line.split()
            if len(fields) >= 4:
                rows.setdefault(fields[0], fields[1:4])
        abi = sdk_abi()
        for name in ("sync", "gthread", "uv"):
            self.assertEqual(rows.get(name), [project_version(), abi,
                                              os.path.join(self.workerdir, name + ".so")],
                             res)
        self.assertEqual(rows.get("example"),
                         [EXAMPLE_VERSION, abi, os.path.join(self.workerdir, "example.so")], res)

    def _run_installed(self, args):
        proc = subprocess.run([self.bin] + args, env=server_env(), stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=30)
        return Result(args, proc.returncode, proc.stdout.decode(errors="replace"),
                      proc.stderr.decode(errors="replace"))

    def test_man_page(self):
        if not shutil.which("man"):
            self.skipTest("man not installed")
        out = command(["man", "-M", self.installed("share", "man"), "-P", "cat", "alicorn"],
                      env={"MANWIDTH": "100", "MANPAGER": "cat", "LC_ALL": "C.UTF-8"})
        self.assertRegex(out, r"alicorn\s+-\s+pre-fork WSGI HTTP server")
        for flag in ("--worker-class", "--bind", "--list-workers", "ALICORN_PLUGIN_PATH"):
            self.assertIn(flag, out)

    # -- the CMake package ---------------------------------------------------------------------
    def test_cmake_package_variables(self):
        self.assertIn("alicorn %s (plugin ABI %s) in %s; plugins go to %s"
                      % (project_version(), sdk_abi(), self.prefix, self.workerdir),
                      self.configure_log)
        self.assertRegex(self.other_prefix_log,
                         r"installs into .*elsewhere.*looks in %s" % re.escape(self.workerdir))

    # -- the example plugin --------------------------------------------------------------------
    def assertKeepsAlive(self, server):
        conn = http.client.HTTPConnection(*server.address, timeout=REQUEST_TIMEOUT)
        try:
            socks = []
            for _ in range(3):
                conn.request("GET", "/")
                resp = conn.getresponse()
                self.assertEqual((resp.status, resp.read()), (200, HELLO), server.describe())
                self.assertNotEqual((resp.getheader("Connection") or "").lower(), "close")
                socks.append(conn.sock)
            self.assertTrue(all(s is socks[0] and s is not None for s in socks),
                            "the connection was not kept alive\n" + server.describe())
        finally:
            conn.close()

    def test_example_by_path(self):
        server = self.start_server("hello:app", ["-k", self.example_so, "--keep-alive", "30"],
                                   program=self.bin)
        self.assertServesHello(server)
        self.assertKeepsAlive(server)
        server.wait_log(r"Using worker: example")
        server.wait_log(r"example worker %s: 1 listener\(s\), keep-alive 30s, host ABI %s"
                        % (re.escape(EXAMPLE_VERSION), re.escape(sdk_abi())))
        # A graceful stop does not wait out an idle keep-alive connection: the worker watches
        # the wake fd while it waits for the next request.
        conn = http.client.HTTPConnection(*server.address, timeout=REQUEST_TIMEOUT)
        self.addCleanup(conn.close)
        conn.request("GET", "/")
        self.assertEqual(conn.getresponse().read(), HELLO)
        started = time.monotonic()
        self.assertStopsCleanly(server)
        self.assertLess(time.monotonic() - started, 5.0, server.describe())

    def test_example_by_name_streams_bodies(self):
        server = self.start_server("echo:app", ["-k", "example"], workers=2,
                                   program=self.bin)
        for size in (0, 5, 1 << 20):
            body = os.urandom(size)
            status, _, raw, _ = self.get(server, "/e", method="POST", body=body)
            self.assertEqual(status, 200, server.describe())
            doc = json.loads(raw)
            self.assertEqual((doc["body_length"], doc["body_sha256"]),
                             (size, hashlib.sha256(body).hexdigest()))
        server.wait_log(r"Using worker: example")

    def test_example_via_plugin_path(self):
        # The build-tree binary, the plugin from the example's own build folder.
        server = self.start_server("hello:app", ["-k", "example"], program=ALICORN_BIN,
                                   env={"ALICORN_PLUGIN_PATH": self.example_build})
        self.assertServesHello(server)
        server.wait_log(r"Using worker: example")

    def test_example_with_pkg_config(self):
        if not (shutil.which("make") and shutil.which("pkg-config")):
            self.skipTest("make or pkg-config not installed")
        src = os.path.join(self.tmp, "example-make")
        shutil.copytree(EXAMPLE_SRC, src, ignore=shutil.ignore_patterns("build*"))
        pc_env = {"PKG_CONFIG_PATH": os.path.join(self.libdir, "pkgconfig")}
        self.assertEqual(command(["pkg-config", "--variable=workerdir", "alicorn"],
                                 env=pc_env).strip(), self.workerdir)
        self.assertEqual(command(["pkg-config", "--modversion", "alicorn"], env=pc_env).strip(),
                         project_version())
        self.assertIn("-I" + self.installed("include"),
                      command(["pkg-config", "--cflags", "alicorn"], env=pc_env))
        command(["make", "-C", src], env=pc_env)
        so = os.path.join(src, "example.so")
        if shutil.which("nm"):
            self.assertEqual(exported_symbols(so), ["alicorn_worker_negotiate"])
        # make install honours DESTDIR and puts it in the worker folder of alicorn.pc.
        destdir = os.path.join(self.tmp, "destdir")
        command(["make", "-C", src, "install", "DESTDIR=" + destdir], env=pc_env)
        staged = destdir + os.path.join(self.workerdir, "example.so")
        self.assertTrue(os.path.isfile(staged), staged)
        # The host negotiates with it: listed from ALICORN_PLUGIN_PATH with its version and ABI.
        res = run_alicorn(["--list-workers"], env={"ALICORN_PLUGIN_PATH": src})
        self.assertRegex(res.stdout, r"(?m)^example\s+%s\s+%s\s+%s$"
                         % (re.escape(EXAMPLE_VERSION), re.escape(sdk_abi()), re.escape(so)))

    # -- Debian packages -----------------------------------------------------------------------
    def test_debian_packages(self):
        for tool in ("cpack", "dpkg-deb", "dpkg-shlibdeps"):
            if not shutil.which(tool):
                self.skipTest("%s not installed (dpkg-dev)" % tool)
        out_dir = os.path.join(self.tmp, "debs")
        log = command(["cpack", "-G", "DEB", "--config",
                       os.path.join(BUILD_DIR, "CPackConfig.cmake"), "-B", out_dir],
                      timeout=110)
        version = project_version()
        debs = sorted(os.path.basename(p) for p in glob.glob(os.path.join(out_dir, "*.deb")))
        arch = command(["dpkg", "--print-architecture"]).strip()
        self.assertEqual(debs, sorted("%s_%s_%s.deb" % (name, version, arch) for name in (
            "alicorn", "alicorn-dev", "alicorn-worker-gthread", "alicorn-worker-sync",
            "alicorn-worker-uv")), log)

        def field(pkg, name):
            path = os.path.join(out_dir, "%s_%s_%s.deb" % (pkg, version, arch))
            return command(["dpkg-deb", "--field", path, name]).strip()

        def files(pkg):
            path = os.path.join(out_dir, "%s_%s_%s.deb" % (pkg, version, arch))
            listing = command(["dpkg-deb", "--contents", path])
            return [line.split()[5].lstrip(".") for line in listing.splitlines()
                    if not line.startswith("d")]

        pinned = "alicorn (= %s)" % version
        for worker in ("sync", "gthread", "uv"):
            pkg = "alicorn-worker-" + worker
            self.assertIn(pinned, field(pkg, "Depends"), pkg)
            self.assertEqual([os.path.basename(f) for f in files(pkg)], [worker + ".so"], pkg)
            self.assertTrue(files(pkg)[0].endswith("/alicorn/workers/%s.so" % worker))
        self.assertRegex(field("alicorn-worker-uv", "Depends"), r"\blibuv1\b")
        self.assertIn(pinned, field("alicorn-dev", "Depends"))
        self.assertRegex(field("alicorn", "Depends"), r"\blibpython3\.\d+")
        core = files("alicorn")
        self.assertTrue(any(f.endswith("/bin/alicorn") for f in core), core)
        self.assertTrue(any(f.endswith("/libalicorn-core.so.%s" % version) for f in core), core)
        self.assertTrue(any(f.endswith("/man1/alicorn.1") for f in core), core)
        self.assertFalse(any("/alicorn/workers/" in f for f in core), core)
        dev = files("alicorn-dev")
        for suffix in ("/include/alicorn/worker.h", "/include/alicorn/worker_io.h",
                       "/cmake/alicorn/alicornConfig.cmake", "/pkgconfig/alicorn.pc"):
            self.assertTrue(any(f.endswith(suffix) for f in dev), (suffix, dev))

        # Unpacked together, the packages make a working tree: the binary finds the plugins.
        root = os.path.join(self.tmp, "debroot")
        for deb in debs:
            command(["dpkg-deb", "--extract", os.path.join(out_dir, deb), root])
        binary = root + next(f for f in core if f.endswith("/bin/alicorn"))
        proc = subprocess.run([binary, "--list-workers"], env=server_env(), capture_output=True,
                              timeout=30)
        listing = proc.stdout.decode(errors="replace")
        self.assertEqual(proc.returncode, 0, proc)
        for name in ("sync", "gthread", "uv"):
            self.assertRegex(listing, r"(?m)^%s\s+%s\s+%s\s+%s/.*/alicorn/workers/%s\.so$"
                             % (name, re.escape(version), re.escape(sdk_abi()), re.escape(root),
                                name))


if __name__ == "__main__":
    unittest.main()
