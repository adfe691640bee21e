// The AVX-512 kernel set (512-bit vectors preferred), chosen at run time only on a CPU (and OS)
// that supports it.
#if defined(__x86_64__) || defined(__i386__)
#define OPTIM_ISA avx512
#define OPTIM_ISA_NAME "avx512"
#define OPTIM_ISA_TARGET "avx512f,avx512vl,avx512bw,avx2,fma,prefer-vector-width=512"
#define OPTIM_FMA 1
#include "isa_table.inc"
#else
#include "kernel_abi.h"
namespace optim {
const KernelTable* table_avx512() { return nullptr; }
}  // namespace optim
#endif
