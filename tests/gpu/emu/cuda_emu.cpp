// The CPU stand-in for the CUDA runtime and cuBLAS that libdodeca_cuda_emu.so links instead of
// the real ones (tests/gpu/emu/CMakeLists.txt): "device" memory is a host range the host code
// cannot touch outside the emulated calls (below; cudaPointerGetAttributes tells device from
// host by the remembered allocations), copies are memcpy, streams are synchronous, kernels run
// block by block with their threads as fibers (cuda_emu.h), GEMMs follow the column-major BLAS
// definition in double precision. It runs the backend's host code
// and the kernels' logic without a GPU; it says nothing about timing, races between blocks, or
// how the real cuBLAS behaves beyond its documented semantics. The device reports compute
// capability 9.0 (DC_CUDA_EMU_CC=100 makes it 10.0, where the block-scaled FP4 matmul is
// offered); the cuBLASLt FP8 and FP4 matmuls are emulated from their documented definitions.
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <execinfo.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "emu/cuda_emu.h"

#if defined(__SANITIZE_ADDRESS__)
#define DC_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DC_EMU_ASAN 1
#endif
#endif
#ifndef DC_EMU_ASAN
#define DC_EMU_ASAN 0
#endif
#if DC_EMU_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

// ---- device memory the host cannot touch ----
//
// Every cudaMalloc block is carved from one reserved range (the emulated device's 8 GiB) that
// the host cannot touch except while an emulated runtime / cuBLAS call or a kernel is running
// (DeviceAccess). Host code that reads or writes a device buffer directly — a crash or garbage
// on a real GPU — therefore dies here by SIGSEGV at the access instead of passing.
//
// Per thread where the CPU has memory protection keys (the range carries its own key; entering
// a call grants the key to the calling thread only, a register write): the pipeline runs models
// in several threads, and a process-wide switch would be open nearly all the time there.
// Without keys (or DC_CUDA_EMU_GUARD=process) the range is mprotect'ed PROT_NONE and one
// counter opens it on the first entry of any thread and closes it on the last exit: a bad access
// that overlaps another thread's call goes unnoticed then, but a correct program never faults.
// DC_CUDA_EMU_GUARD=0 leaves the range open (the old behaviour).

namespace {

constexpr size_t kArenaBytes = (size_t)8 << 30; // what cudaGetDeviceProperties reports

enum GuardMode { kGuardOff, kGuardProcess, kGuardThread };

std::mutex g_arena_mu; // the range, its free list, the process-wide counter
char *g_arena = nullptr;
bool g_arena_failed = false;
std::atomic<int> g_mode{kGuardOff}; // decided with the range
int g_pkey = -1;                    // kGuardThread: the range's protection key
int g_inside = 0;                   // emulated calls in progress, all threads
thread_local int t_inside = 0;      // emulated calls in progress in this thread
size_t g_page = 4096;
std::map<size_t, size_t> g_free; // offset → bytes of the free ranges, coalesced

void set_prot(int prot) {
    if (mprotect(g_arena, kArenaBytes, prot) != 0) {
        perror("cuda_emu: mprotect of the device memory range");
        abort(); // with the range closed a correct program would fault: stop here instead
    }
}

// Tells on a host access to the range before the default action ends the process.
void on_segv(int, siginfo_t *si, void *) {
    uintptr_t a = (uintptr_t)si->si_addr, b = (uintptr_t)g_arena;
    if (!g_arena || a < b || a >= b + kArenaBytes) return; // not ours: fault again, die as usual
    static const char msg[] =
        "cuda_emu: host code touched emulated device memory outside an emulated CUDA call (on a GPU: a "
        "crash or garbage). DC_CUDA_EMU_GUARD=0 disables this check; the stack (resolve "
        "+offsets with addr2line -f -e <file>, or run under gdb):\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    void *frames[48];
    backtrace_symbols_fd(frames, backtrace(frames, 48), 2);
    // SA_RESETHAND restored the default action: the access runs again and kills the process
}

void install_segv_note() {
    struct sigaction old;
    if (sigaction(SIGSEGV, nullptr, &old) != 0 || (old.sa_flags & SA_SIGINFO) ||
        old.sa_handler != SIG_DFL)
        return; // someone (ASan, the program) handles SIGSEGV: leave it to them
    void *warm[2];
    (void)backtrace(warm, 2); // loads libgcc's unwinder now, not inside the handler
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, nullptr);
}

// Reserves the range on first use (g_arena_mu held).
bool arena_ready() {
    if (g_arena || g_arena_failed) return g_arena != nullptr;
    long pg = sysconf(_SC_PAGESIZE);
    if (pg > 0) g_page = (size_t)pg;
    void *m = mmap(nullptr, kArenaBytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (m == MAP_FAILED) {
        perror("cuda_emu: reserving 8 GiB of address space for device memory");
        g_arena_failed = true;
        return false;
    }
    g_arena = (char *)m;
    g_free[0] = kArenaBytes;
    const char *env = getenv("DC_CUDA_EMU_GUARD");
    if (env && strcmp(env, "0") == 0) {
        set_prot(PROT_READ | PROT_WRITE);
        return true; // g_mode stays kGuardOff
    }
    // a new key starts access-disabled here; the other threads' default rights deny it too
    int key = env && strcmp(env, "process") == 0 ? -1 : pkey_alloc(0, PKEY_DISABLE_ACCESS);
    if (key >= 0 && pkey_mprotect(g_arena, kArenaBytes, PROT_READ | PROT_WRITE, key) == 0) {
        g_pkey = key;
        if (t_inside > 0) pkey_set(key, 0);
        g_mode = kGuardThread;
    } else {
        if (key >= 0) pkey_free(key);
        if (g_inside > 0) set_prot(PROT_READ | PROT_WRITE);
        g_mode = kGuardProcess;
    }
    install_segv_note();
    return true;
}

void device_enter() {
    if (t_inside++ == 0 && g_mode == kGuardThread) pkey_set(g_pkey, 0);
    std::lock_guard<std::mutex> lock(g_arena_mu);
    if (g_inside++ == 0 && g_mode == kGuardProcess) set_prot(PROT_READ | PROT_WRITE);
}
void device_leave() {
    if (--t_inside == 0 && g_mode == kGuardThread) pkey_set(g_pkey, PKEY_DISABLE_ACCESS);
    std::lock_guard<std::mutex> lock(g_arena_mu);
    if (--g_inside == 0 && g_mode == kGuardProcess) set_prot(PROT_NONE);
}

// Brackets the body of every emulated call that reads or writes device memory.
struct DeviceAccess {
    DeviceAccess() { device_enter(); }
    ~DeviceAccess() { device_leave(); }
    DeviceAccess(const DeviceAccess &) = delete;
    DeviceAccess &operator=(const DeviceAccess &) = delete;
};

size_t arena_span(size_t bytes) { return ((bytes ? bytes : 1) + g_page - 1) / g_page * g_page; }

// First fit over the free ranges, whole pages (cudaMalloc's 256-byte alignment and more).
void *arena_alloc(size_t bytes) {
    std::lock_guard<std::mutex> lock(g_arena_mu);
    if (!arena_ready() || bytes > kArenaBytes) return nullptr;
    const size_t need = arena_span(bytes);
    for (auto it = g_free.begin(); it != g_free.end(); ++it) {
        if (it->second < need) continue;
        const size_t off = it->first, rest = it->second - need;
        g_free.erase(it);
        if (rest) g_free[off + need] = rest;
        return g_arena + off;
    }
    return nullptr;
}

void arena_free(void *p, size_t bytes) {
    std::lock_guard<std::mutex> lock(g_arena_mu);
    size_t off = (size_t)((char *)p - g_arena), len = arena_span(bytes);
    madvise(p, len, MADV_DONTNEED); // the pages go back to the system; cudaMalloc refills
    auto next = g_free.lower_bound(off);
    if (next != g_free.end() && off + len == next->first) {
        len += next->second;
        next = g_free.erase(next);
    }
    if (next != g_free.begin()) {
        auto prev = std::prev(next);
        if (prev->first + prev->second == off) {
            prev->second += len;
            return;
        }
    }
    g_free[off] = len;
}

} // namespace

// ---- fibers ----

