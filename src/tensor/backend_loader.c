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
    dc_cuda_options def = {.device = 0, .pool_limit = 0, .allow_tf32 = false};
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

/* The shared backends: a handful of devices at most, so a small table under one lock. */
#define DC_SHARED_BACKENDS 32
static struct shared_be {
    dc_backend *be;
    int device;
    bool tf32;
    uint32_t refs;
} shared[DC_SHARED_BACKENDS];
static pthread_mutex_t shared_mu = PTHREAD_MUTEX_INITIALIZER;

dc_status dc_backend_cuda_acquire(const dc_cuda_options *opt, dc_backend **out) {
    if (!opt || !out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "cuda acquire: NULL argument");
    *out = NULL;
    pthread_mutex_lock(&shared_mu);
    struct shared_be *free_slot = NULL;
    for (size_t i = 0; i < DC_SHARED_BACKENDS; i++) {
        struct shared_be *s = &shared[i];
        if (s->be && s->device == opt->device && s->tf32 == opt->allow_tf32) {
            s->refs++;
            *out = s->be;
            pthread_mutex_unlock(&shared_mu);
            return DC_OK;
        }
        if (!s->be && !free_slot) free_slot = s;
    }
    dc_status st = free_slot ? dc_backend_cuda_create(opt, out)
                             : dc_fail(DC_ERR_GPU, "cuda: more than %d shared backends",
                                       DC_SHARED_BACKENDS);
    if (st == DC_OK) *free_slot = (struct shared_be){*out, opt->device, opt->allow_tf32, 1};
    pthread_mutex_unlock(&shared_mu);
    return st;
}

void dc_backend_cuda_release(dc_backend *be) {
    if (!be) return;
    pthread_mutex_lock(&shared_mu);
    for (size_t i = 0; i < DC_SHARED_BACKENDS; i++) {
        struct shared_be *s = &shared[i];
        if (s->be != be) continue;
        if (--s->refs == 0) {
            dc_backend_destroy(be);
            memset(s, 0, sizeof *s);
        }
        pthread_mutex_unlock(&shared_mu);
        return;
    }
    pthread_mutex_unlock(&shared_mu);
    dc_backend_destroy(be); /* not shared: made by dc_backend_cuda_create */
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
