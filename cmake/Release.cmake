# Run at build time (cmake -P): write OUT with RP_RELEASE, the output of
# `git describe --always --dirty` in SRC ("unknown" without git), only when
# it changed so that nothing rebuilds needlessly.
set(release "unknown")
find_program(GIT git)
if(GIT)
  execute_process(COMMAND ${GIT} -C ${SRC} describe --always --dirty
                  OUTPUT_VARIABLE out RESULT_VARIABLE rc ERROR_QUIET
                  OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(rc EQUAL 0 AND out MATCHES "^[0-9A-Za-z._-]+$")
    set(release "${out}")
  endif()
endif()
set(text "#define RP_RELEASE \"${release}\"\n")
if(EXISTS ${OUT})
  file(READ ${OUT} old)
endif()
if(NOT "${old}" STREQUAL "${text}")
  file(WRITE ${OUT} "${text}")
endif()