uint3 dc_emu_block_idx;
dim3 dc_emu_block_dim, dc_emu_grid_dim;

namespace {

constexpr size_t kStack = 128 * 1024;

// ASan must be told of every stack switch (its stack bounds and fake stacks follow the fibers);
// elsewhere these are no-ops.
inline void switch_begin(void **fake, const void *bottom, size_t size) {
#if DC_EMU_ASAN
    __sanitizer_start_switch_fiber(fake, bottom, size);
#else
    (void)fake, (void)bottom, (void)size;
#endif
}
inline void switch_end(void *fake, const void **bottom_old, size_t *size_old) {
#if DC_EMU_ASAN
    __sanitizer_finish_switch_fiber(fake, bottom_old, size_old);
#else
    (void)fake, (void)bottom_old, (void)size_old;
#endif
}

struct Fiber {
    ucontext_t ctx;
    std::unique_ptr<char[]> stack; // uninitialised: allocated once, reused by every launch
    uint3 tid;
    bool done = false;
    void *fake = nullptr; // ASan's fake stack while the fiber waits at a barrier
};

struct Block {
    std::vector<Fiber> fibers;
    ucontext_t sched;
    const void *sched_bottom = nullptr; // the scheduler's stack, for ASan
    size_t sched_size = 0;
    size_t current = 0;
    const std::function<void()> *body = nullptr;
    std::vector<char> smem;
    std::vector<float> shfl;
};

Block *g_block = nullptr;
std::mutex g_launch_mu; // one launch at a time (the fibers use globals)

void fiber_entry() {
    Block *b = g_block;
    switch_end(nullptr, &b->sched_bottom, &b->sched_size);
    (*b->body)();
    b->fibers[b->current].done = true;
    switch_begin(nullptr, b->sched_bottom, b->sched_size); // this stack is finished
    swapcontext(&b->fibers[b->current].ctx, &b->sched);
}

} // namespace

uint3 dc_emu_thread_idx() { return g_block->fibers[g_block->current].tid; }
void *dc_emu_dynamic_smem() { return g_block->smem.data(); }

// Every live fiber must reach the barrier before any continues: yield to the scheduler, which
// runs the others up to the same point (round robin keeps them in step).
void dc_emu_sync() {
    Block *b = g_block;
    Fiber &f = b->fibers[b->current];
    switch_begin(&f.fake, b->sched_bottom, b->sched_size);
    swapcontext(&f.ctx, &b->sched);
    switch_end(f.fake, &b->sched_bottom, &b->sched_size);
}

float dc_emu_shfl_xor(float v, int lane_mask) {
    Block *b = g_block;
    unsigned t = b->fibers[b->current].tid.x;
    b->shfl[t] = v;
    dc_emu_sync();
    unsigned src = (t & ~31u) | ((t & 31u) ^ (unsigned)lane_mask);
    float r = src < b->shfl.size() ? b->shfl[src] : v;
    dc_emu_sync();
    return r;
}

void dc_emu_launch(dim3 grid, dim3 block, size_t smem, const std::function<void()> &body) {
    std::lock_guard<std::mutex> lock(g_launch_mu);
    DeviceAccess device; // the kernel reads and writes device memory
    static Block b; // fibers and their stacks persist between launches
    const size_t nt = (size_t)block.x * block.y * block.z;
    if (b.fibers.size() < nt) b.fibers.resize(nt);
    for (size_t t = 0; t < nt; t++)
        if (!b.fibers[t].stack) b.fibers[t].stack.reset(new char[kStack]);
    b.smem.assign(smem + 16, 0);
    b.shfl.assign(nt, 0.0f);
    b.body = &body;
    g_block = &b;
    dc_emu_grid_dim = grid;
    dc_emu_block_dim = block;
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++) {
                dc_emu_block_idx = {bx, by, bz};
                for (size_t t = 0; t < nt; t++) {
                    Fiber &f = b.fibers[t];
                    f.done = false;
                    f.tid = {(unsigned)(t % block.x), (unsigned)(t / block.x % block.y),
                             (unsigned)(t / ((size_t)block.x * block.y))};
                    getcontext(&f.ctx);
                    f.ctx.uc_stack.ss_sp = f.stack.get();
                    f.ctx.uc_stack.ss_size = kStack;
                    f.ctx.uc_link = nullptr;
                    makecontext(&f.ctx, fiber_entry, 0);
                }
                // rounds: each unfinished fiber runs until its next barrier or its end
                for (bool any = true; any;) {
                    any = false;
                    for (size_t t = 0; t < nt; t++) {
                        if (b.fibers[t].done) continue;
                        b.current = t;
                        void *fake = nullptr;
                        switch_begin(&fake, b.fibers[t].stack.get(), kStack);
                        swapcontext(&b.sched, &b.fibers[t].ctx);
                        switch_end(fake, nullptr, nullptr);
                        if (!b.fibers[t].done) any = true;
                    }
                }
            }
    g_block = nullptr;
}

// ---- the runtime ----

