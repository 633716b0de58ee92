# CTest's install_consumer: installs the build into a temporary prefix, then builds
# tests/install_consumer against it twice, through find_package(ropejit) and through pkg-config, and
# runs both. Variables: BUILD_DIR CONFIG CONSUMER_DIR WORK_DIR CXX GENERATOR PKG_CONFIG LIBDIR.
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message(STATUS "$ ${ARGN}\n${out}${err}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}")
  endif()
  set(run_output "${out}" PARENT_SCOPE)
endfunction()

set(prefix ${WORK_DIR}/prefix)
file(REMOVE_RECURSE ${WORK_DIR})
set(config_arg "")
if(CONFIG)
  set(config_arg --config ${CONFIG})
endif()
run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix} ${config_arg})
# The installed tools find the installed library (RUNPATH $ORIGIN/../lib), not the build tree's.
if(EXISTS ${prefix}/bin/ropejit-precompile)
  run(${prefix}/bin/ropejit-precompile --help)
endif()

# 1. CMake: find_package(ropejit) from the prefix alone (no package registry, no build tree).
run(${CMAKE_COMMAND} -S ${CONSUMER_DIR} -B ${WORK_DIR}/cmake-build -G ${GENERATOR}
    -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=${prefix}
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
run(${CMAKE_COMMAND} --build ${WORK_DIR}/cmake-build)
run(${WORK_DIR}/cmake-build/consumer)
run(${WORK_DIR}/cmake-build/consumer_runtime)

# 2. pkg-config: the same main.cpp compiled with `pkg-config --cflags --libs ropejit`.
if(NOT PKG_CONFIG)
  # CTest reports the test as skipped (SKIP_REGULAR_EXPRESSION), not passed: half of it did not run.
  message(STATUS "ROPEJIT-SKIPPED: pkg-config not found, so the pkg-config half did not run (scripts/install-deps installs it)")
  return()
endif()
set(ENV{PKG_CONFIG_PATH} ${prefix}/${LIBDIR}/pkgconfig)
foreach(pc ropejit ropejit-runtime)
  run(${PKG_CONFIG} --cflags --libs ${pc})
  string(STRIP "${run_output}" flags)
  separate_arguments(flags UNIX_COMMAND "${flags}")
  run(${PKG_CONFIG} --variable=libdir ${pc})
  string(STRIP "${run_output}" libdir)
  set(defs "")
  if(pc STREQUAL "ropejit-runtime")
    set(defs -DCONSUMER_RUNTIME)
  endif()
  run(${CXX} -std=c++20 -O1 ${defs} ${CONSUMER_DIR}/main.cpp ${flags} -Wl,-rpath,${libdir} -o ${WORK_DIR}/pc-${pc})
  run(${WORK_DIR}/pc-${pc})
endforeach()
