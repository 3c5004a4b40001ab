# Run one fuzz target for SECONDS on a scratch copy of its seed corpus (the
# seeds in the repository are never written). Fails when libFuzzer reports a
# crash, a leak, a timeout or UB (non-zero exit); the reproducer is left in
# WORK/NAME/.
set(dir ${WORK}/${NAME})
file(REMOVE_RECURSE ${dir})
file(MAKE_DIRECTORY ${dir}/corpus)
if(EXISTS ${SRC}/corpus/${NAME})
  file(GLOB seeds ${SRC}/corpus/${NAME}/*)
  if(seeds)
    file(COPY ${seeds} DESTINATION ${dir}/corpus)
  endif()
endif()
set(args -max_total_time=${SECONDS} -timeout=10 -rss_limit_mb=1024 -print_final_stats=1
    -artifact_prefix=${dir}/)
if(EXISTS ${SRC}/${NAME}.options) # extra libFuzzer flags, one per line
  file(STRINGS ${SRC}/${NAME}.options extra)
  list(APPEND args ${extra})
endif()
if(EXISTS ${SRC}/${NAME}.dict)
  list(APPEND args -dict=${SRC}/${NAME}.dict)
endif()
execute_process(COMMAND ${FUZZER} ${args} ${dir}/corpus RESULT_VARIABLE rv
                WORKING_DIRECTORY ${dir})
if(NOT rv EQUAL 0)
  message(FATAL_ERROR "fuzz_${NAME} failed (exit ${rv}); reproducer in ${dir}/")
endif()
