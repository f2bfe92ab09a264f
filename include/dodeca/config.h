/* dodeca — configuration (placeholder; being written). */
#ifndef DODECA_CONFIG_H
#define DODECA_CONFIG_H
struct dc_model_config;
#endif
