# Run at build time (cmake -P): write OUT with RP_RELEASE, the output of
# `git describe --always --dirty` in SRC ("unknown" without git), only when
# it changed so that nothing rebuilds needlessly.
set(release "unknown")
find_program(GIT git)
if(GIT)
  # only SRC's own repository: a tree unpacked from `git archive` inside
  # another checkout (tests/upgrade/prevbuild.py) must not take its release
  execute_process(COMMAND ${GIT} -C ${SRC} rev-parse --show-toplevel
                  OUTPUT_VARIABLE top RESULT_VARIABLE rc ERROR_QUIET
                  OUTPUT_STRIP_TRAILING_WHITESPACE)
  get_filename_component(src_real ${SRC} REALPATH)
  if(rc EQUAL 0 AND top)
    get_filename_component(top_real ${top} REALPATH)
  endif()
  if(rc EQUAL 0 AND "${top_real}" STREQUAL "${src_real}")
    execute_process(COMMAND ${GIT} -C ${SRC} describe --always --dirty
                    OUTPUT_VARIABLE out RESULT_VARIABLE rc ERROR_QUIET
                    OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(rc EQUAL 0 AND out MATCHES "^[0-9A-Za-z._-]+$")
      set(release "${out}")
    endif()
  endif()
endif()
set(text "#define RP_RELEASE \"${release}\"\n")
if(EXISTS ${OUT})
  file(READ ${OUT} old)
endif()
if(NOT "${old}" STREQUAL "${text}")
  file(WRITE ${OUT} "${text}")
endif()
