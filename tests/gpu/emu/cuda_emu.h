// A CPU stand-in for the CUDA execution model, enough for the kernels of src/gpu: each block
// runs its threads as fibers in one OS thread (round robin), __syncthreads is a fiber barrier,
// warp shuffles exchange through a per-block table between two barriers (every kernel here calls
// them with the whole block), atomics are plain (one OS thread). Included by src/gpu/*.cu when
// compiled with -DDC_CUDA_EMU by a host C++ compiler (tests/gpu/emu/CMakeLists.txt).
#ifndef DC_TESTS_CUDA_EMU_H
#define DC_TESTS_CUDA_EMU_H

#include <cuda_runtime_api.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <functional>

#undef __global__
#undef __device__
#undef __shared__
#define __global__
#define __device__
#define __shared__ static // blocks run one after the other; their fibers share the statics

uint3 dc_emu_thread_idx();
extern uint3 dc_emu_block_idx;
extern dim3 dc_emu_block_dim, dc_emu_grid_dim;
#define threadIdx (dc_emu_thread_idx())
#define blockIdx dc_emu_block_idx
#define blockDim dc_emu_block_dim
#define gridDim dc_emu_grid_dim

void dc_emu_sync();
void *dc_emu_dynamic_smem();
float dc_emu_shfl_xor(float v, int lane_mask);
void dc_emu_launch(dim3 grid, dim3 block, size_t smem, const std::function<void()> &body);
// dc_emu_launch, or kept in the capture when `stream` is being captured (cuda_emu.cpp).
void dc_emu_launch_on(cudaStream_t stream, dim3 grid, dim3 block, size_t smem,
                      const std::function<void()> &body);

#define __syncthreads() dc_emu_sync()
#define __shfl_xor_sync(mask, v, o) dc_emu_shfl_xor((v), (o))

static inline unsigned atomicMax(unsigned *p, unsigned v) {
    unsigned old = *p;
    if (v > old) *p = v;
    return old;
}
static inline unsigned __float_as_uint(float f) {
    unsigned u;
    memcpy(&u, &f, sizeof u);
    return u;
}
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }

// A kernel's pointer arguments must be device (or pinned) memory: on a GPU a pageable host
// pointer faults (illegal address), here the kernel would just read it. Checked before each
// launch (and those of the attention plan); a host pointer aborts naming the kernel.
bool dc_emu_kernel_may_use(const void *p);
[[noreturn]] void dc_emu_bad_kernel_arg(const char *kernel, int index, const void *p);
[[noreturn]] void dc_emu_bad_kernel_field(const char *kernel, const char *field, const void *p);
template <typename T> inline void dc_emu_check_arg(const char *, int, const T &) {}
template <typename T> inline void dc_emu_check_arg(const char *kernel, int index, T *p) {
    if (p && !dc_emu_kernel_may_use(p)) dc_emu_bad_kernel_arg(kernel, index, p);
}
template <typename... A> inline void dc_emu_check_args(const char *kernel, const A &...a) {
    int index = 0; // counted from 1 in the message
    (dc_emu_check_arg(kernel, ++index, a), ...);
}

#ifdef DC_GPU_KERNELS_H
// The attention kernel takes its plan by value: its pointers are checked one by one.
inline void dc_emu_check_arg(const char *kernel, int index, const dc_cuk_attn &a) {
    (void)index;
    const void *const p[] = {a.q,     a.k,        a.v,     a.out,    a.q_row, a.q_seq,
                             a.start, a.key_mask, a.gflag, a.gstart, a.glist, a.tile_q0};
    static const char *const name[] = {"attention plan .q",     "attention plan .k",
                                       "attention plan .v",     "attention plan .out",
                                       "attention plan .q_row", "attention plan .q_seq",
                                       "attention plan .start", "attention plan .key_mask",
                                       "attention plan .gflag", "attention plan .gstart",
                                       "attention plan .glist", "attention plan .tile_q0"};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        if (p[i] && !dc_emu_kernel_may_use(p[i])) dc_emu_bad_kernel_field(kernel, name[i], p[i]);
}
#endif

// Dynamic shared memory past 48 KiB needs cudaFuncSetAttribute(..MaxDynamicSharedMemorySize..)
// for that kernel first, as on a GPU: otherwise the launch fails (cudaErrorInvalidValue).
bool dc_emu_smem_ok(const void *kernel, size_t smem);

// The arguments are evaluated at the launch, as <<<...>>> does: a captured launch keeps their
// values, not the expressions (`*plan` of a plan on the caller's stack).
template <typename K, typename... A>
inline void dc_emu_launch_args(cudaStream_t s, dim3 grid, dim3 block, size_t smem, K *kernel,
                               A... args) {
    dc_emu_launch_on(s, grid, block, smem, [=]() { kernel(args...); });
}

#define DC_LAUNCH(kernel, grid, block, smem, stream, ...)                                      \
    (dc_emu_check_args(#kernel, __VA_ARGS__),                                                  \
     dc_emu_smem_ok(reinterpret_cast<const void *>(&kernel), (smem))                           \
         ? dc_emu_launch_args((stream), dim3(grid), dim3(block), (smem), &kernel, __VA_ARGS__)  \
         : (void)0)

#endif
