/* dlopen of libdodeca_cuda.so and the backend choice (backend_loader.h). */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <limits.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "tensor/backend_loader.h"

static struct {
    const dc_cuda_api *api;
    char path[PATH_MAX];
    char why[512];
} cuda_lib;
static pthread_once_t cuda_once = PTHREAD_ONCE_INIT;

static const dc_cuda_host host = {.abi = DC_CUDA_ABI, .fail = dc_fail};

/* Tries one candidate; false (with the dlerror text appended to errs) when it does not load. */
static bool try_open(const char *path, char *errs, size_t cap) {
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        size_t n = strlen(errs);
        const char *e = dlerror();
        if (n < cap) snprintf(errs + n, cap - n, "%s%s", n ? "; " : "", e ? e : path);
        return false;
    }
    void *sym = dlsym(h, DC_CUDA_ENTRY_SYMBOL);
    dc_cuda_entry_fn entry = NULL;
    memcpy(&entry, &sym, sizeof entry);
    const dc_cuda_api *api = entry ? entry() : NULL;
    if (!api || api->abi != DC_CUDA_ABI) {
        size_t n = strlen(errs);
        if (n < cap)
            snprintf(errs + n, cap - n, "%s%s: %s", n ? "; " : "", path,
                     api ? "interface version mismatch" : "no " DC_CUDA_ENTRY_SYMBOL);
        dlclose(h);
        return false;
    }
    cuda_lib.api = api; /* kept open for the life of the process */
    snprintf(cuda_lib.path, sizeof cuda_lib.path, "%s", path);
    return true;
}

static bool try_dir(const char *dir, const char *sub, char *errs, size_t cap) {
    char p[PATH_MAX];
    int n = snprintf(p, sizeof p, "%s%s/%s", dir, sub, DC_CUDA_LIBRARY_NAME);
    if (n < 0 || (size_t)n >= sizeof p || access(p, F_OK) != 0) return false;
    return try_open(p, errs, cap);
}

static void load_once(void) {
    char errs[384] = "";
    const char *env = getenv("DC_CUDA_LIBRARY");
    if (env && *env) {
        if (try_open(env, errs, sizeof errs)) return;
        snprintf(cuda_lib.why, sizeof cuda_lib.why, "cuda: %s (DC_CUDA_LIBRARY) did not load: %s",
                 env, errs);
        return;
    }
    /* the directory of the executable, and of the object holding this code (libdodeca.so) */
    char dirs[2][PATH_MAX];
    size_t nd = 0;
    ssize_t len = readlink("/proc/self/exe", dirs[0], sizeof dirs[0] - 1);
    if (len > 0) {
        dirs[0][len] = '\0';
        char *slash = strrchr(dirs[0], '/');
        if (slash) {
            *slash = '\0';
            nd = 1;
        }
    }
    Dl_info info;
    void *self = (void *)(uintptr_t)&load_once;
    if (dladdr(self, &info) && info.dli_fname && strchr(info.dli_fname, '/')) {
        snprintf(dirs[nd], sizeof dirs[nd], "%s", info.dli_fname);
        char *slash = strrchr(dirs[nd], '/');
        if (slash) {
            *slash = '\0';
            if (!nd || strcmp(dirs[0], dirs[nd])) nd++;
        }
    }
    for (size_t i = 0; i < nd; i++)
        if (try_dir(dirs[i], "", errs, sizeof errs) || try_dir(dirs[i], "/../lib", errs, sizeof errs))
            return;
    if (try_open(DC_CUDA_LIBRARY_NAME, errs, sizeof errs)) return;
    /* a plain "not found" when nothing was there at all; otherwise why it did not load */
    if (strstr(errs, "cannot open shared object file") && !strstr(errs, "/" DC_CUDA_LIBRARY_NAME))
        snprintf(cuda_lib.why, sizeof cuda_lib.why, "cuda: %s not found", DC_CUDA_LIBRARY_NAME);
    else
        snprintf(cuda_lib.why, sizeof cuda_lib.why, "cuda: %s did not load: %s",
                 DC_CUDA_LIBRARY_NAME, errs);
}

dc_status dc_cuda_load(const dc_cuda_api **api) {
    pthread_once(&cuda_once, load_once);
    *api = cuda_lib.api;
    if (!cuda_lib.api) return dc_fail(DC_ERR_GPU, "%s", cuda_lib.why);
    return DC_OK;
}

const dc_cuda_host *dc_cuda_host_table(void) { return &host; }

const char *dc_cuda_library_path(void) { return cuda_lib.api ? cuda_lib.path : ""; }

dc_status dc_backend_cuda_create(const dc_cuda_options *opt, dc_backend **out) {
    if (!out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "backend: NULL output");
    *out = NULL;
    const dc_cuda_api *api = NULL;
    dc_status st = dc_cuda_load(&api);
    if (st) return st;
    dc_cuda_options def = {.device = 0, .pool_limit = 0, .allow_tf32 = false, .green_partitions = 0};
    return api->backend_create(&host, opt ? opt : &def, out);
}

dc_status dc_cuda_check(int device, char *reason, size_t cap) {
    if (reason && cap) reason[0] = '\0';
    const dc_cuda_api *api = NULL;
    dc_status st = dc_cuda_load(&api);
    int n = 0;
    char why[192] = "";
    if (st == DC_OK) st = api->probe(&host, &n, why, sizeof why);
    if (st == DC_OK && (device < 0 || device >= n))
        st = dc_fail(DC_ERR_INVALID_ARGUMENT, "cuda: device %d does not exist (%d device%s)",
                     device, n, n == 1 ? "" : "s");
    if (st != DC_OK && reason && cap) snprintf(reason, cap, "%s", dc_error_detail());
    return st;
}

