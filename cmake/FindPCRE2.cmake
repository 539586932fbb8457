# Finds the 8-bit PCRE2 library (Debian: libpcre2-dev, which ships pkg-config files but no CMake package).
# Defines PCRE2_FOUND and the imported target PCRE2::8bit.
include(FindPackageHandleStandardArgs)
find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(PC_PCRE2_8 QUIET libpcre2-8)
endif()
find_path(PCRE2_INCLUDE_DIR NAMES pcre2.h HINTS ${PC_PCRE2_8_INCLUDE_DIRS})
find_library(PCRE2_8_LIBRARY NAMES pcre2-8 HINTS ${PC_PCRE2_8_LIBRARY_DIRS})
set(PCRE2_VERSION ${PC_PCRE2_8_VERSION})
find_package_handle_standard_args(PCRE2 REQUIRED_VARS PCRE2_8_LIBRARY PCRE2_INCLUDE_DIR VERSION_VAR PCRE2_VERSION)
if(PCRE2_FOUND AND NOT TARGET PCRE2::8bit)
  add_library(PCRE2::8bit UNKNOWN IMPORTED)
  set_target_properties(PCRE2::8bit PROPERTIES
    IMPORTED_LOCATION "${PCRE2_8_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${PCRE2_INCLUDE_DIR}"
    INTERFACE_COMPILE_DEFINITIONS "PCRE2_CODE_UNIT_WIDTH=8")
endif()
mark_as_advanced(PCRE2_INCLUDE_DIR PCRE2_8_LIBRARY)
