#include "dodeca/dodeca.h"

const char *dc_version(void) { return DC_VERSION_STRING; }
