# Builds and runs tests/consumer against llama3.hpp: cmake -DMODE=... -DSOURCE_DIR=... -DWORK_DIR=...
#   -DGENERATOR=... -DCXX=... -DDATA=... -P run_consumer.cmake
# find_package mode first installs the library from a fresh configure of SOURCE_DIR into WORK_DIR/prefix.
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

function(step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

set(consumer_args -DMODE=${MODE} -DCMAKE_CXX_COMPILER=${CXX})
if(MODE STREQUAL "find_package")
  step(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/llama3-build -G ${GENERATOR} -DCMAKE_CXX_COMPILER=${CXX}
       -DLLAMA3_BUILD_TESTS=OFF -DLLAMA3_BUILD_EXAMPLES=OFF -DCMAKE_INSTALL_PREFIX=${WORK_DIR}/prefix)
  step(${CMAKE_COMMAND} --install ${WORK_DIR}/llama3-build)
  foreach(f include/llama3/llama3.hpp include/llama3/tokenizer.hpp share/cmake/llama3/llama3Config.cmake)
    if(NOT EXISTS ${WORK_DIR}/prefix/${f})
      message(FATAL_ERROR "the install lacks ${f}")
    endif()
  endforeach()
  list(APPEND consumer_args -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
else()
  list(APPEND consumer_args -DLLAMA3_SOURCE_DIR=${SOURCE_DIR})
endif()

step(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/consumer -B ${WORK_DIR}/consumer-build -G ${GENERATOR} ${consumer_args})
step(${CMAKE_COMMAND} --build ${WORK_DIR}/consumer-build)
step(${WORK_DIR}/consumer-build/consumer ${DATA}/tokenizer.model)
message(STATUS "${step_output}")
if(NOT step_output MATCHES ": ok")
  message(FATAL_ERROR "consumer output: ${step_output}")
endif()
