# alicorn_add_worker_plugin(): the one definition of how an alicorn worker plugin is built.
#
# Included by alicorn's own top-level CMakeLists.txt (for sync, gthread, uv and the test
# plugins) and by the installed CMake package (alicornConfig.cmake), so a third-party plugin is
# built exactly like the bundled ones:
#
#   find_package(alicorn 0.1 REQUIRED)
#   alicorn_add_worker_plugin(my-worker my_worker.c OUTPUT_NAME example)
#
# Signature:
#
#   alicorn_add_worker_plugin(<target> <source>...
#                             [OUTPUT_NAME <name>]          file name without .so
#                                                           (default: <target>)
#                             [OUTPUT_DIRECTORY <dir>]      where the build puts <name>.so
#                             [INSTALL_DESTINATION <dir>]   default: ${ALICORN_WORKER_SUBDIR}
#                             [COMPONENT <component>]       install component
#                             [NO_INSTALL])                 no install rule at all
#
# The result is a MODULE library (dlopen only, never linked against) named <name>.so without a
# "lib" prefix, so `alicorn -k <name>` finds it in the worker folder. It is compiled with hidden
# visibility (the negotiate function written by ALICORN_WORKER_PLUGIN is then the only export)
# and linked with --no-undefined (a missing symbol is a link error, not a dlopen refusal at
# deploy time) and --exclude-libs,ALL (static libraries linked in do not leak exports).
#
# Variables read, from the scope that calls the function:
#   ALICORN_WORKER_SUBDIR      the plugin folder relative to the install prefix, e.g.
#                              "lib/alicorn/workers" (set by alicorn, and by alicornConfig.cmake)
#   ALICORN_PLUGIN_OUTPUT_DIR  optional default for OUTPUT_DIRECTORY (alicorn's own build puts
#                              plugins in <build>/<libdir>/alicorn/workers, mirroring an install)
#   ALICORN_WORKER_DIR         optional, absolute plugin folder of the alicorn found by
#                              find_package: a relative destination that does not end up there
#                              is reported, since `-k <name>` would not find the plugin
include_guard(GLOBAL)

function(alicorn_add_worker_plugin target)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "NO_INSTALL"
    "OUTPUT_NAME;OUTPUT_DIRECTORY;INSTALL_DESTINATION;COMPONENT" "")
  if(NOT ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "alicorn_add_worker_plugin(${target}): no source files given")
  endif()
  if(NOT TARGET alicorn::sdk)
    message(FATAL_ERROR "alicorn_add_worker_plugin(${target}): the alicorn::sdk target is "
                        "missing (call find_package(alicorn) first)")
  endif()

  add_library(${target} MODULE ${ARG_UNPARSED_ARGUMENTS})
  target_link_libraries(${target} PRIVATE alicorn::sdk)
  if(NOT ARG_OUTPUT_NAME)
    set(ARG_OUTPUT_NAME ${target})
  endif()
  if(NOT ARG_OUTPUT_DIRECTORY AND ALICORN_PLUGIN_OUTPUT_DIR)
    set(ARG_OUTPUT_DIRECTORY ${ALICORN_PLUGIN_OUTPUT_DIR})
  endif()
  set_target_properties(${target} PROPERTIES
    PREFIX "" SUFFIX ".so" OUTPUT_NAME ${ARG_OUTPUT_NAME}
    POSITION_INDEPENDENT_CODE ON
    C_VISIBILITY_PRESET hidden CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
  if(ARG_OUTPUT_DIRECTORY)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${ARG_OUTPUT_DIRECTORY})
  endif()
  if(NOT APPLE)
    target_link_options(${target} PRIVATE LINKER:--no-undefined LINKER:--exclude-libs,ALL)
  endif()

  if(ARG_NO_INSTALL)
    return()
  endif()
  set(destination ${ARG_INSTALL_DESTINATION})
  if(NOT destination)
    if(NOT ALICORN_WORKER_SUBDIR)
      message(FATAL_ERROR "alicorn_add_worker_plugin(${target}): ALICORN_WORKER_SUBDIR is not "
                          "set; pass INSTALL_DESTINATION or NO_INSTALL")
    endif()
    set(destination ${ALICORN_WORKER_SUBDIR})
  endif()
  if(ARG_COMPONENT)
    install(TARGETS ${target} LIBRARY DESTINATION ${destination} COMPONENT ${ARG_COMPONENT})
  else()
    install(TARGETS ${target} LIBRARY DESTINATION ${destination})
  endif()

  # A third-party plugin configured with another prefix than the alicorn it was built against
  # installs where that alicorn does not look: say so once, with the two ways out.
  if(ALICORN_WORKER_DIR AND NOT IS_ABSOLUTE "${destination}")
    cmake_path(ABSOLUTE_PATH destination BASE_DIRECTORY "${CMAKE_INSTALL_PREFIX}"
               NORMALIZE OUTPUT_VARIABLE installed_dir)
    cmake_path(NORMAL_PATH ALICORN_WORKER_DIR OUTPUT_VARIABLE searched_dir)
    string(REGEX REPLACE "/+$" "" installed_dir "${installed_dir}")
    string(REGEX REPLACE "/+$" "" searched_dir "${searched_dir}")
    if(NOT installed_dir STREQUAL searched_dir)
      message(STATUS "alicorn: ${target} installs into ${installed_dir}, but the alicorn found "
                     "in ${ALICORN_PREFIX} looks in ${searched_dir}: configure with "
                     "-DCMAKE_INSTALL_PREFIX=${ALICORN_PREFIX}, or set ALICORN_PLUGIN_PATH="
                     "${installed_dir} when running alicorn")
    endif()
  endif()
endfunction()