dc_status dc_cuda_device_query(int device, dc_cuda_device_info *out) {
    const dc_cuda_api *api = NULL;
    dc_status st = dc_cuda_load(&api);
    return st ? st : api->device_info(device, out);
}

/* The devices in use: per device, its open stream contexts (any of them can open the next,
 * which shares its device's pool). A handful of devices at most, so a small table under one
 * lock. */
#define DC_SHARED_DEVICES 32
static struct shared_dev {
    int device;
    dc_backend **ctx; /* open stream contexts of this device */
    size_t n, cap;
} shared[DC_SHARED_DEVICES];
static pthread_mutex_t shared_mu = PTHREAD_MUTEX_INITIALIZER;

static dc_status remember(struct shared_dev *s, dc_backend *be) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        dc_backend **t = realloc(s->ctx, cap * sizeof *t);
        if (!t) return dc_fail(DC_ERR_OUT_OF_MEMORY, "cuda: stream context table");
        s->ctx = t;
        s->cap = cap;
    }
    s->ctx[s->n++] = be;
    return DC_OK;
}

dc_status dc_backend_cuda_acquire(const dc_cuda_options *opt, dc_backend **out) {
    if (!opt || !out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "cuda acquire: NULL argument");
    *out = NULL;
    const dc_cuda_api *api = NULL;
    dc_status st = dc_cuda_load(&api);
    if (st) return st;
    pthread_mutex_lock(&shared_mu);
    struct shared_dev *s = NULL, *free_slot = NULL;
    for (size_t i = 0; i < DC_SHARED_DEVICES && !s; i++) {
        if (shared[i].n && shared[i].device == opt->device) s = &shared[i];
        else if (!shared[i].n && !free_slot) free_slot = &shared[i];
    }
    if (s) {
        st = api->stream_open(&host, s->ctx[0], opt, out);
    } else if (free_slot) {
        st = api->backend_create(&host, opt, out);
        if (st == DC_OK) {
            s = free_slot;
            s->device = opt->device;
        }
    } else {
        st = dc_fail(DC_ERR_GPU, "cuda: more than %d devices", DC_SHARED_DEVICES);
    }
    if (st == DC_OK && (st = remember(s, *out)) != DC_OK) {
        dc_backend_destroy(*out);
        *out = NULL;
    }
    pthread_mutex_unlock(&shared_mu);
    return st;
}

void dc_backend_cuda_release(dc_backend *be) {
    if (!be) return;
    pthread_mutex_lock(&shared_mu);
    for (size_t i = 0; i < DC_SHARED_DEVICES; i++) {
        struct shared_dev *s = &shared[i];
        for (size_t j = 0; j < s->n; j++) {
            if (s->ctx[j] != be) continue;
            s->ctx[j] = s->ctx[--s->n];
            if (!s->n) {
                free(s->ctx);
                memset(s, 0, sizeof *s);
            }
            /* under the lock: a concurrent acquire must not open from a closing context */
            dc_backend_destroy(be);
            pthread_mutex_unlock(&shared_mu);
            return;
        }
    }
    pthread_mutex_unlock(&shared_mu);
    dc_backend_destroy(be); /* not shared: made by dc_backend_cuda_create */
}

/* The library's table for a call on a CUDA backend */
static dc_status api_of(dc_backend *be, const dc_cuda_api **api) {
    if (!dc_backend_is_cuda(be)) return dc_fail(DC_ERR_INVALID_ARGUMENT, "not a CUDA backend");
    return dc_cuda_load(api);
}

dc_status dc_backend_cuda_stream_info(dc_backend *be, dc_cuda_stream_info *out) {
    memset(out, 0, sizeof *out);
    const dc_cuda_api *api = NULL;
    dc_status st = api_of(be, &api);
    if (!st) api->stream_info(be, out);
    return st;
}

dc_status dc_backend_cuda_file_stats(dc_backend *be, dc_cuda_file_stats *out) {
    memset(out, 0, sizeof *out);
    const dc_cuda_api *api = NULL;
    dc_status st = api_of(be, &api);
    if (!st) api->file_stats(be, out);
    return st;
}

dc_status dc_backend_cuda_graph_stats(dc_backend *be, dc_cuda_graph_stats *out) {
    memset(out, 0, sizeof *out);
    const dc_cuda_api *api = NULL;
    dc_status st = api_of(be, &api);
    if (!st) api->graph_stats(be, out);
    return st;
}

bool dc_backend_is_cuda(const dc_backend *be) {
    return be && be->ops && be->ops->name && !strcmp(be->ops->name, "cuda");
}

dc_status dc_backend_select(const char *want, const dc_cpu_backend_options *cpu,
                            const dc_cuda_options *cuda, dc_backend **out, const char **active,
                            char *reason, size_t cap) {
    if (reason && cap) reason[0] = '\0';
    if (active) *active = "cpu";
    if (!want) want = "auto";
    if (strcmp(want, "cpu") && strcmp(want, "cuda") && strcmp(want, "auto"))
        return dc_fail(DC_ERR_CONFIG, "backend \"%s\" is not one of cpu, cuda, auto", want);
    if (strcmp(want, "cpu")) {
        dc_status st = dc_backend_cuda_create(cuda, out);
        if (st == DC_OK) {
            if (active) *active = "cuda";
            return DC_OK;
        }
        if (!strcmp(want, "cuda")) return st;
        if (reason && cap) snprintf(reason, cap, "%s", dc_error_detail());
    }
    return dc_backend_cpu_create(cpu, out);
}
