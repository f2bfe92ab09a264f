# Third-party libraries, all from Debian packages (reference/dependencies.md).
find_package(PkgConfig REQUIRED)
pkg_check_modules(CJSON REQUIRED IMPORTED_TARGET libcjson)
pkg_check_modules(XXHASH REQUIRED IMPORTED_TARGET libxxhash)
pkg_check_modules(ZLIB REQUIRED IMPORTED_TARGET zlib)
pkg_check_modules(UTF8PROC REQUIRED IMPORTED_TARGET libutf8proc)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
find_package(Threads REQUIRED)
# oneDNN: GEMM for the transformer engine (f32, bf16, int8), weights pre-packed at load.
find_library(DNNL_LIBRARY NAMES dnnl REQUIRED)
find_path(DNNL_INCLUDE_DIR NAMES oneapi/dnnl/dnnl.h REQUIRED)

add_library(dc_deps INTERFACE)
target_link_libraries(dc_deps INTERFACE
  PkgConfig::CJSON PkgConfig::XXHASH PkgConfig::ZLIB PkgConfig::UTF8PROC PkgConfig::PCRE2
  ${DNNL_LIBRARY} Threads::Threads m)
target_include_directories(dc_deps INTERFACE ${DNNL_INCLUDE_DIR})
