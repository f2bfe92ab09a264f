# Third-party libraries, all from Debian packages (reference/dependencies.md).
find_package(PkgConfig REQUIRED)
pkg_check_modules(CJSON REQUIRED IMPORTED_TARGET libcjson)
pkg_check_modules(XXHASH REQUIRED IMPORTED_TARGET libxxhash)
pkg_check_modules(ZLIB REQUIRED IMPORTED_TARGET zlib)
find_package(Threads REQUIRED)

add_library(dc_deps INTERFACE)
target_link_libraries(dc_deps INTERFACE
  PkgConfig::CJSON PkgConfig::XXHASH PkgConfig::ZLIB Threads::Threads m)
