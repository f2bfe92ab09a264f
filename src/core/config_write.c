/* Writes a dc_config as TOML that reads back to an equal config (`dodeca config show`). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config_internal.h"
#include "core/error.h"

static void write_string(FILE *out, const char *s) {
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            fputs("\\\"", out);
            break;
        case '\\':
            fputs("\\\\", out);
            break;
        case '\b':
            fputs("\\b", out);
            break;
        case '\t':
            fputs("\\t", out);
            break;
        case '\n':
            fputs("\\n", out);
            break;
        case '\f':
            fputs("\\f", out);
            break;
        case '\r':
            fputs("\\r", out);
            break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                fprintf(out, "\\u%04X", (unsigned)*p);
            else
                fputc(*p, out); /* UTF-8 passes through: every string was checked on input */
        }
    }
    fputc('"', out);
}

static void write_value(FILE *out, const dc_config *c, const dc_cfg_setting *s) {
    const void *p = dc_cfg_cptr(c, s);
    const dc_cfg_field *f = s->field;
    char buf[64];
    switch (f->kind) {
    case DC_CFG_BOOL:
        fputs(*(const bool *)p ? "true" : "false", out);
        break;
    case DC_CFG_U32:
        fprintf(out, "%u", (unsigned)*(const uint32_t *)p);
        break;
    case DC_CFG_U64:
        fprintf(out, "%llu", (unsigned long long)*(const uint64_t *)p);
        break;
    case DC_CFG_F64:
        dc_toml_format_float(*(const double *)p, buf, sizeof buf);
        fputs(buf, out);
        break;
    case DC_CFG_STRING:
        write_string(out, p);
        break;
    case DC_CFG_DEVICE:
        write_string(out, dc_device_name(*(const dc_device *)p, buf, sizeof buf));
        break;
    case DC_CFG_QUANT:
        write_string(out, dc_quantization_name(*(const dc_quantization *)p));
        break;
    case DC_CFG_PADDING:
        write_string(out, dc_padding_strategy_name(*(const dc_padding_strategy *)p));
        break;
    case DC_CFG_EVICTION:
        write_string(out, dc_eviction_policy_name(*(const dc_eviction_policy *)p));
        break;
    case DC_CFG_PII:
        write_string(out, dc_pii_mode_name(*(const dc_pii_mode *)p));
        break;
    case DC_CFG_PII_SENSITIVITY:
        write_string(out, dc_pii_sensitivity_name(*(const dc_pii_sensitivity *)p));
        break;
    case DC_CFG_POOLING:
        write_string(out, dc_pooling_mode_name(*(const dc_pooling_mode *)p));
        break;
    case DC_CFG_NORMALIZE:
        write_string(out, dc_normalize_mode_name(*(const dc_normalize_mode *)p));
        break;
    case DC_CFG_STRING_LIST: {
        uint32_t n = *(const uint32_t *)((const char *)c + f->count_offset);
        fputc('[', out);
        for (uint32_t i = 0; i < n && i < f->size; i++) {
            if (i) fputs(", ", out);
            write_string(out, (const char *)p + i * f->item_size);
        }
        fputc(']', out);
        break;
    }
    case DC_CFG_U32_LIST:
    case DC_CFG_MODEL_LIST: {
        uint32_t n = *(const uint32_t *)((const char *)c + f->count_offset);
        fputc('[', out);
        for (uint32_t i = 0; i < n && i < f->size; i++) {
            if (i) fputs(", ", out);
            if (f->kind == DC_CFG_U32_LIST) {
                fprintf(out, "%u", (unsigned)((const uint32_t *)p)[i]);
            } else {
                const dc_model_info *info = dc_model_info_get(((const dc_model_id *)p)[i]);
                write_string(out, info ? info->name : "unknown");
            }
        }
        fputc(']', out);
        break;
    }
    }
}

dc_status dc_config_write_toml(const dc_config *c, FILE *out) {
    if (!c || !out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "dc_config_write_toml: NULL");
    fputs("# dodeca configuration. Every key is described in the configuration reference,\n"
          "# tests/data/config/dodeca.example.toml.\n",
          out);
    size_t count = dc_cfg_setting_count();
    for (size_t sec = 0; sec < dc_cfg_section_count; sec++) {
        const char *section = dc_cfg_sections[sec];
        fprintf(out, "\n[%s]\n", section);
        for (size_t i = 0; i < count; i++) {
            dc_cfg_setting s = dc_cfg_setting_at(i);
            if (s.model >= 0 || strcmp(s.field->section, section) != 0) continue;
            fprintf(out, "%s = ", s.field->key);
            write_value(out, c, &s);
            fputc('\n', out);
        }
        if (sec != 0) continue;
        /* The per-model tables follow [models], in canonical E1..E12 order. */
        for (int m = 0; m < DC_NUM_MODELS; m++) {
            const dc_model_info *info = dc_model_info_get((dc_model_id)m);
            fprintf(out, "\n[models.%s] # %s %s\n", info->name, info->label,
                    info->repo ? info->repo : "(custom)");
            for (size_t i = 0; i < count; i++) {
                dc_cfg_setting s = dc_cfg_setting_at(i);
                if (s.model != m) continue;
                fprintf(out, "%s = ", s.field->key);
                write_value(out, c, &s);
                fputc('\n', out);
            }
        }
    }
    if (ferror(out)) return dc_fail(DC_ERR_IO, "writing the configuration failed");
    return DC_OK;
}

dc_status dc_config_to_toml(const dc_config *c, char **out, size_t *len) {
    if (!out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "dc_config_to_toml: NULL output");
    *out = NULL;
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f) return dc_fail(DC_ERR_OUT_OF_MEMORY, "open_memstream: %s", strerror(errno));
    dc_status st = dc_config_write_toml(c, f);
    if (fclose(f) != 0 && !st)
        st = dc_fail(DC_ERR_OUT_OF_MEMORY, "writing the configuration failed");
    if (st) {
        free(buf);
        return st;
    }
    *out = buf;
    if (len) *len = n;
    return DC_OK;
}
