/* libcurl's process-wide initialisation, once for every user (the hub downloads, the OTLP
 * exporter): curl_global_init is not thread-safe on older libcurl, and each caller keeping
 * its own once-flag would start it twice. */
#ifndef DC_IO_CURL_GLOBAL_H
#define DC_IO_CURL_GLOBAL_H

#include <curl/curl.h>

/* CURLE_OK once libcurl is ready; the same answer on every call. */
CURLcode dc_curl_global(void);

#endif
