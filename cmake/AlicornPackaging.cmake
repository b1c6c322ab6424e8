# Debian packages, one per install component (cpack -G DEB in a build folder):
#
#   alicorn                 the binary, libalicorn-core.so.<SOVERSION>, the man page, docs
#   alicorn-worker-sync     <libdir>/alicorn/workers/sync.so     Depends: alicorn (= version)
#   alicorn-worker-gthread  <libdir>/alicorn/workers/gthread.so  Depends: alicorn (= version)
#   alicorn-worker-uv       <libdir>/alicorn/workers/uv.so       Depends: alicorn (= version),
#                                                                libuv1 (via dpkg-shlibdeps)
#   alicorn-dev             SDK headers, CMake package, alicorn.pc, plugin author docs
#                                                                Depends: alicorn (= version)
#
# Library dependencies (libpython3.x, libyaml-cpp, libspdlog, libuv1, ...) come from
# dpkg-shlibdeps (Debian package dpkg-dev). Distribution packages are meant to be built from a
# build folder configured with -DCMAKE_INSTALL_PREFIX=/usr (GNUInstallDirs then picks the
# multiarch libdir, and the binary's compiled-in plugin folder matches): scripts/package.sh.
# The packages install under CMAKE_INSTALL_PREFIX, whatever it is, so the compiled-in paths,
# the CMake package and alicorn.pc always agree with where the files land.

set(CPACK_PACKAGE_NAME alicorn)
set(CPACK_PACKAGE_VENDOR "alicorn")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_CONTACT "alicorn maintainers <alicorn@localhost>"
    CACHE STRING "Maintainer of the Debian packages (Maintainer: field)")
set(CPACK_RESOURCE_FILE_README "${PROJECT_SOURCE_DIR}/README.md")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_DIRECTORY "${PROJECT_BINARY_DIR}/packages")
set(CPACK_SOURCE_GENERATOR "")

# Install with DESTDIR into the staging folder, keeping CMAKE_INSTALL_PREFIX as configured:
# install-time code (alicorn.pc) then sees the real prefix, not the staging folder.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX "${CMAKE_INSTALL_PREFIX}")
set(CPACK_PACKAGING_INSTALL_PREFIX "${CMAKE_INSTALL_PREFIX}")

# Exactly these components become packages (anything installed without a component would
# otherwise show up as an extra "Unspecified" package).
set(CPACK_COMPONENTS_ALL runtime worker_sync worker_gthread worker_uv dev)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # <name>_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# A shlibs file (and the ldconfig trigger) for libalicorn-core in the alicorn package.
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
# Debian policy: binaries ship stripped (debug info stays in the build tree).
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_SECTION httpd)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# "alicorn (= <version>)" for every component that lists runtime in its DEPENDS below.
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)

set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME alicorn)
set(CPACK_COMPONENT_RUNTIME_DISPLAY_NAME "alicorn server")
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION
    "Pre-fork WSGI HTTP server with pluggable worker classes
 alicorn runs WSGI applications (Django, Flask, ...) the way Gunicorn does, with the same
 flags and setting names, with HTTP parsing, sockets and process management in native code.
 Worker classes are shared-object plugins, shipped in the alicorn-worker-* packages.")

foreach(_worker sync gthread uv)
  string(TOUPPER ${_worker} _up)
  set(CPACK_DEBIAN_WORKER_${_up}_PACKAGE_NAME alicorn-worker-${_worker})
  set(CPACK_COMPONENT_WORKER_${_up}_DISPLAY_NAME "alicorn ${_worker} worker class")
  set(CPACK_COMPONENT_WORKER_${_up}_DEPENDS runtime)
endforeach()
set(CPACK_DEBIAN_WORKER_SYNC_PACKAGE_SECTION httpd)
set(CPACK_COMPONENT_WORKER_SYNC_DESCRIPTION
    "sync worker class for alicorn (-k sync)
 One connection at a time with a blocking accept loop, every response with
 Connection: close, like Gunicorn's sync worker. The default worker class.")
set(CPACK_COMPONENT_WORKER_GTHREAD_DESCRIPTION
    "gthread worker class for alicorn (-k gthread)
 A thread pool per worker process (--threads) with keep-alive connections parked
 in epoll between requests, like Gunicorn's gthread worker.")
set(CPACK_COMPONENT_WORKER_UV_DESCRIPTION
    "uv worker class for alicorn (-k uv)
 A libuv event loop per worker process for many concurrent keep-alive clients
 (--worker-connections); request bodies are complete before the app runs.")

set(CPACK_DEBIAN_DEV_PACKAGE_NAME alicorn-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION devel)
set(CPACK_COMPONENT_DEV_DISPLAY_NAME "alicorn worker plugin SDK")
set(CPACK_COMPONENT_DEV_DEPENDS runtime)
set(CPACK_COMPONENT_DEV_DESCRIPTION
    "SDK for building alicorn worker plugins
 The C headers of the alicorn worker plugin ABI (alicorn/worker.h, alicorn/worker_io.h),
 the CMake package (find_package(alicorn), alicorn_add_worker_plugin()), the pkg-config
 file alicorn.pc, the plugin author guide and an example worker plugin.")

include(CPack)
