# What `cmake --install` puts where, by package component (see AlicornPackaging.cmake):
#
#   runtime         bin/alicorn, <libdir>/libalicorn-core.so.<SOVERSION>, share/man/man1/alicorn.1,
#                   share/doc/alicorn/ (operator documentation)
#   worker_<name>   <libdir>/alicorn/workers/<name>.so (plugins/*/CMakeLists.txt)
#   dev             <includedir>/alicorn/*.h (the SDK), <libdir>/libalicorn-core.so,
#                   <libdir>/cmake/alicorn/ (find_package(alicorn)),
#                   <libdir>/pkgconfig/alicorn.pc, share/doc/alicorn-dev/ (plugin author docs
#                   and the example plugin)
#
# The binary and libalicorn-core rules live in core/CMakeLists.txt, the plugins' in their own
# folders; this file holds the SDK, the CMake package, pkg-config and documentation.
include(CMakePackageConfigHelpers)

set(ALICORN_CMAKE_PACKAGE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/alicorn")

# The ABI version the SDK headers describe, for the CMake package and alicorn.pc.
# Re-read when the header changes (a new minor must reach the package files).
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
             "${PROJECT_SOURCE_DIR}/sdk/include/alicorn/worker.h")
file(STRINGS "${PROJECT_SOURCE_DIR}/sdk/include/alicorn/worker.h" _alicorn_abi_lines
     REGEX "^#define ALICORN_ABI_(MAJOR|MINOR) [0-9]+")
foreach(_line IN LISTS _alicorn_abi_lines)
  if(_line MATCHES "^#define ALICORN_ABI_(MAJOR|MINOR) ([0-9]+)")
    set(ALICORN_ABI_${CMAKE_MATCH_1} ${CMAKE_MATCH_2})
  endif()
endforeach()
if(NOT DEFINED ALICORN_ABI_MAJOR OR NOT DEFINED ALICORN_ABI_MINOR)
  message(FATAL_ERROR "cannot read ALICORN_ABI_MAJOR/MINOR from sdk/include/alicorn/worker.h")
endif()

# ---- SDK headers and the alicorn::sdk target ------------------------------------------------
install(DIRECTORY sdk/include/alicorn DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev
        FILES_MATCHING PATTERN "*.h")
set_target_properties(alicorn_sdk PROPERTIES EXPORT_NAME sdk)
install(TARGETS alicorn_sdk EXPORT alicornTargets COMPONENT dev)
install(EXPORT alicornTargets NAMESPACE alicorn:: DESTINATION ${ALICORN_CMAKE_PACKAGE_DIR}
        COMPONENT dev)

# ---- CMake package: alicornConfig.cmake, its version file, the shared plugin function ---------
configure_package_config_file(
  cmake/alicornConfig.cmake.in "${PROJECT_BINARY_DIR}/cmake-package/alicornConfig.cmake"
  INSTALL_DESTINATION ${ALICORN_CMAKE_PACKAGE_DIR}
  PATH_VARS CMAKE_INSTALL_INCLUDEDIR ALICORN_WORKER_SUBDIR)
# 0.x and 1.x packages both accept a request for the same major; the plugin ABI has its own
# major/minor negotiation at load time.
write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/cmake-package/alicornConfigVersion.cmake"
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES
  "${PROJECT_BINARY_DIR}/cmake-package/alicornConfig.cmake"
  "${PROJECT_BINARY_DIR}/cmake-package/alicornConfigVersion.cmake"
  cmake/AlicornPlugin.cmake
  DESTINATION ${ALICORN_CMAKE_PACKAGE_DIR} COMPONENT dev)

# ---- pkg-config: alicorn.pc --------------------------------------------------------------------
# Written at install time, so that `cmake --install --prefix P` and `cpack` (which installs with
# CPACK_SET_DESTDIR, see AlicornPackaging.cmake) both get prefix=P, not the configure-time
# prefix. The staging copy lives in a folder named after DESTDIR+prefix, so two installs of
# this build tree into different places never share it.
install(CODE "
  set(ALICORN_PC_IN \"${PROJECT_SOURCE_DIR}/cmake/alicorn.pc.in\")
  set(ALICORN_PC_STAGE \"${PROJECT_BINARY_DIR}/pkgconfig-stage\")
  set(ALICORN_PC_INCLUDEDIR_REL \"${CMAKE_INSTALL_INCLUDEDIR}\")
  set(ALICORN_PC_LIBDIR_REL \"${CMAKE_INSTALL_LIBDIR}\")
  set(ALICORN_PC_WORKERDIR_REL \"${ALICORN_WORKER_SUBDIR}\")
  set(ALICORN_ABI_MAJOR ${ALICORN_ABI_MAJOR})
  set(ALICORN_ABI_MINOR ${ALICORN_ABI_MINOR})
  set(PROJECT_VERSION \"${PROJECT_VERSION}\")
" COMPONENT dev)
install(CODE [[
  set(ALICORN_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  foreach(_kind INCLUDEDIR WORKERDIR)
    if(IS_ABSOLUTE "${ALICORN_PC_${_kind}_REL}")
      set(ALICORN_PC_${_kind} "${ALICORN_PC_${_kind}_REL}")
    else()
      set(ALICORN_PC_${_kind} "\${prefix}/${ALICORN_PC_${_kind}_REL}")
    endif()
  endforeach()
  string(MD5 _alicorn_pc_key "$ENV{DESTDIR}|${CMAKE_INSTALL_PREFIX}")
  set(_alicorn_pc_file "${ALICORN_PC_STAGE}/${_alicorn_pc_key}/alicorn.pc")
  configure_file("${ALICORN_PC_IN}" "${_alicorn_pc_file}" @ONLY)
  if(IS_ABSOLUTE "${ALICORN_PC_LIBDIR_REL}")
    set(_alicorn_pc_dest "${ALICORN_PC_LIBDIR_REL}/pkgconfig")
  else()
    set(_alicorn_pc_dest "${CMAKE_INSTALL_PREFIX}/${ALICORN_PC_LIBDIR_REL}/pkgconfig")
  endif()
  file(INSTALL DESTINATION "${_alicorn_pc_dest}" TYPE FILE FILES "${_alicorn_pc_file}")
]] COMPONENT dev)

# ---- documentation -------------------------------------------------------------------------------
# The man page is generated from the settings table (cmake/AlicornDocs.cmake) and committed.
install(FILES docs/alicorn.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT runtime)
# Operator documentation: everything in docs/ except what plugin authors read and the man page
# source (already installed above). New files in docs/ are picked up at install time.
install(DIRECTORY docs/ DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/alicorn COMPONENT runtime
        PATTERN "alicorn.1" EXCLUDE
        PATTERN "writing-a-worker-plugin.md" EXCLUDE)
install(FILES README.md DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/alicorn COMPONENT runtime)
# Plugin author documentation and the example plugin, with the SDK.
install(FILES docs/writing-a-worker-plugin.md sdk/README.md
        DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/alicorn-dev COMPONENT dev)
install(DIRECTORY sdk/examples/ DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/alicorn-dev/examples
        COMPONENT dev
        PATTERN "build" EXCLUDE PATTERN "build-*" EXCLUDE PATTERN ".*" EXCLUDE)
