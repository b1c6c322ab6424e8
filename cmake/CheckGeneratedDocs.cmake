# ctest docs.generated_up_to_date: regenerate the settings documentation into WORK_DIR and
# compare it with the committed docs/configuration.md and docs/alicorn.1.
#   cmake -DTOOL=<gen_settings_doc> -DSOURCE_DIR=<source tree> -DWORK_DIR=<scratch> -P this
foreach(var TOOL SOURCE_DIR WORK_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "CheckGeneratedDocs.cmake: -D${var}=... is required")
  endif()
endforeach()
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
set(stale "")
foreach(pair "markdown;configuration.md" "man;alicorn.1")
  list(GET pair 0 format)
  list(GET pair 1 name)
  execute_process(COMMAND "${TOOL}" --${format} -o "${WORK_DIR}/${name}"
                  RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${TOOL} --${format} failed (${rc}): ${err}")
  endif()
  execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files
                  "${SOURCE_DIR}/docs/${name}" "${WORK_DIR}/${name}" RESULT_VARIABLE differ)
  if(NOT differ EQUAL 0)
    list(APPEND stale "docs/${name}")
    execute_process(COMMAND diff -u "${SOURCE_DIR}/docs/${name}" "${WORK_DIR}/${name}"
                    OUTPUT_VARIABLE delta ERROR_QUIET)
    message("--- docs/${name} differs from what the settings table generates:\n${delta}")
  endif()
endforeach()
if(stale)
  list(JOIN stale ", " stale)
  message(FATAL_ERROR "out of date: ${stale}. Run `ninja -C <build> docs` and commit the result.")
endif()
message(STATUS "docs/configuration.md and docs/alicorn.1 match the settings table")
