# `format` checks that every C file follows .clang-format (fails listing the
# files that differ); `format-fix` rewrites them in place. The list is the
# files git knows, so build directories and generated code are never touched.
find_program(RP_CLANG_FORMAT NAMES clang-format-14 clang-format)
find_package(Git QUIET)
if(RP_CLANG_FORMAT AND GIT_FOUND)
  set(rp_format_list ${CMAKE_BINARY_DIR}/format-files.txt)
  add_custom_target(format
    COMMAND ${CMAKE_COMMAND} -DGIT=${GIT_EXECUTABLE} -DCLANG_FORMAT=${RP_CLANG_FORMAT}
            -DSRC=${CMAKE_SOURCE_DIR} -DMODE=check -P ${CMAKE_SOURCE_DIR}/cmake/run_format.cmake
    COMMENT "clang-format: checking every C file against .clang-format")
  add_custom_target(format-fix
    COMMAND ${CMAKE_COMMAND} -DGIT=${GIT_EXECUTABLE} -DCLANG_FORMAT=${RP_CLANG_FORMAT}
            -DSRC=${CMAKE_SOURCE_DIR} -DMODE=fix -P ${CMAKE_SOURCE_DIR}/cmake/run_format.cmake
    COMMENT "clang-format: rewriting every C file in place")
else()
  add_custom_target(format
    COMMAND ${CMAKE_COMMAND} -E echo "format: clang-format or git not found" && false)
endif()
