# Runs EXE with ARGS ("|"-separated) and fails unless it exits with CODE.
string(REPLACE "|" ";" argv "${ARGS}")
execute_process(COMMAND ${EXE} ${argv} RESULT_VARIABLE rc
  OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(NOT "${rc}" STREQUAL "${CODE}")
  message(FATAL_ERROR "expected exit ${CODE}, got ${rc}")
endif()
