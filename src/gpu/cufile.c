/* Reading weights straight into device memory: GPUDirect Storage through libcufile (loaded with
 * dlopen; the toolkit here has no cufile.h, so the few types and calls are declared below from
 * the cuFile API reference), or pread into pinned host memory and a copy. Both paths give the
 * same bytes; the fallback is taken when the library is absent, cuFileDriverOpen fails (no
 * nvidia-fs, container, unsupported file system) or registration/reading fails. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
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
    dc_cufile_error e = cufile.driver_open();
    if (e.err != 0) {
        snprintf(cufile.why, sizeof cufile.why, "cuFileDriverOpen: error %d (cuda %d)", e.err,
                 e.cu_err);
        return;
    }
    cufile.ok = true;
}

static dc_status read_gds(const char *path, uint64_t offset, size_t bytes, void *dst) {
    int fd = open(path, O_RDONLY | O_DIRECT);
    if (fd < 0) fd = open(path, O_RDONLY); /* cuFile's compatibility mode copes without */
    if (fd < 0) return dc_cu_fail(DC_ERR_IO, "open %s: %s", path, strerror(errno));
    dc_cufile_descr d;
    memset(&d, 0, sizeof d);
    d.type = 1;
    d.handle.fd = fd;
    dc_cufile_handle fh = NULL;
    dc_cufile_error e = cufile.handle_register(&fh, &d);
    if (e.err != 0) {
        close(fd);
        return dc_cu_fail(DC_ERR_GPU, "cuFileHandleRegister %s: error %d", path, e.err);
    }
    dc_status st = DC_OK;
    size_t done = 0;
    while (done < bytes) {
        ssize_t n = cufile.read(fh, dst, bytes - done, (off_t)(offset + done), (off_t)done);
        if (n <= 0) {
            st = n == 0 ? dc_cu_fail(DC_ERR_IO, "%s: end of file at %llu", path,
                                     (unsigned long long)(offset + done))
                        : dc_cu_fail(DC_ERR_GPU, "cuFileRead %s: %zd", path, n);
            break;
        }
        done += (size_t)n;
    }
    cufile.handle_deregister(fh);
    close(fd);
    return st;
}

static dc_status read_posix(dc_cu_backend *cb, const char *path, uint64_t offset, size_t bytes,
                            void *dst) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return dc_cu_fail(DC_ERR_IO, "open %s: %s", path, strerror(errno));
    const size_t chunk = bytes < ((size_t)8 << 20) ? (bytes ? bytes : 1) : ((size_t)8 << 20);
    void *pinned = NULL;
    dc_status st = dc_cu_status(cudaMallocHost(&pinned, chunk), "pinned read buffer");
    size_t done = 0;
    while (!st && done < bytes) {
        size_t want = bytes - done < chunk ? bytes - done : chunk;
        ssize_t n = pread(fd, pinned, want, (off_t)(offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            st = n == 0 ? dc_cu_fail(DC_ERR_IO, "%s: end of file at %llu", path,
                                     (unsigned long long)(offset + done))
                        : dc_cu_fail(DC_ERR_IO, "read %s: %s", path, strerror(errno));
            break;
        }
        /* synchronous copy: the pinned buffer is reused by the next pread */
        st = dc_cu_status(cudaMemcpyAsync((char *)dst + done, pinned, (size_t)n,
                                          cudaMemcpyHostToDevice, cb->stream),
                          "copy to device");
        if (!st) st = dc_cu_status(cudaStreamSynchronize(cb->stream), "copy to device");
        done += (size_t)n;
    }
    if (pinned) cudaFreeHost(pinned);
    close(fd);
    return st;
}

dc_status dc_cu_file_read(dc_backend *be, const char *path, uint64_t offset, size_t bytes,
                          void *dst, bool force_posix, bool *used_gds) {
    dc_cu_backend *cb = dc_cu_of(be);
    *used_gds = false;
    dc_status st = dc_cu_enter(cb);
    if (st || (st = dc_cu_take_sticky(cb))) return st;
    if (!force_posix) {
        pthread_once(&cufile_once, cufile_load);
        if (cufile.ok) {
            cudaStreamSynchronize(cb->stream); /* cuFile writes outside the stream */
            if (read_gds(path, offset, bytes, dst) == DC_OK) {
                *used_gds = true;
                return DC_OK;
            }
        }
    }
    return read_posix(cb, path, offset, bytes, dst);
}
