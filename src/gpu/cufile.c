/* Reading weights straight into device memory: GPUDirect Storage through libcufile (loaded with
 * dlopen; the toolkit here has no cufile.h, so the few types and calls are declared below from
 * the cuFile API reference), or pread into pinned host memory and a copy. Both paths give the
 * same bytes; the fallback is taken when the library is absent, cuFileDriverOpen fails (no
 * nvidia-fs, container, unsupported file system) or registration/reading fails. Each stream
 * context counts the bytes and seconds of each path (file_stats) for the bandwidth report. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "gpu/cu_internal.h"

/* ---- the cuFile ABI (cufile.h, CUDA 12/13) ---- */
typedef struct {
    int err;    /* CUfileOpError; 0 = CU_FILE_SUCCESS */
    int cu_err; /* CUresult */
} dc_cufile_error;
typedef struct {
    int type; /* CUfileFileHandleType; 1 = CU_FILE_HANDLE_TYPE_OPAQUE_FD */
    union {
        int fd;
        void *handle;
    } handle;
    const void *fs_ops;
} dc_cufile_descr;
typedef void *dc_cufile_handle;

typedef struct {
    void *lib;
    dc_cufile_error (*driver_open)(void);
    dc_cufile_error (*handle_register)(dc_cufile_handle *fh, dc_cufile_descr *d);
    void (*handle_deregister)(dc_cufile_handle fh);
    ssize_t (*read)(dc_cufile_handle fh, void *buf, size_t size, off_t file_off, off_t buf_off);
    /* optional: a registered buffer skips cuFile's bounce buffers */
    dc_cufile_error (*buf_register)(const void *buf, size_t size, int flags);
    dc_cufile_error (*buf_deregister)(const void *buf);
    bool ok;
    char why[96];
} dc_cufile_lib;

static dc_cufile_lib cufile;
static pthread_once_t cufile_once = PTHREAD_ONCE_INIT;

static void *sym(void *lib, const char *name) {
    void *p = dlsym(lib, name);
    return p;
}

static void cufile_load(void) {
    const char *names[] = {"libcufile.so.0", "libcufile.so"};
    for (size_t i = 0; i < 2 && !cufile.lib; i++) cufile.lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!cufile.lib) {
        snprintf(cufile.why, sizeof cufile.why, "libcufile.so.0 not found");
        return;
    }
    void *p[4] = {sym(cufile.lib, "cuFileDriverOpen"), sym(cufile.lib, "cuFileHandleRegister"),
                  sym(cufile.lib, "cuFileHandleDeregister"), sym(cufile.lib, "cuFileRead")};
    if (!p[0] || !p[1] || !p[2] || !p[3]) {
        snprintf(cufile.why, sizeof cufile.why, "libcufile lacks the cuFile calls");
        return;
    }
    memcpy(&cufile.driver_open, &p[0], sizeof p[0]);
    memcpy(&cufile.handle_register, &p[1], sizeof p[1]);
    memcpy(&cufile.handle_deregister, &p[2], sizeof p[2]);
    memcpy(&cufile.read, &p[3], sizeof p[3]);
    void *r[2] = {sym(cufile.lib, "cuFileBufRegister"), sym(cufile.lib, "cuFileBufDeregister")};
    if (r[0] && r[1]) {
        memcpy(&cufile.buf_register, &r[0], sizeof r[0]);
        memcpy(&cufile.buf_deregister, &r[1], sizeof r[1]);
    }
    dc_cufile_error e = cufile.driver_open();
    if (e.err != 0) {
        snprintf(cufile.why, sizeof cufile.why, "cuFileDriverOpen: error %d (cuda %d)", e.err,
                 e.cu_err);
        return;
    }
    cufile.ok = true;
}

/* false with the reason in why when cuFile did not read every byte (the caller falls back) */
static bool read_gds(const char *path, uint64_t offset, size_t bytes, void *dst, char *why,
                     size_t cap) {
    int fd = open(path, O_RDONLY | O_DIRECT);
    if (fd < 0) fd = open(path, O_RDONLY); /* cuFile's compatibility mode copes without */
    if (fd < 0) {
        snprintf(why, cap, "open: %s", strerror(errno));
        return false;
    }
    dc_cufile_descr d;
    memset(&d, 0, sizeof d);
    d.type = 1;
    d.handle.fd = fd;
    dc_cufile_handle fh = NULL;
    dc_cufile_error e = cufile.handle_register(&fh, &d);
    if (e.err != 0) {
        close(fd);
        snprintf(why, cap, "cuFileHandleRegister: error %d", e.err);
        return false;
    }
    /* a registration failure only costs speed: read through cuFile's own buffers then */
    bool reg = cufile.buf_register && cufile.buf_register(dst, bytes, 0).err == 0;
    size_t done = 0;
    while (done < bytes) {
        ssize_t n = cufile.read(fh, dst, bytes - done, (off_t)(offset + done), (off_t)done);
        if (n <= 0) {
            snprintf(why, cap, "cuFileRead: %zd at byte %llu", n,
                     (unsigned long long)(offset + done));
            break;
        }
        done += (size_t)n;
    }
    if (reg) cufile.buf_deregister(dst);
    cufile.handle_deregister(fh);
    close(fd);
    return done == bytes;
}

