// Included by every .cu file of src/gpu: how a kernel is launched (the <<<...>>> syntax, or the
// CPU emulation's launcher in tests/gpu/emu when compiled with -DDC_CUDA_EMU by a host C++
// compiler), launch bounds, and the grid of the element-wise kernels.
#ifndef DC_GPU_CUK_LAUNCH_H
#define DC_GPU_CUK_LAUNCH_H

#include <stddef.h>

#ifdef DC_CUDA_EMU
#include "emu/cuda_emu.h" // the kernels run on the CPU for the emulated tests
#define DC_BOUNDS(n)
#else
#define DC_LAUNCH(kernel, grid, block, smem, stream, ...) kernel<<<grid, block, smem, stream>>>(__VA_ARGS__)
#define DC_BOUNDS(n) __launch_bounds__(n)
#endif

// Threads per block of the element-wise kernels (one thread per element, grid-stride loops).
constexpr int kElemBlock = 256;

// Blocks for n elements; grid-stride loops cover what a capped grid leaves.
static inline unsigned elem_grid(size_t n) {
    size_t b = (n + kElemBlock - 1) / kElemBlock;
    if (b > 65535u * 8u) b = 65535u * 8u;
    return b ? (unsigned)b : 1u;
}

#endif