namespace {
std::mutex g_mem_mu;
std::map<uintptr_t, size_t> g_dev;    // base → bytes of every "device" allocation
std::map<uintptr_t, size_t> g_pinned; // the same for cudaMallocHost
cudaError_t g_last = cudaSuccess;

// Compute capability ×10: 90 (Hopper) unless DC_CUDA_EMU_CC says otherwise (e.g. 100, Blackwell:
// cuBLASLt's block-scaled FP4 matmul is offered there only).
int emu_cc() {
    static const int cc = [] {
        const char *e = getenv("DC_CUDA_EMU_CC");
        int v = e ? atoi(e) : 0;
        return v >= 10 && v <= 199 ? v : 90;
    }();
    return cc;
}

cudaError_t set_last(cudaError_t e) {
    if (e != cudaSuccess) g_last = e;
    return e;
}
// Whether p lies in one of the blocks (g_mem_mu held); `end_too` accepts one past the end.
bool in_blocks(const std::map<uintptr_t, size_t> &m, const void *p, bool end_too) {
    uintptr_t a = (uintptr_t)p;
    auto it = m.upper_bound(a);
    if (it == m.begin()) return false;
    --it;
    size_t n = it->second ? it->second : 1;
    return a >= it->first && (a < it->first + n || (end_too && a == it->first + n));
}
bool is_dev(const void *p) {
    std::lock_guard<std::mutex> lock(g_mem_mu);
    return in_blocks(g_dev, p, false);
}
bool is_pinned(const void *p) {
    std::lock_guard<std::mutex> lock(g_mem_mu);
    return in_blocks(g_pinned, p, false);
}

// Live streams and events (cudaStreamCreateWithFlags, cuGreenCtxStreamCreate, ...) and how
// many records and waits were asked for.
std::mutex g_sync_mu;
std::set<const void *> g_streams, g_events;
uint64_t g_records, g_waits, g_green_streams;

// Stream capture. Work enqueued on a stream being captured is kept (one closure per kernel,
// copy, memset or GEMM, with its arguments as they were) instead of run; cudaGraphLaunch runs
// the closures in order, each time. What a GPU refuses while capturing invalidates the capture
// here too, so that cudaStreamEndCapture fails as it would there: synchronising the capturing
// stream, a copy between it and pageable host memory, a wait on an event recorded outside the
// capture, a GEMM on a handle without a workspace of its own, and, from the capturing thread,
// cudaMalloc in a capture not begun in relaxed mode or cudaFree in any (it waits for the device).
struct EmuCapture {
    std::vector<std::function<void()>> work;
    cudaStreamCaptureMode mode;
    std::thread::id thread;
    const char *invalid = nullptr; // why the capture was invalidated
};
struct EmuGraph {
    std::vector<std::function<void()>> work;
};
std::map<const void *, EmuCapture> g_capture; // by stream (g_sync_mu)
std::set<const void *> g_captured_events;      // last recorded in a capture (g_sync_mu)
std::set<const EmuGraph *> g_graphs, g_execs;  // live (g_sync_mu)
uint64_t g_graph_launches;

// The capture of s, or nullptr (g_sync_mu held).
EmuCapture *capture_of(cudaStream_t s) {
    auto it = s ? g_capture.find((const void *)s) : g_capture.end();
    return it == g_capture.end() ? nullptr : &it->second;
}

void invalidate(EmuCapture *c, const char *why) {
    if (!c->invalid) c->invalid = why;
}

// Keeps fn in s's capture (true), or leaves it to the caller to run now (false).
bool captured(cudaStream_t s, const std::function<void()> &fn) {
    std::lock_guard<std::mutex> lock(g_sync_mu);
    EmuCapture *c = capture_of(s);
    if (!c) return false;
    c->work.push_back(fn);
    return true;
}

// Whether the calling thread may allocate or free now (false invalidates its capture).
bool alloc_allowed_during_capture(bool is_free) {
    std::lock_guard<std::mutex> lock(g_sync_mu);
    bool ok = true;
    for (auto &kv : g_capture)
        if (kv.second.thread == std::this_thread::get_id() &&
            (is_free || kv.second.mode != cudaStreamCaptureModeRelaxed)) {
            invalidate(&kv.second, is_free ? "cudaFree during a capture"
                                           : "cudaMalloc during a capture not in relaxed mode");
            ok = false;
        }
    return ok;
}

[[noreturn]] void replay_failed(const char *what, int status) {
    fprintf(stderr, "cuda_emu: a captured %s failed when its graph ran (status %d)\n", what, status);
    abort();
}

[[noreturn]] void dc_emu_bad_handle(const char *call, const char *what, const void *h) {
    fprintf(stderr, "cuda_emu: %s: %p is not a live %s\n", call, h, what);
    abort();
}

// Green contexts (DC_CUDA_EMU_GREEN=1): the driver calls green.c resolves, over the emulated
// device's kSms SMs. Splits into groups of minCount SMs as the driver documents; the green
// contexts are tokens and their streams ordinary emulated streams.
constexpr int kSms = 16;
CUresult emu_get_resource(CUdevice dev, CUdevResource *r, CUdevResourceType type) {
    if (dev != 0 || type != CU_DEV_RESOURCE_TYPE_SM) return CUDA_ERROR_INVALID_VALUE;
    memset(r, 0, sizeof *r);
    r->type = CU_DEV_RESOURCE_TYPE_SM;
    r->sm.smCount = kSms;
    return CUDA_SUCCESS;
}
CUresult emu_split(CUdevResource *result, unsigned *n, const CUdevResource *in,
                   CUdevResource *rest, unsigned, unsigned min_count) {
    if (!n || !in || !min_count) return CUDA_ERROR_INVALID_VALUE;
    unsigned fit = in->sm.smCount / min_count, groups = *n < fit ? *n : fit;
    if (!groups) return CUDA_ERROR_INVALID_RESOURCE_CONFIGURATION;
    for (unsigned i = 0; result && i < groups; i++) {
        memset(&result[i], 0, sizeof result[i]);
        result[i].type = CU_DEV_RESOURCE_TYPE_SM;
        result[i].sm.smCount = min_count;
    }
    if (rest) {
        memset(rest, 0, sizeof *rest);
        rest->type = CU_DEV_RESOURCE_TYPE_SM;
        rest->sm.smCount = in->sm.smCount - groups * min_count;
    }
    *n = groups;
    return CUDA_SUCCESS;
}
CUresult emu_generate_desc(CUdevResourceDesc *d, CUdevResource *r, unsigned n) {
    if (!d || !r || n != 1) return CUDA_ERROR_INVALID_VALUE;
    *d = (CUdevResourceDesc)r; // only read by emu_green_create, within the caller's frame
    return CUDA_SUCCESS;
}
CUresult emu_green_create(CUgreenCtx *g, CUdevResourceDesc d, CUdevice dev, unsigned) {
    if (!d || dev != 0) return CUDA_ERROR_INVALID_VALUE;
    *g = (CUgreenCtx)malloc(1);
    return CUDA_SUCCESS;
}
CUresult emu_green_destroy(CUgreenCtx g) {
    free((void *)g);
    return CUDA_SUCCESS;
}
CUresult emu_green_stream(CUstream *s, CUgreenCtx g, unsigned flags, int) {
    if (!g || flags != CU_STREAM_NON_BLOCKING) return CUDA_ERROR_INVALID_VALUE;
    cudaStream_t rs = nullptr;
    cudaStreamCreateWithFlags(&rs, cudaStreamNonBlocking);
    std::lock_guard<std::mutex> lock(g_sync_mu);
    g_green_streams++;
    *s = (CUstream)rs;
    return CUDA_SUCCESS;
}
CUresult emu_stream_destroy(CUstream s) {
    return cudaStreamDestroy((cudaStream_t)s) == cudaSuccess ? CUDA_SUCCESS
                                                             : CUDA_ERROR_INVALID_HANDLE;
}
void *dc_emu_green_entry(const char *name) {
    static const struct {
        const char *name;
        void *fn;
    } calls[] = {{"cuDeviceGetDevResource", (void *)emu_get_resource},
                 {"cuDevSmResourceSplitByCount", (void *)emu_split},
                 {"cuDevResourceGenerateDesc", (void *)emu_generate_desc},
                 {"cuGreenCtxCreate", (void *)emu_green_create},
                 {"cuGreenCtxDestroy", (void *)emu_green_destroy},
                 {"cuGreenCtxStreamCreate", (void *)emu_green_stream},
                 {"cuStreamDestroy", (void *)emu_stream_destroy}};
    for (const auto &c : calls)
        if (!strcmp(c.name, name)) return c.fn;
    return nullptr;
}
} // namespace

// For tests (dlsym): event records and stream waits so far, and streams made on green contexts.
extern "C" __attribute__((visibility("default"))) void
dc_cuda_emu_counters(uint64_t *records, uint64_t *waits, uint64_t *green_streams) {
    std::lock_guard<std::mutex> lock(g_sync_mu);
    *records = g_records;
    *waits = g_waits;
    *green_streams = g_green_streams;
}

// For tests (dlsym): graph launches so far, and executable graphs alive.
extern "C" __attribute__((visibility("default"))) void
dc_cuda_emu_graph_counters(uint64_t *launches, uint64_t *live) {
    std::lock_guard<std::mutex> lock(g_sync_mu);
    *launches = g_graph_launches;
    *live = g_execs.size();
}

void dc_emu_launch_on(cudaStream_t stream, dim3 grid, dim3 block, size_t smem,
                      const std::function<void()> &body) {
    if (!captured(stream, [=]() { dc_emu_launch(grid, block, smem, body); }))
        dc_emu_launch(grid, block, smem, body);
}

// Device or pinned memory (mapped into the device's address space on a GPU), a pointer one past
// a block's end included (an empty range). DC_CUDA_EMU_GUARD=0 turns the check off.
bool dc_emu_kernel_may_use(const void *p) {
    static const bool off = [] {
        const char *env = getenv("DC_CUDA_EMU_GUARD");
        return env && strcmp(env, "0") == 0;
    }();
    if (off) return true;
    std::lock_guard<std::mutex> lock(g_mem_mu);
    return in_blocks(g_dev, p, true) || in_blocks(g_pinned, p, true);
}

void dc_emu_bad_kernel_field(const char *kernel, const char *field, const void *p) {
    fprintf(stderr,
            "cuda_emu: kernel %s, %s: %p is host memory, not device memory (on a GPU: an "
            "illegal address fault). DC_CUDA_EMU_GUARD=0 disables this check; the stack:\n",
            kernel, field, p);
    void *frames[48];
    backtrace_symbols_fd(frames, backtrace(frames, 48), 2);
    abort();
}

void dc_emu_bad_kernel_arg(const char *kernel, int index, const void *p) {
    char field[32];
    snprintf(field, sizeof field, "argument %d", index);
    dc_emu_bad_kernel_field(kernel, field, p);
}

// Dynamic shared memory: 48 KiB per block unless the kernel was allowed more, up to Hopper's
// 227 KiB opt-in limit.
namespace {
constexpr int kSmemDefault = 48 << 10, kSmemOptin = 227 << 10;
std::mutex g_func_mu;
std::map<const void *, int> g_func_smem; // kernel → its MaxDynamicSharedMemorySize
} // namespace

