/* The elementwise loops of pyx/lrp.pyx: plain loops over one row each, written so that the
   compiler vectorises them. A zero denominator gives 0: the division always runs on a safe
   denominator (1 where it is 0) and a zeroed numerator, so no lane divides by zero. */
#ifndef REFNET_LRP_H
#define REFNET_LRP_H

#include <stddef.h>

/* GCC keeps a branch per select unless it may assume that floating-point operations do not
   trap (they never do here: traps are off, and the results are IEEE's either way). */
#if defined(__GNUC__) && !defined(__clang__)
#define REFNET_LRP_VECTORISE __attribute__((optimize("no-trapping-math")))
#else
#define REFNET_LRP_VECTORISE
#endif

/* out = R / (z + eps sign(z)), sign(0) = +1; out may be R. */
#define REFNET_LRP_RATIO(T, NAME)                                                   \
    REFNET_LRP_VECTORISE static void NAME(const T *R, const T *z, T eps, T *out,    \
                                          ptrdiff_t n) {                            \
        for (ptrdiff_t i = 0; i < n; i++) {                                         \
            T r = R[i], zi = z[i], d_plus = zi + eps, d_minus = zi - eps;           \
            T d = zi >= 0 ? d_plus : d_minus;                                       \
            T num = d == 0 ? (T)0 : r, den = d == 0 ? (T)1 : d;                     \
            out[i] = num / den;                                                     \
        }                                                                           \
    }

/* One row of n values: out_plus = a R / zp, out_minus = mb R / (z - zp - offset). */
#define REFNET_LRP_RATIO_ALPHA_BETA(T, NAME)                                        \
    REFNET_LRP_VECTORISE static void NAME(                                          \
        const T *restrict R, const T *restrict z, const T *restrict zp, T offset,   \
        T a, T mb, T *restrict out_plus, T *restrict out_minus, ptrdiff_t n) {      \
        for (ptrdiff_t i = 0; i < n; i++) {                                         \
            T r = R[i], p = zp[i], m = z[i] - p - offset, ar = a * r, mbr = mb * r; \
            T num_p = p == 0 ? (T)0 : ar, den_p = p == 0 ? (T)1 : p;                \
            T num_m = m == 0 ? (T)0 : mbr, den_m = m == 0 ? (T)1 : m;               \
            out_plus[i] = num_p / den_p;                                            \
            out_minus[i] = num_m / den_m;                                           \
        }                                                                           \
    }

/* out = sum_j X[j] c[j] over k parts, n values apart; out may be c when k = 1. */
#define REFNET_LRP_INPUT_RELEVANCE(T, NAME)                                         \
    REFNET_LRP_VECTORISE static void NAME(const T *X, const T *c, int k, T *out,    \
                                          ptrdiff_t n) {                            \
        for (ptrdiff_t i = 0; i < n; i++) {                                         \
            T acc = X[i] * c[i];                                                    \
            for (int j = 1; j < k; j++)                                             \
                acc += X[j * n + i] * c[j * n + i];                                 \
            out[i] = acc;                                                           \
        }                                                                           \
    }

REFNET_LRP_RATIO(float, refnet_lrp_ratio_f)
REFNET_LRP_RATIO(double, refnet_lrp_ratio_d)
REFNET_LRP_RATIO_ALPHA_BETA(float, refnet_lrp_ratio_alpha_beta_f)
REFNET_LRP_RATIO_ALPHA_BETA(double, refnet_lrp_ratio_alpha_beta_d)
REFNET_LRP_INPUT_RELEVANCE(float, refnet_lrp_input_relevance_f)
REFNET_LRP_INPUT_RELEVANCE(double, refnet_lrp_input_relevance_d)

#endif
