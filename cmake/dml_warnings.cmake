# The private build settings of every dml target: the language standard,
# warnings, optional -Werror, -march=native and sanitizers. Link it PRIVATE so
# none of it reaches consumers.
add_library(dml_internal INTERFACE)
target_compile_features(dml_internal INTERFACE cxx_std_17)
target_compile_options(dml_internal INTERFACE -Wall -Wextra -pedantic)
# GCC 12 reports a false -Wmaybe-uninitialized inside its own AVX-512
# intrinsics (avx512fintrin.h) when Eigen vectorizes with -march=native.
target_compile_options(dml_internal INTERFACE -Wno-maybe-uninitialized)
if(DML_WARNINGS_AS_ERRORS)
  target_compile_options(dml_internal INTERFACE -Werror)
endif()
# std::sqrt may set errno, which keeps GCC from vectorizing loops that call
# it (Adam's update ran 5x slower). dml never reads errno after maths.
target_compile_options(dml_internal INTERFACE -fno-math-errno)
if(DML_NATIVE)
  target_compile_options(dml_internal INTERFACE -march=native)
endif()
if(DML_SANITIZERS)
  target_compile_options(dml_internal INTERFACE
                         -fsanitize=${DML_SANITIZERS} -fno-omit-frame-pointer)
  target_link_options(dml_internal INTERFACE -fsanitize=${DML_SANITIZERS})
endif()