bool dc_emu_smem_ok(const void *kernel, size_t smem) {
    if (smem <= (size_t)kSmemDefault) return true;
    std::lock_guard<std::mutex> lock(g_func_mu);
    auto it = g_func_smem.find(kernel);
    if (it != g_func_smem.end() && smem <= (size_t)it->second) return true;
    set_last(cudaErrorInvalidValue);
    return false;
}

extern "C" {

cudaError_t cudaFuncSetAttribute(const void *func, cudaFuncAttribute attr, int value) {
    if (!func) return set_last(cudaErrorInvalidDeviceFunction);
    if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize) return cudaSuccess; // no effect here
    if (value < 0 || value > kSmemOptin) return set_last(cudaErrorInvalidValue);
    std::lock_guard<std::mutex> lock(g_func_mu);
    g_func_smem[func] = value;
    return cudaSuccess;
}

cudaError_t cudaMalloc(void **p, size_t bytes) {
    if (!alloc_allowed_during_capture(false)) return set_last(cudaErrorStreamCaptureUnsupported);
    void *m = arena_alloc(bytes);
    if (!m) return set_last(cudaErrorMemoryAllocation);
    {
        DeviceAccess device;
        memset(m, 0xA5, bytes); // uninitialised device memory is not zero
    }
    std::lock_guard<std::mutex> lock(g_mem_mu);
    g_dev[(uintptr_t)m] = bytes;
    *p = m;
    return cudaSuccess;
}
cudaError_t cudaFree(void *p) {
    if (!p) return cudaSuccess;
    if (!alloc_allowed_during_capture(true)) return set_last(cudaErrorStreamCaptureUnsupported);
    size_t bytes = 0;
    {
        std::lock_guard<std::mutex> lock(g_mem_mu);
        auto it = g_dev.find((uintptr_t)p);
        if (it == g_dev.end()) return set_last(cudaErrorInvalidValue);
        bytes = it->second;
        g_dev.erase(it);
    }
    arena_free(p, bytes);
    return cudaSuccess;
}
cudaError_t cudaMallocHost(void **p, size_t bytes) {
    *p = malloc(bytes ? bytes : 1);
    if (!*p) return set_last(cudaErrorMemoryAllocation);
    std::lock_guard<std::mutex> lock(g_mem_mu);
    g_pinned[(uintptr_t)*p] = bytes;
    return cudaSuccess;
}
cudaError_t cudaFreeHost(void *p) {
    if (!p) return cudaSuccess;
    {
        std::lock_guard<std::mutex> lock(g_mem_mu);
        auto it = g_pinned.find((uintptr_t)p);
        if (it == g_pinned.end()) return set_last(cudaErrorInvalidValue);
        g_pinned.erase(it);
    }
    free(p);
    return cudaSuccess;
}
cudaError_t cudaMemcpy(void *d, const void *s, size_t n, cudaMemcpyKind) {
    DeviceAccess device;
    if (n) memmove(d, s, n);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind k, cudaStream_t st) {
    {
        std::lock_guard<std::mutex> lock(g_sync_mu);
        EmuCapture *c = capture_of(st);
        if (c) {
            // a GPU captures copies between device or pinned memory only
            const bool pageable = (!is_dev(d) && !is_pinned(d)) || (!is_dev(s) && !is_pinned(s));
            if (pageable) {
                invalidate(c, "a copy from or to pageable memory");
                return set_last(cudaErrorStreamCaptureUnsupported);
            }
            c->work.push_back([=]() { cudaMemcpy(d, s, n, k); });
            return cudaSuccess;
        }
    }
    return cudaMemcpy(d, s, n, k);
}
cudaError_t cudaMemsetAsync(void *d, int v, size_t n, cudaStream_t st) {
    auto run = [=]() {
        DeviceAccess device;
        memset(d, v, n);
    };
    if (!captured(st, run)) run();
    return cudaSuccess;
}
// Streams and events. Work runs when it is enqueued, so every ordering the backend asks for
// holds already; what is modelled is the bookkeeping: handles must be live (recording on, or
// waiting with, a destroyed stream or event aborts), and the records and waits are counted
// (dc_cuda_emu_counters) so a test can see that a block changing streams made its new stream
// wait — the order that matters on a GPU, where streams run concurrently.
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned) {
    *s = (cudaStream_t)malloc(1);
    std::lock_guard<std::mutex> lock(g_sync_mu);
    g_streams.insert((const void *)*s);
    return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
    {
        std::lock_guard<std::mutex> lock(g_sync_mu);
        if (!g_streams.erase((const void *)s)) dc_emu_bad_handle("cudaStreamDestroy", "stream", s);
    }
    free((void *)s);
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    std::lock_guard<std::mutex> lock(g_sync_mu);
    if (s && !g_streams.count((const void *)s))
        dc_emu_bad_handle("cudaStreamSynchronize", "stream", s);
    if (EmuCapture *c = capture_of(s)) {
        invalidate(c, "cudaStreamSynchronize of the capturing stream");
        return set_last(cudaErrorStreamCaptureUnsupported);
    }
    return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned) {
    *e = (cudaEvent_t)malloc(1);
    std::lock_guard<std::mutex> lock(g_sync_mu);
    g_events.insert((const void *)*e);
    return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
    {
        std::lock_guard<std::mutex> lock(g_sync_mu);
        if (!g_events.erase((const void *)e)) dc_emu_bad_handle("cudaEventDestroy", "event", e);
    }
    free((void *)e);
    return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
    std::lock_guard<std::mutex> lock(g_sync_mu);
    if (!g_events.count((const void *)e)) dc_emu_bad_handle("cudaEventRecord", "event", e);
    if (s && !g_streams.count((const void *)s)) dc_emu_bad_handle("cudaEventRecord", "stream", s);
    g_records++;
    if (capture_of(s)) g_captured_events.insert((const void *)e);
    else g_captured_events.erase((const void *)e);
    return cudaSuccess;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned) {
    std::lock_guard<std::mutex> lock(g_sync_mu);
    if (!g_events.count((const void *)e)) dc_emu_bad_handle("cudaStreamWaitEvent", "event", e);
    if (s && !g_streams.count((const void *)s))
        dc_emu_bad_handle("cudaStreamWaitEvent", "stream", s);
    g_waits++;
    const bool in_capture = g_captured_events.count((const void *)e) != 0;
    EmuCapture *c = capture_of(s);
    if (c && !in_capture) {
        invalidate(c, "a wait on an event recorded outside the capture");
        return set_last(cudaErrorStreamCaptureIsolation);
    }
    if (!c && in_capture) return set_last(cudaErrorCapturedEvent);
    return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
    std::lock_guard<std::mutex> lock(g_sync_mu);
    if (!g_events.count((const void *)e)) dc_emu_bad_handle("cudaEventSynchronize", "event", e);
    if (g_captured_events.count((const void *)e)) return set_last(cudaErrorCapturedEvent);
    return cudaSuccess;
}
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode) {
    std::lock_guard<std::mutex> lock(g_sync_mu);
    if (!s || !g_streams.count((const void *)s)) // the legacy stream cannot be captured
        return set_last(cudaErrorStreamCaptureUnsupported);
    if (capture_of(s)) return set_last(cudaErrorIllegalState);
    g_capture[(const void *)s].mode = mode;
    g_capture[(const void *)s].thread = std::this_thread::get_id();
    return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *graph) {
    *graph = nullptr;
    std::lock_guard<std::mutex> lock(g_sync_mu);
    EmuCapture *c = capture_of(s);
    if (!c) return set_last(cudaErrorIllegalState);
    const bool invalid = c->invalid != nullptr;
    if (invalid && getenv("DC_CUDA_EMU_VERBOSE"))
        fprintf(stderr, "cuda_emu: capture invalidated: %s\n", c->invalid);
    EmuGraph *g = invalid ? nullptr : new EmuGraph{std::move(c->work)};
    g_capture.erase((const void *)s);
    if (invalid) return set_last(cudaErrorStreamCaptureInvalidated);
    g_graphs.insert(g);
    *graph = (cudaGraph_t)g;
    return cudaSuccess;
}
cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus *st) {
    std::lock_guard<std::mutex> lock(g_sync_mu);
    EmuCapture *c = capture_of(s);
    *st = !c ? cudaStreamCaptureStatusNone
             : c->invalid ? cudaStreamCaptureStatusInvalidated : cudaStreamCaptureStatusActive;
    return cudaSuccess;
}
cudaError_t cudaGraphGetNodes(cudaGraph_t graph, cudaGraphNode_t *nodes, size_t *n) {
    std::lock_guard<std::mutex> lock(g_sync_mu);
    const EmuGraph *g = (const EmuGraph *)graph;
    if (!g_graphs.count(g)) dc_emu_bad_handle("cudaGraphGetNodes", "graph", g);
    if (nodes) return set_last(cudaErrorNotSupported); // counting only
    *n = g->work.size();
    return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long) {
    std::lock_guard<std::mutex> lock(g_sync_mu);
    const EmuGraph *g = (const EmuGraph *)graph;
    if (!g_graphs.count(g)) dc_emu_bad_handle("cudaGraphInstantiate", "graph", g);
    EmuGraph *x = new EmuGraph{g->work};
    g_execs.insert(x);
    *exec = (cudaGraphExec_t)x;
    return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s) {
    const EmuGraph *x = (const EmuGraph *)exec;
    {
        std::lock_guard<std::mutex> lock(g_sync_mu);
        if (!g_execs.count(x)) dc_emu_bad_handle("cudaGraphLaunch", "executable graph", x);
        if (s && !g_streams.count((const void *)s)) dc_emu_bad_handle("cudaGraphLaunch", "stream", s);
        g_graph_launches++;
        if (EmuCapture *c = capture_of(s)) {
            c->work.push_back([x]() {
                for (const auto &w : x->work) w();
            });
            return cudaSuccess;
        }
    }
    for (const auto &w : x->work) w();
    return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
    std::lock_guard<std::mutex> lock(g_sync_mu);
    const EmuGraph *x = (const EmuGraph *)exec;
    if (!g_execs.erase(x)) dc_emu_bad_handle("cudaGraphExecDestroy", "executable graph", x);
    delete x;
    return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
    std::lock_guard<std::mutex> lock(g_sync_mu);
    const EmuGraph *g = (const EmuGraph *)graph;
    if (!g_graphs.erase(g)) dc_emu_bad_handle("cudaGraphDestroy", "graph", g);
    delete g;
    return cudaSuccess;
}
cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : set_last(cudaErrorInvalidDevice); }
cudaError_t cudaGetDevice(int *d) {
    *d = 0;
    return cudaSuccess;
}
cudaError_t cudaGetDeviceCount(int *n) {
    *n = 1;
    return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int *v) {
    *v = 13000;
    return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int *v) {
    *v = 13000;
    return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d) {
    if (d != 0) return set_last(cudaErrorInvalidDevice);
    memset(p, 0, sizeof *p);
    strcpy(p->name, "dodeca CPU emulation");
    p->major = emu_cc() / 10; // 9.0 by default: the FP8 path runs, FP4 is dequantised to bf16
    p->minor = emu_cc() % 10;
    p->multiProcessorCount = kSms;
    p->totalGlobalMem = (size_t)8 << 30;
    return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t *fr, size_t *tot) {
    *fr = *tot = (size_t)8 << 30;
    return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr a, int) {
    *v = a == cudaDevAttrMultiProcessorCount ? kSms : 0;
    return cudaSuccess;
}
cudaError_t cudaPointerGetAttributes(cudaPointerAttributes *at, const void *p) {
    memset(at, 0, sizeof *at);
    at->type = is_dev(p) ? cudaMemoryTypeDevice
               : is_pinned(p) ? cudaMemoryTypeHost
                              : cudaMemoryTypeUnregistered;
    return cudaSuccess;
}
cudaError_t cudaGetLastError(void) {
    cudaError_t e = g_last;
    g_last = cudaSuccess;
    return e;
}
const char *cudaGetErrorString(cudaError_t e) { return e ? "emulated error" : "no error"; }
const char *cudaGetErrorName(cudaError_t e) { return e ? "cudaErrorEmulated" : "cudaSuccess"; }
cudaError_t cudaGetDriverEntryPointByVersion(const char *name, void **fn, unsigned,
                                             unsigned long long,
                                             cudaDriverEntryPointQueryResult *q) {
    // no driver API (green contexts take their fallback) unless DC_CUDA_EMU_GREEN=1 asks for
    // the green-context calls below
    *fn = getenv("DC_CUDA_EMU_GREEN") && !strcmp(getenv("DC_CUDA_EMU_GREEN"), "1")
              ? dc_emu_green_entry(name)
              : nullptr;
    if (q) *q = *fn ? cudaDriverEntryPointSuccess : cudaDriverEntryPointSymbolNotFound;
    return cudaSuccess;
}

