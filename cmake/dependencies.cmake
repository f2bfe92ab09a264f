# Third-party libraries, all from Debian packages (reference/dependencies.md).
find_package(PkgConfig REQUIRED)
pkg_check_modules(CJSON REQUIRED IMPORTED_TARGET libcjson)
pkg_check_modules(XXHASH REQUIRED IMPORTED_TARGET libxxhash)
pkg_check_modules(ZLIB REQUIRED IMPORTED_TARGET zlib)
pkg_check_modules(UTF8PROC REQUIRED IMPORTED_TARGET libutf8proc)
pkg_check_modules(PCRE2 REQUIRED IMPORTED_TARGET libpcre2-8)
pkg_check_modules(CRYPTO REQUIRED IMPORTED_TARGET libcrypto)        # SHA-256, HMAC
pkg_check_modules(PNG REQUIRED IMPORTED_TARGET libpng)
pkg_check_modules(TURBOJPEG REQUIRED IMPORTED_TARGET libturbojpeg)
pkg_check_modules(WEBP REQUIRED IMPORTED_TARGET libwebp)
pkg_check_modules(HIREDIS REQUIRED IMPORTED_TARGET hiredis)         # shared cache tier
pkg_check_modules(MHD REQUIRED IMPORTED_TARGET libmicrohttpd)       # HTTP server
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)            # model downloads
# giflib ships no pkg-config file.
find_library(GIF_LIBRARY NAMES gif REQUIRED)
find_path(GIF_INCLUDE_DIR NAMES gif_lib.h REQUIRED)
find_package(Threads REQUIRED)
# oneDNN: GEMM for the transformer engine (f32, bf16, int8), weights pre-packed at load.
find_library(DNNL_LIBRARY NAMES dnnl REQUIRED)
find_path(DNNL_INCLUDE_DIR NAMES oneapi/dnnl/dnnl.h REQUIRED)

add_library(dc_deps INTERFACE)
target_link_libraries(dc_deps INTERFACE
  PkgConfig::CJSON PkgConfig::XXHASH PkgConfig::ZLIB PkgConfig::UTF8PROC PkgConfig::PCRE2
  PkgConfig::CRYPTO PkgConfig::PNG PkgConfig::TURBOJPEG PkgConfig::WEBP PkgConfig::HIREDIS
  PkgConfig::MHD PkgConfig::CURL
  ${GIF_LIBRARY} ${DNNL_LIBRARY} Threads::Threads m)
target_include_directories(dc_deps INTERFACE ${DNNL_INCLUDE_DIR} ${GIF_INCLUDE_DIR})
