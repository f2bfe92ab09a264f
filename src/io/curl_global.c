/* libcurl's one initialisation (curl_global.h). */
#include "io/curl_global.h"

#include <pthread.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static CURLcode init_rc = CURLE_OK;
static void init(void) { init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

CURLcode dc_curl_global(void) {
    pthread_once(&once, init);
    return init_rc;
}