// ---- cuBLAS ----

// Live handles, oldest first, with the workspace each was given (cublasSetWorkspace; nullptr:
// cuBLAS's own, which cublasSetStream returns to, as cuBLAS documents). A test reads them
// (dc_cuda_emu_blas_workspaces) to see that a handle works in memory the backend gave it.
struct EmuBlas {
    const void *h;
    void *ws;
    size_t bytes;
    cudaStream_t stream;
};
static std::mutex g_blas_mu;
static std::vector<EmuBlas> g_blas;

static EmuBlas *find_blas(cublasHandle_t h) { // g_blas_mu held
    for (auto &b : g_blas)
        if (b.h == (const void *)h) return &b;
    return nullptr;
}

cublasStatus_t cublasCreate_v2(cublasHandle_t *h) {
    *h = (cublasHandle_t)malloc(1);
    std::lock_guard<std::mutex> lock(g_blas_mu);
    g_blas.push_back({(const void *)*h, nullptr, 0, nullptr});
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy_v2(cublasHandle_t h) {
    {
        std::lock_guard<std::mutex> lock(g_blas_mu);
        EmuBlas *b = find_blas(h);
        if (!b) dc_emu_bad_handle("cublasDestroy", "cuBLAS handle", h);
        g_blas.erase(g_blas.begin() + (b - g_blas.data()));
    }
    free((void *)h);
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream_v2(cublasHandle_t h, cudaStream_t s) {
    std::lock_guard<std::mutex> lock(g_blas_mu);
    EmuBlas *b = find_blas(h);
    if (!b) return CUBLAS_STATUS_NOT_INITIALIZED;
    b->stream = s;
    b->ws = nullptr; // back to cuBLAS's own workspace
    b->bytes = 0;
    return CUBLAS_STATUS_SUCCESS;
}
// The documented requirement (256-byte alignment), and one the emulation adds: the range must
// be one live device allocation (on a GPU a bad range shows only later, as a fault).
cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t h, void *ws, size_t bytes) {
    if (bytes && (!ws || (uintptr_t)ws % 256)) return CUBLAS_STATUS_INVALID_VALUE;
    if (bytes) {
        std::lock_guard<std::mutex> lock(g_mem_mu);
        auto it = g_dev.upper_bound((uintptr_t)ws);
        if (it == g_dev.begin()) return CUBLAS_STATUS_INVALID_VALUE;
        --it;
        if ((uintptr_t)ws - it->first + bytes > it->second) return CUBLAS_STATUS_INVALID_VALUE;
    }
    std::lock_guard<std::mutex> lock(g_blas_mu);
    EmuBlas *b = find_blas(h);
    if (!b) return CUBLAS_STATUS_NOT_INITIALIZED;
    b->ws = bytes ? ws : nullptr;
    b->bytes = bytes;
    return CUBLAS_STATUS_SUCCESS;
}

static double load(const void *p, cudaDataType_t t, size_t i) {
    switch (t) {
    case CUDA_R_32F: return ((const float *)p)[i];
    case CUDA_R_16BF: return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    case CUDA_R_16F: return __half2float(((const __half *)p)[i]);
    default: return NAN;
    }
}
static void store(void *p, cudaDataType_t t, size_t i, double v) {
    switch (t) {
    case CUDA_R_32F: ((float *)p)[i] = (float)v; break;
    case CUDA_R_16BF: ((__nv_bfloat16 *)p)[i] = __float2bfloat16_rn((float)v); break;
    case CUDA_R_16F: ((__half *)p)[i] = __float2half_rn((float)v); break;
    default: break;
    }
}

// C = α·op(A)·op(B) + β·C, column-major, the BLAS definition.
static cublasStatus_t gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           float alpha, const void *A, cudaDataType_t at, int lda, const void *B,
                           cudaDataType_t bt, int ldb, float beta, void *C, cudaDataType_t ct,
                           int ldc) {
    if (m < 0 || n < 0 || k < 0 || ldc < (m ? m : 1) ||
        lda < (ta == CUBLAS_OP_N ? (m ? m : 1) : (k ? k : 1)) ||
        ldb < (tb == CUBLAS_OP_N ? (k ? k : 1) : (n ? n : 1)))
        return CUBLAS_STATUS_INVALID_VALUE;
    if (!is_dev(A) || !is_dev(B) || !is_dev(C)) return CUBLAS_STATUS_INVALID_VALUE;
    DeviceAccess device;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            double acc = 0;
            for (int l = 0; l < k; l++) {
                double a = load(A, at, ta == CUBLAS_OP_N ? (size_t)i + (size_t)l * lda : (size_t)l + (size_t)i * lda);
                double b = load(B, bt, tb == CUBLAS_OP_N ? (size_t)l + (size_t)j * ldb : (size_t)j + (size_t)l * ldb);
                acc += a * b;
            }
            size_t ci = (size_t)i + (size_t)j * ldc;
            store(C, ct, ci, alpha * acc + (beta != 0 ? beta * load(C, ct, ci) : 0.0));
        }
    return CUBLAS_STATUS_SUCCESS;
}

