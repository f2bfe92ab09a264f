# Compiler warnings (dc_warnings, linked by our own targets) and sanitizer / fuzzer flags.
add_library(dc_warnings INTERFACE)
target_compile_options(dc_warnings INTERFACE -Wall -Wextra -Wpedantic
  -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla -Wformat=2)
if(DC_WERROR)
  target_compile_options(dc_warnings INTERFACE -Werror)
endif()

if(DC_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

if(DC_FUZZ)
  # Coverage instrumentation for everything; the fuzz targets link libFuzzer's main.
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

# ThreadSanitizer, for the concurrency tests (.ci/run builds only those targets with it).
option(DC_TSAN "Build with ThreadSanitizer" OFF)
if(DC_TSAN)
  if(DC_SANITIZE OR DC_FUZZ)
    message(FATAL_ERROR "DC_TSAN cannot be combined with DC_SANITIZE or DC_FUZZ")
  endif()
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
endif()
