# Builds tools/split_oracle offline from Debian's crates and runs test_split_rust against it.
#   cmake -DSOURCE=<tools/split_oracle> -DWORK=<dir> -DTEST=<test_split_rust> -P run.cmake
# Prints "skipped: ..." (ctest: skipped) when cargo or Debian's fancy-regex crate is missing (scripts/setup.sh
# installs both).
find_program(CARGO cargo PATHS $ENV{HOME}/.cargo/bin)
file(GLOB fancy /usr/share/cargo/registry/fancy-regex-*)
if(NOT CARGO OR NOT fancy)
  message("skipped: needs cargo and librust-fancy-regex-dev")
  return()
endif()
file(REMOVE_RECURSE ${WORK}/src)
file(COPY ${SOURCE}/ DESTINATION ${WORK}/src)  # build out of the source tree: cargo writes Cargo.lock beside it
execute_process(COMMAND ${CMAKE_COMMAND} -E env CARGO_TARGET_DIR=${WORK}/target ${CARGO} build --release --quiet
  WORKING_DIRECTORY ${WORK}/src RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cargo build of the split oracle failed (${rc})")
endif()
execute_process(COMMAND ${TEST} ${WORK}/target/release/split_oracle ${WORK} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the split differs from Rust's regex engine")
endif()
