# Documentation generated from the core's settings table:
#   docs/configuration.md  (tools/gen_settings_doc --markdown)
#   docs/alicorn.1         (tools/gen_settings_doc --man; installed to share/man/man1)
# Both are committed. `ninja docs` regenerates them in the source tree; the ctest test
# docs.generated_up_to_date regenerates them into the build tree and fails on any difference.

add_executable(alicorn-gen-settings-doc tools/gen_settings_doc.cpp)
set_target_properties(alicorn-gen-settings-doc PROPERTIES
  OUTPUT_NAME gen_settings_doc
  RUNTIME_OUTPUT_DIRECTORY "${PROJECT_BINARY_DIR}/tools"
  BUILD_RPATH "${PROJECT_BINARY_DIR}/${CMAKE_INSTALL_LIBDIR}")
target_compile_options(alicorn-gen-settings-doc PRIVATE ${ALICORN_WARNINGS})
target_compile_definitions(alicorn-gen-settings-doc PRIVATE ALICORN_VERSION="${PROJECT_VERSION}")
target_link_libraries(alicorn-gen-settings-doc PRIVATE alicorn-core-internals yaml-cpp)

set(ALICORN_GENERATED_DOCS
  "${PROJECT_SOURCE_DIR}/docs/configuration.md"
  "${PROJECT_SOURCE_DIR}/docs/alicorn.1")
add_custom_target(docs
  COMMAND alicorn-gen-settings-doc --markdown -o "${PROJECT_SOURCE_DIR}/docs/configuration.md"
  COMMAND alicorn-gen-settings-doc --man -o "${PROJECT_SOURCE_DIR}/docs/alicorn.1"
  BYPRODUCTS ${ALICORN_GENERATED_DOCS}
  COMMENT "Generating docs/configuration.md and docs/alicorn.1 from the settings table"
  VERBATIM)

if(ALICORN_BUILD_TESTS)
  add_test(NAME docs.generated_up_to_date
    COMMAND ${CMAKE_COMMAND}
      -DTOOL=$<TARGET_FILE:alicorn-gen-settings-doc>
      -DSOURCE_DIR=${PROJECT_SOURCE_DIR}
      -DWORK_DIR=${PROJECT_BINARY_DIR}/docs-check
      -P ${PROJECT_SOURCE_DIR}/cmake/CheckGeneratedDocs.cmake)
  set_tests_properties(docs.generated_up_to_date PROPERTIES TIMEOUT 60)
endif()
