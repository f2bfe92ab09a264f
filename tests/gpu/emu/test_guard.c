/* The emulation's guard on device memory (cuda_emu.cpp): backend buffers work through upload,
 * ops and download as before, and host code that reads or writes one directly — a crash or
 * garbage on a real GPU — dies by SIGSEGV, also while another thread is inside an emulated call
 * when the guard is per thread. The argument names the guard wanted: "auto" (the default: per
 * thread where the CPU has protection keys), "process" (DC_CUDA_EMU_GUARD=process), "off"
 * (DC_CUDA_EMU_GUARD=0: the same accesses succeed, so the deaths come from the guard). The other
 * direction too: a kernel handed a host pointer (an illegal address on a GPU) aborts. */
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gpu_common.h"
#include "tensor/backend.h"

static int failures;

static void check(bool ok, const char *what) {
    printf("%-4s %s\n", ok ? "ok" : "FAIL", what);
    if (!ok) failures++;
}

/* One direct host access to a device buffer, in a child. Returns the signal that ended the child,
 * 0 when it completed (and, for a read, saw `want`), -1 otherwise. */
static int child_access(float *dev, const float *want, size_t n, bool write) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(1);
    }
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core); /* the expected death leaves no core file */
#if defined(__SANITIZE_ADDRESS__)
        signal(SIGSEGV, SIG_DFL); /* ASan would report the fault and exit(1): keep the signal */
#endif
        volatile float *p = dev;
        if (write) {
            p[n / 2] = 42.0f;
            _exit(p[n / 2] == 42.0f ? 0 : 2);
        }
        for (size_t i = 0; i < n; i++)
            if (p[i] != want[i]) _exit(2);
        _exit(0);
    }
    int ws = 0;
    if (waitpid(pid, &ws, 0) != pid) {
        perror("waitpid");
        exit(1);
    }
    if (WIFSIGNALED(ws)) return WTERMSIG(ws);
    return WIFEXITED(ws) && WEXITSTATUS(ws) == 0 ? 0 : -1;
}

static void expect_end(int got, bool guard, const char *what) {
    char line[224];
    if (guard)
        snprintf(line, sizeof line, "host %s of a device buffer dies by SIGSEGV (child: %s %d)",
                 what, got > 0 ? "signal" : "exit", got);
    else
        snprintf(line, sizeof line, "host %s of a device buffer works with the guard off (child: %s %d)",
                 what, got > 0 ? "signal" : "exit", got);
    check(guard ? got == SIGSEGV : got == 0, line);
}

/* The emulation's test hooks (cuda_emu.cpp), from the library the loader opened. */
static const char *(*guard_mode)(void);
static void (*hold)(int open);

/* Another thread holding device memory open, as during an emulated call of its own. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int stage; /* 1: the other thread is inside, 2: it may leave */

static void *holder(void *arg) {
    (void)arg;
    hold(1);
    pthread_mutex_lock(&mu);
    stage = 1;
    pthread_cond_broadcast(&cv);
    while (stage != 2) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    hold(0);
    return NULL;
}

