# Runs tenure-sim and passes only if it reports a violation: a non-zero exit
# and a final "seeds=K violations=V" line with V > 0. Used to prove that the
# checkers catch each planted bug.
#   cmake -DSIM=path/to/tenure-sim "-DARGS=--bug NAME --seeds 1-500" -P expect_violation.cmake
separate_arguments(args UNIX_COMMAND "${ARGS}")
execute_process(COMMAND ${SIM} ${args} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
string(REGEX MATCH "seeds=([0-9]+) violations=([0-9]+)" summary "${out}")
if(NOT summary)
  message(FATAL_ERROR "no summary line (exit ${rc})\n${err}")
endif()
set(seeds ${CMAKE_MATCH_1})
set(violations ${CMAKE_MATCH_2})
if(rc EQUAL 0 OR violations EQUAL 0)
  message(FATAL_ERROR "expected a violation, got exit ${rc} and ${summary}")
endif()
string(REGEX MATCH "VIOLATION [^\n]*" first "${out}")
message(STATUS "caught after ${seeds} seeds: ${first}")