/* label: the path, or the path and the tensor, for error details. The device's pinned buffer
 * serves every context's reads in turn: a cudaMallocHost per tensor would cost more than the
 * read of a small one. */
static dc_status read_posix(dc_cu_backend *cb, const char *path, const char *label,
                            uint64_t offset, size_t bytes, void *dst) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return dc_cu_fail(DC_ERR_IO, "open %s: %s", label, strerror(errno));
    dc_cu_device *d = cb->dev;
    pthread_mutex_lock(&d->read_mu);
    dc_status st = d->read_buf ? DC_OK
                               : dc_cu_status(cudaMallocHost(&d->read_buf, DC_CU_READ_BUF),
                                              "pinned read buffer");
    size_t done = 0;
    while (!st && done < bytes) {
        size_t want = bytes - done < DC_CU_READ_BUF ? bytes - done : DC_CU_READ_BUF;
        ssize_t n = pread(fd, d->read_buf, want, (off_t)(offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            st = n == 0 ? dc_cu_fail(DC_ERR_IO, "%s: end of file at byte %llu (%zu of %zu bytes read)",
                                     label, (unsigned long long)(offset + done), done, bytes)
                        : dc_cu_fail(DC_ERR_IO, "read %s: %s", label, strerror(errno));
            break;
        }
        /* synchronous copy: the pinned buffer is reused by the next pread */
        st = dc_cu_status(cudaMemcpyAsync((char *)dst + done, d->read_buf, (size_t)n,
                                          cudaMemcpyHostToDevice, cb->stream),
                          "copy to device");
        if (!st) st = dc_cu_status(cudaStreamSynchronize(cb->stream), "copy to device");
        done += (size_t)n;
    }
    pthread_mutex_unlock(&d->read_mu);
    close(fd);
    return st;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void count(dc_cu_backend *cb, bool gds, size_t bytes, double seconds, const char *why) {
    pthread_mutex_lock(&cb->file_mu);
    dc_cuda_file_stats *f = &cb->file_st;
    f->reads++;
    if (gds) {
        f->gds_bytes += bytes;
        f->gds_seconds += seconds;
    } else {
        f->posix_bytes += bytes;
        f->posix_seconds += seconds;
        snprintf(f->gds_reason, sizeof f->gds_reason, "%s", why);
    }
    pthread_mutex_unlock(&cb->file_mu);
}

static dc_status file_read(dc_backend *be, const char *path, const char *label, uint64_t offset,
                           size_t bytes, void *dst, bool force_posix, bool *used_gds) {
    dc_cu_backend *cb = dc_cu_of(be);
    *used_gds = false;
    dc_status st = dc_cu_enter(cb);
    if (st || (st = dc_cu_take_sticky(cb))) return st;
    const double t0 = now_s();
    char why[128] = "pread forced";
    if (!force_posix) {
        pthread_once(&cufile_once, cufile_load);
        snprintf(why, sizeof why, "%s", cufile.why);
        if (cufile.ok) {
            cudaStreamSynchronize(cb->stream); /* cuFile writes outside the stream */
            if (read_gds(path, offset, bytes, dst, why, sizeof why)) {
                *used_gds = true;
                count(cb, true, bytes, now_s() - t0, "");
                return DC_OK;
            }
        }
    }
    st = read_posix(cb, path, label, offset, bytes, dst);
    if (!st) count(cb, false, bytes, now_s() - t0, why);
    return st;
}

dc_status dc_cu_file_read(dc_backend *be, const char *path, uint64_t offset, size_t bytes,
                          void *dst, bool force_posix, bool *used_gds) {
    return file_read(be, path, path, offset, bytes, dst, force_posix, used_gds);
}

dc_status dc_cu_file_read_tensor(dc_backend *be, const char *path, const char *tensor,
                                 uint64_t offset, size_t bytes, void *dst) {
    char label[512];
    snprintf(label, sizeof label, "%s (tensor \"%s\")", path, tensor ? tensor : "?");
    bool gds;
    return file_read(be, path, label, offset, bytes, dst, false, &gds);
}

void dc_cu_file_stats(dc_backend *be, dc_cuda_file_stats *out) {
    dc_cu_backend *cb = dc_cu_of(be);
    pthread_mutex_lock(&cb->file_mu);
    *out = cb->file_st;
    pthread_mutex_unlock(&cb->file_mu);
}