// The type combinations cuBLAS documents for cublasGemmEx, of those the emulation computes
// (f32 scale; real f32/bf16/f16 data): A and B of one type; COMPUTE_32F takes f32 → f32 and
// bf16/f16 → the same type or f32; the FAST_* compute types take f32 → f32 only. The rest
// (16F compute with half scalars, int8, f64, complex) answer NOT_SUPPORTED here.
static bool gemm_ex_takes(cublasComputeType_t comp, cudaDataType_t at, cudaDataType_t bt,
                          cudaDataType_t ct) {
    if (at != bt) return false;
    switch (comp) {
    case CUBLAS_COMPUTE_32F:
    case CUBLAS_COMPUTE_32F_PEDANTIC:
        if (at == CUDA_R_32F) return ct == CUDA_R_32F;
        if (at == CUDA_R_16BF || at == CUDA_R_16F) return ct == at || ct == CUDA_R_32F;
        return false;
    case CUBLAS_COMPUTE_32F_FAST_TF32:
    case CUBLAS_COMPUTE_32F_FAST_16F:
    case CUBLAS_COMPUTE_32F_FAST_16BF: return at == CUDA_R_32F && ct == CUDA_R_32F;
    default: return false;
    }
}

// cublasGemmGroupedBatchedEx's documented table is narrower: C has the inputs' type
// (COMPUTE_32F: f32, bf16, f16; FAST_TF32: f32). A mixed pair answers NOT_SUPPORTED, as a
// combination the library does not take.
static bool gemm_grouped_takes(cublasComputeType_t comp, cudaDataType_t at, cudaDataType_t bt,
                               cudaDataType_t ct) {
    if (at != bt || ct != at) return false;
    if (comp == CUBLAS_COMPUTE_32F)
        return at == CUDA_R_32F || at == CUDA_R_16BF || at == CUDA_R_16F;
    return comp == CUBLAS_COMPUTE_32F_FAST_TF32 && at == CUDA_R_32F;
}

// A GEMM on handle h: run now, or kept in the capture of the handle's stream (which needs the
// handle to have its own workspace: cuBLAS cannot allocate one inside a capture). The host
// scalars are read now, as cuBLAS reads them when it is called.
static cublasStatus_t blas_enqueue(cublasHandle_t h, const std::function<cublasStatus_t()> &fn) {
    cudaStream_t s = nullptr;
    bool own_ws = false;
    {
        std::lock_guard<std::mutex> lock(g_blas_mu);
        EmuBlas *b = find_blas(h);
        if (!b) return CUBLAS_STATUS_NOT_INITIALIZED;
        s = b->stream;
        own_ws = b->ws != nullptr;
    }
    {
        std::lock_guard<std::mutex> lock(g_sync_mu);
        if (EmuCapture *c = capture_of(s)) {
            if (!own_ws) {
                invalidate(c, "a cuBLAS call on a handle without its own workspace");
                return CUBLAS_STATUS_NOT_SUPPORTED;
            }
            c->work.push_back([fn]() {
                cublasStatus_t st = fn();
                if (st != CUBLAS_STATUS_SUCCESS) replay_failed("cuBLAS GEMM", (int)st);
            });
            return CUBLAS_STATUS_SUCCESS;
        }
    }
    return fn();
}

cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                            int n, int k, const void *alpha, const void *A, cudaDataType_t at,
                            int lda, const void *B, cudaDataType_t bt, int ldb, const void *beta,
                            void *C, cudaDataType_t ct, int ldc, cublasComputeType_t comp,
                            cublasGemmAlgo_t) {
    if (!gemm_ex_takes(comp, at, bt, ct)) return CUBLAS_STATUS_NOT_SUPPORTED;
    const float al = *(const float *)alpha, be = *(const float *)beta;
    return blas_enqueue(h, [=]() {
        return gemm(ta, tb, m, n, k, al, A, at, lda, B, bt, ldb, be, C, ct, ldc);
    });
}

cublasStatus_t cublasGemmGroupedBatchedEx(cublasHandle_t h, const cublasOperation_t ta[],
                                          const cublasOperation_t tb[], const int m[], const int n[],
                                          const int k[], const void *alpha, const void *const A[],
                                          cudaDataType_t at, const int lda[], const void *const B[],
                                          cudaDataType_t bt, const int ldb[], const void *beta,
                                          void *const C[], cudaDataType_t ct, const int ldc[],
                                          int groups, const int size[], cublasComputeType_t comp) {
    if (!gemm_grouped_takes(comp, at, bt, ct)) return CUBLAS_STATUS_NOT_SUPPORTED;
    if (!is_dev(A) || !is_dev(B) || !is_dev(C)) return CUBLAS_STATUS_INVALID_VALUE; // device arrays
    // the host arrays as they are now (a capture keeps them); A, B, C are read when it runs
    const size_t g = groups > 0 ? (size_t)groups : 0;
    using iv = std::vector<int>;
    using ov = std::vector<cublasOperation_t>;
    using fv = std::vector<float>;
    const ov vta(ta, ta + g), vtb(tb, tb + g);
    const iv vm(m, m + g), vn(n, n + g), vk(k, k + g), vlda(lda, lda + g), vldb(ldb, ldb + g),
        vldc(ldc, ldc + g), vsize(size, size + g);
    const fv val((const float *)alpha, (const float *)alpha + g),
        vbe((const float *)beta, (const float *)beta + g);
    return blas_enqueue(h, [=]() {
        DeviceAccess device; // the pointer arrays are read here, each gemm opens it again
        size_t p = 0;
        for (size_t q = 0; q < g; q++)
            for (int s = 0; s < vsize[q]; s++, p++) {
                cublasStatus_t st = gemm(vta[q], vtb[q], vm[q], vn[q], vk[q], val[q], A[p], at,
                                         vlda[q], B[p], bt, vldb[q], vbe[q], C[p], ct, vldc[q]);
                if (st != CUBLAS_STATUS_SUCCESS) return st;
            }
        return CUBLAS_STATUS_SUCCESS;
    });
}

// cuBLASLt: what the FP8 linear uses. Descriptors keep the attributes; the heuristic accepts
// what Hopper accepts for FP8 (E4M3 × E4M3, f32 C/D, the "TN" layout, 16-element alignment);
// the matmul decodes E4M3 and applies D = α·scale_A·scale_B·op(A)·op(B) + β·C.
struct EmuDesc {
    cublasOperation_t ta = CUBLAS_OP_N, tb = CUBLAS_OP_N;
    const float *a_scale = nullptr, *b_scale = nullptr; // FP4: the block scales (bytes)
    int32_t a_mode = CUBLASLT_MATMUL_MATRIX_SCALE_SCALAR_32F, b_mode = a_mode;
};
struct EmuLayout {
    cudaDataType type;
    uint64_t rows, cols;
    int64_t ld;
};

