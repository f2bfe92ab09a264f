/* `dodeca inspect [--json] PATH`: lists the tensors of a checkpoint (safetensors, sharded
 * safetensors index, PyTorch zip or legacy .bin). PATH may be a model folder, in which case
 * model.safetensors, model.safetensors.index.json or pytorch_model.bin is used, in that order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "cli/commands.h"
#include "io/weights.h"

static void dc_inspect_usage(FILE *out) {
    fputs("usage: dodeca inspect [--json] PATH\n"
          "  Lists the tensors of a checkpoint (safetensors, model.safetensors.index.json,\n"
          "  pytorch_model.bin zip or legacy format), sorted by name, with dtype, shape and\n"
          "  byte size, then the file's metadata. PATH may be a model folder.\n"
          "  --json   print one JSON object instead of text\n",
          out);
}

static int dc_inspect_cmp(const void *a, const void *b) {
    const dc_tensor_view *x = *(const dc_tensor_view *const *)a;
    const dc_tensor_view *y = *(const dc_tensor_view *const *)b;
    return strcmp(x->name, y->name);
}

static void dc_inspect_shape(const dc_tensor_view *t, char *buf, size_t cap) {
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (uint32_t i = 0; i < t->ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%llu", i ? ", " : "",
                              (unsigned long long)t->shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

/* A folder: the checkpoint file a model folder publishes. */
static const char *dc_inspect_resolve(const char *path, char *buf, size_t cap) {
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return path;
    static const char *const names[] = {"model.safetensors", "model.safetensors.index.json",
                                        "pytorch_model.bin"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(buf, cap, "%s/%s", path, names[i]);
        if (stat(buf, &st) == 0 && S_ISREG(st.st_mode)) return buf;
    }
    return path; /* dc_weights_open reports "not a regular file" */
}

static int dc_inspect_text(const dc_weights *w, const dc_tensor_view **sorted, size_t n) {
    uint64_t params = 0, bytes = 0;
    size_t name_w = 4, dtype_w = 5, shape_w = 5;
    char shape[256];
    for (size_t i = 0; i < n; i++) {
        params += sorted[i]->numel;
        bytes += sorted[i]->nbytes;
        size_t l = strlen(sorted[i]->name);
        if (l > name_w) name_w = l;
        l = strlen(dc_dtype_name(sorted[i]->dtype));
        if (l > dtype_w) dtype_w = l;
        dc_inspect_shape(sorted[i], shape, sizeof shape);
        l = strlen(shape);
        if (l > shape_w) shape_w = l;
    }
    if (name_w > 120) name_w = 120;
    printf("file: %s\n", dc_weights_path(w));
    printf("format: %s\n", dc_weights_format_name(w));
    printf("tensors: %zu\n", n);
    printf("parameters: %llu\n", (unsigned long long)params);
    printf("bytes: %llu\n", (unsigned long long)bytes);
    printf("\n%-*s  %-*s  %-*s  %s\n", (int)name_w, "name", (int)dtype_w, "dtype", (int)shape_w,
           "shape", "bytes");
    for (size_t i = 0; i < n; i++) {
        dc_inspect_shape(sorted[i], shape, sizeof shape);
        printf("%-*s  %-*s  %-*s  %llu\n", (int)name_w, sorted[i]->name, (int)dtype_w,
               dc_dtype_name(sorted[i]->dtype), (int)shape_w, shape,
               (unsigned long long)sorted[i]->nbytes);
    }
    size_t nmeta = dc_weights_metadata_count(w);
    if (nmeta) {
        printf("\nmetadata:\n");
        for (size_t i = 0; i < nmeta; i++) {
            const char *k, *v;
            dc_weights_metadata_at(w, i, &k, &v);
            printf("  %s: %s\n", k, v);
        }
    }
    return ferror(stdout) ? DC_EXIT_FAILURE : DC_EXIT_OK;
}

static int dc_inspect_json(const dc_weights *w, const dc_tensor_view **sorted, size_t n) {
    cJSON *root = cJSON_CreateObject();
    if (!root) goto oom;
    cJSON_AddStringToObject(root, "file", dc_weights_path(w));
    cJSON_AddStringToObject(root, "format", dc_weights_format_name(w));
    cJSON_AddNumberToObject(root, "tensor_count", (double)n);
    cJSON *meta = cJSON_AddObjectToObject(root, "metadata");
    cJSON *list = cJSON_AddArrayToObject(root, "tensors");
    if (!meta || !list) goto oom;
    for (size_t i = 0; i < dc_weights_metadata_count(w); i++) {
        const char *k, *v;
        dc_weights_metadata_at(w, i, &k, &v);
        if (!cJSON_AddStringToObject(meta, k, v)) goto oom;
    }
    for (size_t i = 0; i < n; i++) {
        const dc_tensor_view *t = sorted[i];
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(list, o)) {
            cJSON_Delete(o);
            goto oom;
        }
        cJSON_AddStringToObject(o, "name", t->name);
        cJSON_AddStringToObject(o, "dtype", dc_dtype_name(t->dtype));
        cJSON *shape = cJSON_AddArrayToObject(o, "shape");
        if (!shape) goto oom;
        for (uint32_t d = 0; d < t->ndim; d++)
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
        cJSON_AddNumberToObject(o, "nbytes", (double)t->nbytes);
    }
    char *text = cJSON_Print(root);
    if (!text) goto oom;
    puts(text);
    cJSON_free(text);
    cJSON_Delete(root);
    return ferror(stdout) ? DC_EXIT_FAILURE : DC_EXIT_OK;
oom:
    cJSON_Delete(root);
    fprintf(stderr, "dodeca: inspect: out of memory\n");
    return DC_EXIT_FAILURE;
}

int dc_cmd_inspect(int argc, char **argv) {
    const char *path = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            dc_inspect_usage(stdout);
            return DC_EXIT_OK;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "dodeca: inspect: unknown option %s\n", argv[i]);
            dc_inspect_usage(stderr);
            return DC_EXIT_USAGE;
        } else if (path) {
            fprintf(stderr, "dodeca: inspect: more than one PATH given\n");
            dc_inspect_usage(stderr);
            return DC_EXIT_USAGE;
        } else {
            path = argv[i];
        }
    }
    if (!path) {
        fprintf(stderr, "dodeca: inspect: missing PATH\n");
        dc_inspect_usage(stderr);
        return DC_EXIT_USAGE;
    }
    char resolved[4096];
    path = dc_inspect_resolve(path, resolved, sizeof resolved);
    dc_weights *w = NULL;
    dc_status st = dc_weights_open(path, &w);
    if (st) {
        fprintf(stderr, "dodeca: inspect: %s\n", dc_error_detail());
        return DC_EXIT_FAILURE;
    }
    size_t n = dc_weights_count(w);
    const dc_tensor_view **sorted = malloc((n ? n : 1) * sizeof *sorted);
    if (!sorted) {
        dc_weights_close(w);
        fprintf(stderr, "dodeca: inspect: out of memory\n");
        return DC_EXIT_FAILURE;
    }
    for (size_t i = 0; i < n; i++) sorted[i] = dc_weights_tensor(w, i);
    qsort(sorted, n, sizeof *sorted, dc_inspect_cmp);
    int rc = json ? dc_inspect_json(w, sorted, n) : dc_inspect_text(w, sorted, n);
    free(sorted);
    dc_weights_close(w);
    return rc;
}