int main(int argc, char **argv) {
    const char *wanted = argc > 1 ? argv[1] : "auto";
    const bool guard = strcmp(wanted, "off") != 0;
    dc_backend *gpu = gpu_or_skip("test_guard", NULL);
    const char *lib = getenv("DC_CUDA_LIBRARY");
    void *h = lib ? dlopen(lib, RTLD_NOW | RTLD_NOLOAD) : NULL;
    void *sym_mode = h ? dlsym(h, "dc_cuda_emu_guard_mode") : NULL;
    void *sym_hold = h ? dlsym(h, "dc_cuda_emu_hold") : NULL;
    memcpy(&guard_mode, &sym_mode, sizeof guard_mode); /* object → function pointer, as POSIX allows */
    memcpy(&hold, &sym_hold, sizeof hold);
    if (!guard_mode || !hold) {
        printf("test_guard: SKIP: DC_CUDA_LIBRARY is not the emulation\n");
        return DC_SKIP;
    }
    const dc_backend_ops *ops = gpu->ops;
    const size_t rows = 5, cols = 300, n = rows * cols;
    float *a = rnd_array(n, -2, 2), *b = rnd_array(n, -2, 2);
    float *gamma = rnd_array(cols, 0.5f, 1.5f), *beta = rnd_array(cols, -0.5f, 0.5f);
    float *want = malloc(n * sizeof *want), *got = malloc(n * sizeof *got);
    float *da = NULL, *db = NULL;
    if (!want || !got || ops->alloc(gpu, n * sizeof(float), (void **)&da) ||
        ops->alloc(gpu, n * sizeof(float), (void **)&db) ||
        ops->upload(gpu, da, a, n * sizeof(float)) || ops->upload(gpu, db, b, n * sizeof(float))) {
        fprintf(stderr, "test_guard: device buffers: %s\n", dc_error_detail());
        return 1;
    }

    /* (a) upload → add, ReLU, LayerNorm with host γ/β (staged by the backend) → download */
    ops->add(gpu, da, db, n);
    ops->activation(gpu, DC_ACT_RELU, da, n);
    ops->layernorm(gpu, da, NULL, gamma, beta, 1e-5f, rows, cols, da);
    for (size_t i = 0; i < n; i++) want[i] = a[i] + b[i] > 0.0f ? a[i] + b[i] : 0.0f;
    dc_kernel_layernorm(want, NULL, gamma, beta, 1e-5f, rows, cols, want);
    dc_status st = ops->download(gpu, got, da, n * sizeof(float));
    check(st == DC_OK && nmse(got, want, n) <= 1e-10,
          "upload, add, relu, layernorm (host gamma/beta), download match the CPU kernels");

    const char *mode = guard_mode();
    char line[160];
    snprintf(line, sizeof line, "the guard is \"%s\" (wanted: %s)", mode, wanted);
    check(strcmp(wanted, "auto") == 0 ? strcmp(mode, "thread") == 0 || strcmp(mode, "process") == 0
                                      : strcmp(mode, wanted) == 0,
          line);

    /* (b) the host touches the device buffer itself, in a child */
    expect_end(child_access(da, got, n, false), guard, "read");
    expect_end(child_access(da, got, n, true), guard, "write");

    /* (c) ... while another thread is inside an emulated call (the pipeline's case) */
    if (strcmp(mode, "process") != 0) {
        pthread_t th;
        if (pthread_create(&th, NULL, holder, NULL) != 0) {
            perror("pthread_create");
            return 1;
        }
        pthread_mutex_lock(&mu);
        while (stage != 1) pthread_cond_wait(&cv, &mu);
        pthread_mutex_unlock(&mu);
        expect_end(child_access(da, got, n, false), guard, "read (another thread in a call)");
        pthread_mutex_lock(&mu);
        stage = 2;
        pthread_cond_broadcast(&cv);
        pthread_mutex_unlock(&mu);
        pthread_join(th, NULL);
    } else {
        printf("--   not checked: a process-wide guard is open while any thread is in a call\n");
    }

    /* (d) an op whose kernel gets a host array where backend memory is required */
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        ops->add(gpu, da, b, n); /* b is host memory: add does not stage its inputs */
        _exit(ops->download(gpu, want, da, n * sizeof(float)) == DC_OK ? 0 : 2);
    }
    int ws = 0;
    if (pid < 0 || waitpid(pid, &ws, 0) != pid) {
        perror("fork/waitpid");
        return 1;
    }
    snprintf(line, sizeof line, "a kernel handed a host pointer %s (child: %s %d)",
             guard ? "aborts" : "runs with the guard off", WIFSIGNALED(ws) ? "signal" : "exit",
             WIFSIGNALED(ws) ? WTERMSIG(ws) : WEXITSTATUS(ws));
    check(guard ? WIFSIGNALED(ws) && WTERMSIG(ws) == SIGABRT : WIFEXITED(ws) && WEXITSTATUS(ws) == 0,
          line);

    /* the parent's buffer is intact and the backend still works */
    float *again = malloc(n * sizeof *again);
    st = again ? ops->download(gpu, again, da, n * sizeof(float)) : DC_ERR_OUT_OF_MEMORY;
    check(st == DC_OK && memcmp(again, got, n * sizeof(float)) == 0,
          "the buffer downloads unchanged afterwards");

    ops->release(gpu, da);
    ops->release(gpu, db);
    dc_backend_destroy(gpu);
    dlclose(h);
    free(a);
    free(b);
    free(gamma);
    free(beta);
    free(want);
    free(got);
    free(again);
    printf("test_guard (guard %s): %s\n", mode, failures ? "FAILED" : "passed");
    return failures ? 1 : 0;
}
