# cython: language_level=3
# Run-time choice of SIMD build for the C kernels (cimported by the kernels in pyx/; no
# module of its own). Kernels written with GCC vector extensions are compiled twice, with
# REFNET_AVX2 (__attribute__((target("avx2,fma")))) and for the baseline target, and call
# the AVX2+FMA build when refnet_use_avx2() says the CPU has both (checked once, with
# __builtin_cpu_supports). Without x86-64 GCC only the baseline exists. No -march flag:
# wheels must run on older CPUs.

cdef extern from *:
    """
    #ifndef REFNET_SIMD_H
    #define REFNET_SIMD_H
    #if defined(__GNUC__) && defined(__x86_64__)
    #define REFNET_HAVE_AVX2 1
    #define REFNET_AVX2 __attribute__((target("avx2,fma")))
    #else
    #define REFNET_HAVE_AVX2 0
    #define REFNET_AVX2
    #endif
    /* The AVX2+FMA build when the CPU has both (checked once), else the baseline. */
    static int refnet_use_avx2(void) {
    #if REFNET_HAVE_AVX2
        static int use = -1;
        if (use < 0) {
            __builtin_cpu_init();
            use = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        }
        return use;
    #else
        return 0;
    #endif
    }
    #endif
    """
    int refnet_use_avx2() noexcept nogil
