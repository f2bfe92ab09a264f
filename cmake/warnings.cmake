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