cublasStatus_t cublasLtCreate(cublasLtHandle_t *h) {
    *h = (cublasLtHandle_t)malloc(1);
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtDestroy(cublasLtHandle_t h) {
    free((void *)h);
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *d, cublasComputeType_t ct, cudaDataType_t st) {
    if (ct != CUBLAS_COMPUTE_32F || st != CUDA_R_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
    *d = (cublasLtMatmulDesc_t) new EmuDesc();
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d) {
    delete (EmuDesc *)d;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t a,
                                              const void *v, size_t n) {
    EmuDesc *e = (EmuDesc *)d;
    switch (a) {
    case CUBLASLT_MATMUL_DESC_TRANSA:
        if (n != sizeof e->ta) return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&e->ta, v, n);
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_TRANSB:
        if (n != sizeof e->tb) return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&e->tb, v, n);
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_A_SCALE_POINTER:
        if (n != sizeof e->a_scale) return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&e->a_scale, v, n);
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_B_SCALE_POINTER:
        if (n != sizeof e->b_scale) return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&e->b_scale, v, n);
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_A_SCALE_MODE: // int32_t, as the header documents
        if (n != sizeof e->a_mode) return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&e->a_mode, v, n);
        return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_DESC_B_SCALE_MODE:
        if (n != sizeof e->b_mode) return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&e->b_mode, v, n);
        return CUBLAS_STATUS_SUCCESS;
    default: return CUBLAS_STATUS_NOT_SUPPORTED;
    }
}
cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *l, cudaDataType t, uint64_t rows,
                                          uint64_t cols, int64_t ld) {
    if (ld < (int64_t)rows) return CUBLAS_STATUS_INVALID_VALUE;
    *l = (cublasLtMatrixLayout_t) new EmuLayout{t, rows, cols, ld};
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l) {
    delete (EmuLayout *)l;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *p) {
    *p = (cublasLtMatmulPreference_t)malloc(1);
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p) {
    free((void *)p);
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t,
                                                    cublasLtMatmulPreferenceAttributes_t,
                                                    const void *, size_t) {
    return CUBLAS_STATUS_SUCCESS;
}

// op(A) is m×k, op(B) k×n, C/D m×n (column-major).
static bool fp8_shape(const EmuDesc *d, const EmuLayout *a, const EmuLayout *b, const EmuLayout *c,
                      uint64_t *m, uint64_t *n, uint64_t *k) {
    *m = d->ta == CUBLAS_OP_N ? a->rows : a->cols;
    *k = d->ta == CUBLAS_OP_N ? a->cols : a->rows;
    uint64_t kb = d->tb == CUBLAS_OP_N ? b->rows : b->cols;
    *n = d->tb == CUBLAS_OP_N ? b->cols : b->rows;
    return kb == *k && c->rows == *m && c->cols == *n;
}

static bool fp4_takes(const EmuDesc *d, const EmuLayout *a, const EmuLayout *b, const EmuLayout *c,
                      const EmuLayout *dd); // below, with the FP4 matmul

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t, cublasLtMatmulDesc_t op,
                                              cublasLtMatrixLayout_t la, cublasLtMatrixLayout_t lb,
                                              cublasLtMatrixLayout_t lc, cublasLtMatrixLayout_t ld,
                                              cublasLtMatmulPreference_t, int want,
                                              cublasLtMatmulHeuristicResult_t res[], int *found) {
    const EmuDesc *d = (const EmuDesc *)op;
    const EmuLayout *a = (const EmuLayout *)la, *b = (const EmuLayout *)lb, *c = (const EmuLayout *)lc,
                    *dd = (const EmuLayout *)ld;
    uint64_t m, n, k;
    *found = 0;
    bool ok = want >= 1 && a->type == CUDA_R_8F_E4M3 && b->type == CUDA_R_8F_E4M3 &&
              d->a_mode == CUBLASLT_MATMUL_MATRIX_SCALE_SCALAR_32F &&
              d->b_mode == CUBLASLT_MATMUL_MATRIX_SCALE_SCALAR_32F &&
              c->type == CUDA_R_32F && dd->type == CUDA_R_32F && d->ta == CUBLAS_OP_T &&
              d->tb == CUBLAS_OP_N && a->ld % 16 == 0 && b->ld % 16 == 0 && c->ld % 4 == 0 &&
              fp8_shape(d, a, b, c, &m, &n, &k);
    ok = ok || (want >= 1 && fp4_takes(d, a, b, c, dd));
    if (!ok) return CUBLAS_STATUS_NOT_SUPPORTED;
    memset(&res[0], 0, sizeof res[0]);
    *found = 1;
    return CUBLAS_STATUS_SUCCESS;
}

static double e4m3(uint8_t c) {
    return __half2float(__half(__nv_cvt_fp8_to_halfraw((__nv_fp8_storage_t)c, __NV_E4M3)));
}

// ---- block-scaled FP4 (cuBLASLt on compute capability 10.0+) ----
//
// A and B are CUDA_R_4F_E2M1 (two per byte, the lower index in the low nibble; ld in elements),
// with VEC16_UE4M3 (NVFP4) or VEC32_UE8M0 (MXFP4) scales for both, one per block of 16 / 32
// elements along k, in the documented tiled layout: the (outer dim × k blocks) scale matrix is
// padded to 128 × 4 and cut into 512-byte tiles of 128 × 4, the k tiles of a tile row
// adjacent; inside a tile, outer index r and block column c sit at (r % 32)·16 + (r / 32)·4 + c.
// D = α·Σ_l (a_l·sA)(b_l·sB) + β·C in double; only "TN" with f32 C and D is offered, as for FP8.

static size_t fp4_sf_offset(uint64_t outer, uint64_t kb, uint64_t k_blocks) {
    const uint64_t kb_tiles = (k_blocks + 3) / 4;
    return (size_t)((outer / 128) * kb_tiles * 512 + (kb / 4) * 512 + (outer % 32) * 16 +
                    ((outer % 128) / 32) * 4 + kb % 4);
}

static double e2m1(unsigned nibble) {
    static const double v[8] = {0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0};
    return nibble & 8 ? -v[nibble & 7] : v[nibble & 7];
}

static bool fp4_takes(const EmuDesc *d, const EmuLayout *a, const EmuLayout *b, const EmuLayout *c,
                      const EmuLayout *dd) {
    uint64_t m, n, k;
    const bool nv = d->a_mode == CUBLASLT_MATMUL_MATRIX_SCALE_VEC16_UE4M3 &&
                    d->b_mode == CUBLASLT_MATMUL_MATRIX_SCALE_VEC16_UE4M3;
    const bool mx = d->a_mode == CUBLASLT_MATMUL_MATRIX_SCALE_VEC32_UE8M0 &&
                    d->b_mode == CUBLASLT_MATMUL_MATRIX_SCALE_VEC32_UE8M0;
    return emu_cc() >= 100 && a->type == CUDA_R_4F_E2M1 && b->type == CUDA_R_4F_E2M1 &&
           (nv || mx) && c->type == CUDA_R_32F && dd->type == CUDA_R_32F &&
           d->ta == CUBLAS_OP_T && d->tb == CUBLAS_OP_N && a->ld % 32 == 0 && b->ld % 32 == 0 &&
           c->ld % 4 == 0 && fp8_shape(d, a, b, c, &m, &n, &k) && k % (nv ? 16 : 32) == 0;
}

static cublasStatus_t fp4_matmul(const EmuDesc *d, const float *alpha, const void *A,
                                 const EmuLayout *a, const void *B, const EmuLayout *b,
                                 const float *beta, const void *C, const EmuLayout *c, void *D,
                                 const EmuLayout *dl) {
    uint64_t m, n, k;
    if (!fp4_takes(d, a, b, c, dl)) return CUBLAS_STATUS_NOT_SUPPORTED;
    fp8_shape(d, a, b, c, &m, &n, &k);
    if (!d->a_scale || !d->b_scale || !is_dev(A) || !is_dev(B) || !is_dev(D) ||
        !is_dev(d->a_scale) || !is_dev(d->b_scale))
        return CUBLAS_STATUS_INVALID_VALUE;
    const void *aligned[] = {A, B, C, D, d->a_scale, d->b_scale};
    for (const void *p : aligned)
        if ((uintptr_t)p % 16) return CUBLAS_STATUS_NOT_SUPPORTED;
    DeviceAccess device;
    const bool nv = d->a_mode == CUBLASLT_MATMUL_MATRIX_SCALE_VEC16_UE4M3;
    const uint64_t blk = nv ? 16 : 32, k_blocks = k / blk;
    const uint8_t *pa = (const uint8_t *)A, *pb = (const uint8_t *)B;
    const uint8_t *sa = (const uint8_t *)d->a_scale, *sb = (const uint8_t *)d->b_scale;
    auto scale = [nv](uint8_t code) {
        return nv ? e4m3(code) : code == 0xFF ? NAN : ldexp(1.0, (int)code - 127);
    };
    auto elem = [](const uint8_t *p, uint64_t idx) { return e2m1((p[idx / 2] >> (idx % 2 * 4)) & 0xFu); };
    const double al = *alpha, be = *beta;
    for (uint64_t j = 0; j < n; j++)
        for (uint64_t i = 0; i < m; i++) {
            double acc = 0;
            for (uint64_t l = 0; l < k; l++) {
                // op(A) = Aᵀ: element (i, l) is A[l + i·lda]; op(B) = B: (l, j) is B[l + j·ldb]
                const double av = elem(pa, l + i * (uint64_t)a->ld) *
                                  scale(sa[fp4_sf_offset(i, l / blk, k_blocks)]);
                const double bv = elem(pb, l + j * (uint64_t)b->ld) *
                                  scale(sb[fp4_sf_offset(j, l / blk, k_blocks)]);
                acc += av * bv;
            }
            const double cv = be != 0 ? ((const float *)C)[i + j * c->ld] : 0.0;
            ((float *)D)[i + j * dl->ld] = (float)(al * acc + be * cv);
        }
    return CUBLAS_STATUS_SUCCESS;
}

static cublasStatus_t lt_matmul(const EmuDesc *d, const float *alpha, const void *A,
                                const EmuLayout *a, const void *B, const EmuLayout *b,
                                const float *beta, const void *C, const EmuLayout *c, void *D,
                                const EmuLayout *dl);

// Run now, or kept in the capture of `stream` with copies of the descriptors and scalars (the
// caller destroys its descriptors after the call; cuBLASLt has read them by then).
cublasStatus_t cublasLtMatmul(cublasLtHandle_t, cublasLtMatmulDesc_t op, const void *alpha,
                              const void *A, cublasLtMatrixLayout_t la, const void *B,
                              cublasLtMatrixLayout_t lb, const void *beta, const void *C,
                              cublasLtMatrixLayout_t lc, void *D, cublasLtMatrixLayout_t ld,
                              const cublasLtMatmulAlgo_t *, void *ws, size_t ws_bytes,
                              cudaStream_t stream) {
    // the workspace (the cuBLAS one, shared) must be device memory, as on a GPU
    if (ws_bytes && (!is_dev(ws) || !is_dev((const char *)ws + ws_bytes - 1)))
        return CUBLAS_STATUS_INVALID_VALUE;
    const EmuDesc d = *(const EmuDesc *)op;
    const EmuLayout a = *(const EmuLayout *)la, b = *(const EmuLayout *)lb,
                    c = *(const EmuLayout *)lc, dl = *(const EmuLayout *)ld;
    const float al = *(const float *)alpha, be = *(const float *)beta;
    auto run = [=]() { return lt_matmul(&d, &al, A, &a, B, &b, &be, C, &c, D, &dl); };
    if (captured(stream, [run]() {
            cublasStatus_t st = run();
            if (st != CUBLAS_STATUS_SUCCESS) replay_failed("cublasLtMatmul", (int)st);
        }))
        return CUBLAS_STATUS_SUCCESS;
    return run();
}

static cublasStatus_t lt_matmul(const EmuDesc *d, const float *alpha, const void *A,
                                const EmuLayout *a, const void *B, const EmuLayout *b,
                                const float *beta, const void *C, const EmuLayout *c, void *D,
                                const EmuLayout *dl) {
    uint64_t m, n, k;
    if (a->type == CUDA_R_4F_E2M1)
        return fp4_matmul(d, alpha, A, a, B, b, beta, C, c, D, dl);
    if (!fp8_shape(d, a, b, c, &m, &n, &k) || !is_dev(A) || !is_dev(B) || !is_dev(D) ||
        (d->a_scale && !is_dev(d->a_scale)) || (d->b_scale && !is_dev(d->b_scale)))
        return CUBLAS_STATUS_INVALID_VALUE;
    // FP8 wants 16-byte aligned matrices (documented) and scale pointers (an H200 with cuBLAS
    // 13.1 answered NOT_SUPPORTED at the matmul for a scale 4 bytes into a block)
    const void *aligned[] = {A, B, C, D, d->a_scale, d->b_scale};
    for (const void *p : aligned)
        if ((uintptr_t)p % 16) return CUBLAS_STATUS_NOT_SUPPORTED;
    DeviceAccess device;
    const double sa = d->a_scale ? *d->a_scale : 1.0, sb = d->b_scale ? *d->b_scale : 1.0;
    const double al = *alpha, be = *beta;
    const uint8_t *pa = (const uint8_t *)A, *pb = (const uint8_t *)B;
    for (uint64_t j = 0; j < n; j++)
        for (uint64_t i = 0; i < m; i++) {
            double acc = 0;
            for (uint64_t l = 0; l < k; l++) {
                uint64_t ia = d->ta == CUBLAS_OP_N ? i + l * a->ld : l + i * a->ld;
                uint64_t ib = d->tb == CUBLAS_OP_N ? l + j * b->ld : j + l * b->ld;
                acc += e4m3(pa[ia]) * e4m3(pb[ib]);
            }
            double cv = be != 0 ? ((const float *)C)[i + j * c->ld] : 0.0;
            ((float *)D)[i + j * dl->ld] = (float)(al * sa * sb * acc + be * cv);
        }
    return CUBLAS_STATUS_SUCCESS;
}

// For tests (dlsym): how many cuBLAS handles are live, and the workspaces (pointer, bytes; nullptr,
// 0 for cuBLAS's own) of the first `cap` of them, oldest first.
__attribute__((visibility("default"))) size_t dc_cuda_emu_blas_workspaces(const void **ws,
                                                                          size_t *bytes,
                                                                          size_t cap) {
    std::lock_guard<std::mutex> lock(g_blas_mu);
    for (size_t i = 0; i < cap && i < g_blas.size(); i++) {
        ws[i] = g_blas[i].ws;
        bytes[i] = g_blas[i].bytes;
    }
    return g_blas.size();
}
// For tests (dlsym): the size of the live cudaMalloc block that starts at p (0: none), and what
// is live (device blocks, their bytes, streams, events) to tell a leak.
__attribute__((visibility("default"))) size_t dc_cuda_emu_device_block(const void *p) {
    std::lock_guard<std::mutex> lock(g_mem_mu);
    auto it = g_dev.find((uintptr_t)p);
    return it == g_dev.end() ? 0 : it->second;
}
__attribute__((visibility("default"))) void dc_cuda_emu_live(uint64_t *blocks, uint64_t *bytes,
                                                             uint64_t *streams, uint64_t *events) {
    {
        std::lock_guard<std::mutex> lock(g_mem_mu);
        *blocks = g_dev.size();
        *bytes = 0;
        for (const auto &b : g_dev) *bytes += b.second;
    }
    std::lock_guard<std::mutex> lock(g_sync_mu);
    *streams = g_streams.size();
    *events = g_events.size();
}

// For tests/gpu/emu/test_guard.c (found with dlsym): how the guard works ("off", "process",
// "thread"; "unset" before the first cudaMalloc), and a way to hold device memory open in the
// calling thread as an emulated call does (open = 1) and to close it again (open = 0).
__attribute__((visibility("default"))) const char *dc_cuda_emu_guard_mode(void) {
    std::lock_guard<std::mutex> lock(g_arena_mu);
    if (!g_arena) return "unset";
    return g_mode == kGuardThread ? "thread" : g_mode == kGuardProcess ? "process" : "off";
}
__attribute__((visibility("default"))) void dc_cuda_emu_hold(int open) {
    if (open) device_enter();
    else device_leave();
}

} // extern "C"
