/* One-pass statistics of a flat, contiguous buffer: the compiled kernel of msdbg/engine/stats.py.
 *
 * reduce(buffer, kind, mode, low, high) reads the buffer once, in blocks of BLOCK elements (the GIL released
 * from GIL_RELEASE_BYTES up), and returns
 * (nan, pos_inf, neg_inf, zero, neg, range_count, min, max, sum, abs_sum, sq_sum):
 *   kind   'e' float16, 'f' float32, 'd' float64, 'B' bfloat16 (raw bits), 'i1' 'i2' 'i4' 'i8' 'u1' 'u2' 'u4' 'u8'
 *          integers, '?' bool (integers and bool are read as float64 and hold no NaN/Inf);
 *   mode   0: count NaN/+Inf/-Inf only (the other fields are 0); 1: every statistic but range_count (0);
 *          2: every statistic;
 *   low, high  range_count counts finite values in [low, high] (compared exactly, as float64);
 *   portable   true: the portable loops even where the CPU has wider ones (2-byte floats, digest; tests, benchmarks);
 *   seed   None, or an int: then a 64-bit digest of the raw bytes (digest_bytes), chained from seed, comes last
 *          (any mode; the data hashed block by block right after it is reduced).
 * reduce_files(jobs) does the same for many .npy files, each job (path, mode, bfloat, digest, low, high): it opens
 * each file, parses its header, reads and reduces it in cache-sized pieces, all with the GIL released, and
 * returns (header bytes, file size, kind, element count, totals or None) per file, or None for a file it leaves to
 * the caller (see stats.file_stats). mode -1 reads the header only.
 * Conventions follow stats.py: NaN/Inf are counted apart and every other statistic covers the finite values;
 * -0.0 is zero; min/max are NaN when there is no finite value.
 *
 * Each block is probed for NaN/Inf on its bits; a finite block is reduced by one loop the compiler vectorises
 * (OpenMP SIMD reductions, -fopenmp-simd: no OpenMP runtime), a block holding NaN/Inf element by element. Sums:
 * float64 for float64 data, integers and buffers under FAST_MIN values (each float32 value and its square are
 * exact in float64); otherwise float32 within a block across the SIMD lanes (fast_body, which also probes the
 * bits and widens 2-byte floats in the same loop) and float64 across blocks. On x86-64 CPUs with AVX2, FMA and
 * F16C (checked when the module loads; WIDE_2BYTE says whether) 2-byte floats take wide_2byte instead: integer keys
 * on the raw bits for min/max/counts/NaN-Inf, one-instruction widening for the sums (2x the portable loop).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define BLOCK 1024

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)) && !defined(__clang__) && __GNUC__ >= 6
/* An AVX2 copy of the hot loops beside the baseline one, chosen at load time by the CPU: portable builds. */
#define CLONES __attribute__((target_clones("avx2", "default")))
#else
#define CLONES
#endif

typedef struct {
    int64_t nan, pos_inf, neg_inf, zero, neg, range;
    double min, max, sum, abs_sum, sq_sum;
} Totals;

typedef struct {
    int full, ranged;
    int fast;           /* the whole buffer holds at least FAST_MIN values (it may come in pieces: reduce_files) */
    double low, high;   /* range bounds for float64 values */
    float low32, high32; /* the same bounds for float32 values: x >= low <=> x >= low32 (exact) */
    uint64_t *digest;    /* the running digest of the bytes (digest_bytes), or NULL when not asked */
    uint64_t (*digest_loop)(uint64_t h, const unsigned char *p, Py_ssize_t len); /* digest_portable or _avx2 */
} Request;

/* ----- NaN/Inf probes on the bits -------------------------------------------------------------------------- */

/* Whether any element is NaN/Inf: the largest magnitude's bits reach the all-ones exponent (a max reduction the
 * compiler vectorises over 8/16 lanes, cheaper than counting). */
CLONES static int nonfinite32(const uint32_t *bits, Py_ssize_t n) {
    uint32_t largest = 0;
#pragma omp simd reduction(max:largest)
    for (Py_ssize_t i = 0; i < n; i++) {
        uint32_t magnitude = bits[i] & 0x7FFFFFFFu;
        largest = magnitude > largest ? magnitude : largest;
    }
    return largest >= 0x7F800000u;
}

CLONES static int nonfinite64(const uint64_t *bits, Py_ssize_t n) {
    int64_t count = 0;
#pragma omp simd reduction(+:count)
    for (Py_ssize_t i = 0; i < n; i++) count += (bits[i] & 0x7FF0000000000000ull) == 0x7FF0000000000000ull;
    return count != 0;
}

/* float16 (exponent 0x7C00) or bfloat16 (0x7F80) bits. */
CLONES static int nonfinite16(const uint16_t *bits, Py_ssize_t n, uint16_t exponent) {
    uint16_t largest = 0;
#pragma omp simd reduction(max:largest)
    for (Py_ssize_t i = 0; i < n; i++) {
        uint16_t magnitude = bits[i] & 0x7FFFu;
        largest = magnitude > largest ? magnitude : largest;
    }
    return largest >= exponent;
}

/* ----- finite blocks: one vectorised loop ------------------------------------------------------------------ */

/* Add a block's figures (lo, hi: of its finite values, at least one) to the totals. */
static inline __attribute__((always_inline)) void add_block(Totals *t, double lo, double hi, double sum,
                                                             double abs_sum, double sq_sum, int64_t zero, int64_t neg,
                                                             int64_t range) {
    t->min = fmin(t->min, lo);
    t->max = fmax(t->max, hi);
    t->sum += sum; t->abs_sum += abs_sum; t->sq_sum += sq_sum;
    t->zero += zero; t->neg += neg; t->range += range;
}

/* Finite float32 or float64 values, summed in float64 (each float32 value and its square are exact in float64),
 * compared with the range bounds of their own type (Request: exact). */
#define FINITE_EXACT(NAME, TYPE, LOW, HIGH)                                                                     \
    CLONES static void NAME(const TYPE *x, Py_ssize_t n, const Request *req, Totals *t) {                       \
        TYPE lo = INFINITY, hi = -INFINITY;                                                                     \
        double sum = 0.0, abs_sum = 0.0, sq_sum = 0.0;                                                          \
        int64_t zero = 0, neg = 0, range = 0;                                                                   \
        const TYPE l = req->LOW, h = req->HIGH;                                                                 \
        _Pragma("omp simd reduction(min:lo) reduction(max:hi) reduction(+:sum, abs_sum, sq_sum, zero, neg, range)") \
        for (Py_ssize_t i = 0; i < n; i++) {                                                                    \
            TYPE v = x[i];                                                                                      \
            double d = (double)v;                                                                               \
            lo = v < lo ? v : lo;                                                                               \
            hi = v > hi ? v : hi;                                                                               \
            sum += d;                                                                                           \
            abs_sum += fabs(d);                                                                                 \
            sq_sum += d * d;                                                                                    \
            zero += v == 0;                                                                                     \
            neg += v < 0;                                                                                       \
            range += (v >= l) & (v <= h);                                                                       \
        }                                                                                                       \
        if (n) add_block(t, lo, hi, sum, abs_sum, sq_sum, zero, neg, range);                                    \
    }
FINITE_EXACT(finite_f32_exact, float, low32, high32)
FINITE_EXACT(finite_f64, double, low, high)

enum { F32, F16, BF16 }; /* how a fast loop reads its elements */

/* Float32 values (or 2-byte floats widened to float32 on the fly), summed in float32 across the SIMD lanes of one
 * block (at most BLOCK elements: the error stays below 1e-5 of the sum of magnitudes), blocks added in float64:
 * about 2x faster than finite_f32_exact. The same loop probes the bits for NaN/Inf. Returns 1 when the block is
 * counted; 0 when it holds NaN/Inf, and -1 when its squares could overflow or lose precision (largest magnitude
 * outside [2**-50, 2**60]): then nothing was counted. */
static inline __attribute__((always_inline)) int fast_body(const void *data, Py_ssize_t n, const Request *req,
                                                           Totals *t, const int format, const int ranged) {
    float lo = INFINITY, hi = -INFINITY, sum = 0.0f, abs_sum = 0.0f, sq_sum = 0.0f;
    int32_t zero = 0, neg = 0, range = 0, nonfinite = 0;
    const float l = req->low32, h = req->high32;
    const float *x32 = data;
    const uint16_t *x16 = data;
#pragma omp simd reduction(min:lo) reduction(max:hi) reduction(+:sum, abs_sum, sq_sum, zero, neg, range, nonfinite)
    for (Py_ssize_t i = 0; i < n; i++) {
        float v;
        uint32_t bits;
        if (format == F32) {
            v = x32[i];
            memcpy(&bits, &v, 4);
            nonfinite += (bits & 0x7F800000u) == 0x7F800000u;
        } else if (format == BF16) {
            bits = (uint32_t)x16[i] << 16;
            memcpy(&v, &bits, 4);
            nonfinite += (bits & 0x7F800000u) == 0x7F800000u;
        } else { /* see half_to_float */
            uint32_t half = x16[i], magnitude = (half & 0x7FFFu) << 13;
            nonfinite += (half & 0x7C00u) == 0x7C00u;
            memcpy(&v, &magnitude, 4);
            v *= 0x1p112f;
            memcpy(&bits, &v, 4);
            bits |= (half & 0x8000u) << 16;
            memcpy(&v, &bits, 4);
        }
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
        sum += v;
        abs_sum += fabsf(v);
        sq_sum += v * v;
        zero += v == 0.0f;
        neg += v < 0.0f;
        if (ranged) range += (v >= l) & (v <= h);
    }
    if (nonfinite) return 0;
    float largest = fmaxf(-lo, hi);
    if (!n || !(largest <= 0x1p60f) || (largest < 0x1p-50f && largest != 0.0f) || !isfinite(sq_sum)) return -1;
    add_block(t, lo, hi, sum, abs_sum, sq_sum, zero, neg, range);
    return 1;
}

CLONES static int fast_block(const void *x, Py_ssize_t n, const Request *req, Totals *t, int format) {
    switch (format * 2 + req->ranged) {
    case F32 * 2: return fast_body(x, n, req, t, F32, 0);
    case F32 * 2 + 1: return fast_body(x, n, req, t, F32, 1);
    case F16 * 2: return fast_body(x, n, req, t, F16, 0);
    case F16 * 2 + 1: return fast_body(x, n, req, t, F16, 1);
    case BF16 * 2: return fast_body(x, n, req, t, BF16, 0);
    default: return fast_body(x, n, req, t, BF16, 1);
    }
}

/* Buffers of at least this many values take the fast sums (the NumPy fallback's rule: rows of 8192). */
#define FAST_MIN 8192

/* Reduce a float32 block: 1, or 0 when it holds NaN/Inf (then nothing was counted). */
static int finite_f32(const float *x, Py_ssize_t n, const Request *req, Totals *t) {
    int done = req->fast ? fast_block(x, n, req, t, F32) : -1;
    if (done >= 0) return done;
    if (nonfinite32((const void *)x, n)) return 0;
    finite_f32_exact(x, n, req, t);
    return 1;
}

/* ----- blocks holding NaN/Inf: element by element ---------------------------------------------------------- */

static void mixed_value(double v, const Request *req, Totals *t) {
    if (v != v) { t->nan++; return; }
    if (isinf(v)) { if (v > 0) t->pos_inf++; else t->neg_inf++; return; }
    if (req->full) add_block(t, v, v, v, fabs(v), v * v, v == 0.0, v < 0.0, (v >= req->low) & (v <= req->high));
}

/* ----- 2-byte floats -> float32 ---------------------------------------------------------------------------- */

/* Finite float16 bits as float32: exponent and mantissa shifted into place read as 2**-112 times the value
 * (subnormals too), so one exact multiplication rescales them. Not for NaN/Inf (they would come out finite). */
CLONES static void half_to_float(const uint16_t *h, Py_ssize_t n, float *out) {
    const float scale = 0x1p112f;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint32_t magnitude = (uint32_t)(h[i] & 0x7FFFu) << 13, sign = (uint32_t)(h[i] & 0x8000u) << 16;
        float value;
        memcpy(&value, &magnitude, 4);
        value *= scale;
        uint32_t bits;
        memcpy(&bits, &value, 4);
        bits |= sign;
        memcpy(&out[i], &bits, 4);
    }
}

static double half_value(uint16_t h) {
    /* Any float16 bit pattern, NaN and Inf included. */
    if ((h & 0x7C00u) == 0x7C00u) {
        if (h & 0x03FFu) return NAN;
        return (h & 0x8000u) ? -INFINITY : INFINITY;
    }
    float value;
    half_to_float(&h, 1, &value);
    return value;
}

CLONES static void bfloat_to_float(const uint16_t *b, Py_ssize_t n, float *out) {
    for (Py_ssize_t i = 0; i < n; i++) {
        uint32_t bits = (uint32_t)b[i] << 16;
        memcpy(&out[i], &bits, 4);
    }
}

static double bfloat_value(uint16_t b) {
    float value;
    bfloat_to_float(&b, 1, &value);
    return value;
}

/* ----- 2-byte floats with AVX2 + F16C (x86-64, chosen at run time) -------------------------------------------- */

/* A finite block of 2-byte floats, 16 at a time: min/max and zero/negative counts on integer keys of the raw bits
 * (sign-magnitude as two's complement, -0 and +0 alike: 16 lanes a vector, and NaN/Inf show as keys beyond the
 * largest finite one), sums and squares on the values widened by one instruction (F16C, or a shift for bfloat16)
 * into two float32 accumulators each. Same contract and sums as fast_body (n <= BLOCK: the 16-bit counters hold). */
typedef int (*TwoByteLoop)(const uint16_t *x, Py_ssize_t n, const Request *req, Totals *t, int bfloat);

static int portable_2byte(const uint16_t *x, Py_ssize_t n, const Request *req, Totals *t, int bfloat) {
    return fast_block(x, n, req, t, bfloat ? BF16 : F16);
}

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#define WIDE __attribute__((target("avx2,f16c,fma")))

WIDE static inline float wide_value(uint16_t bits, int bfloat) {
    if (!bfloat) return _cvtsh_ss(bits);
    uint32_t wide = (uint32_t)bits << 16;
    float value;
    memcpy(&value, &wide, 4);
    return value;
}

WIDE static inline float key_value(int key, int bfloat) {
    return wide_value((uint16_t)(key < 0 ? 0x8000 | -key : key), bfloat);
}

WIDE static inline __attribute__((always_inline)) int wide_body(const uint16_t *x, Py_ssize_t n, const Request *req,
                                                                Totals *t, const int bfloat, const int ranged) {
    const __m256i magnitude_bits = _mm256_set1_epi16(0x7FFF), none = _mm256_setzero_si256();
    const __m256 abs_bits = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    const __m256 l = _mm256_set1_ps(req->low32), h = _mm256_set1_ps(req->high32);
    __m256i lows = _mm256_set1_epi16(INT16_MAX), highs = _mm256_set1_epi16(INT16_MIN), zeros = none, negs = none;
    __m256i ranges = none;
    __m256 sums[2], abs_sums[2], sq_sums[2];
    for (int k = 0; k < 2; k++) sums[k] = abs_sums[k] = sq_sums[k] = _mm256_setzero_ps();
    Py_ssize_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i bits = _mm256_loadu_si256((const __m256i *)(x + i));
        __m256i key = _mm256_sign_epi16(_mm256_and_si256(bits, magnitude_bits), bits); /* bits < 0: negated */
        lows = _mm256_min_epi16(lows, key);
        highs = _mm256_max_epi16(highs, key);
        zeros = _mm256_sub_epi16(zeros, _mm256_cmpeq_epi16(key, none));
        negs = _mm256_sub_epi16(negs, _mm256_cmpgt_epi16(none, key));
        __m256 v[2];
        if (bfloat) { /* lanes in another order than in memory: sums do not mind */
            v[0] = _mm256_castsi256_ps(_mm256_unpacklo_epi16(none, bits));
            v[1] = _mm256_castsi256_ps(_mm256_unpackhi_epi16(none, bits));
        } else {
            v[0] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i)));
            v[1] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i + 8)));
        }
        for (int k = 0; k < 2; k++) {
            sums[k] = _mm256_add_ps(sums[k], v[k]);
            abs_sums[k] = _mm256_add_ps(abs_sums[k], _mm256_and_ps(v[k], abs_bits));
            sq_sums[k] = _mm256_fmadd_ps(v[k], v[k], sq_sums[k]);
            if (ranged) {
                __m256 inside = _mm256_and_ps(_mm256_cmp_ps(v[k], l, _CMP_GE_OQ), _mm256_cmp_ps(v[k], h, _CMP_LE_OQ));
                ranges = _mm256_sub_epi32(ranges, _mm256_castps_si256(inside));
            }
        }
    }
    int16_t lane_lows[16], lane_highs[16], lane_zeros[16], lane_negs[16];
    int32_t lane_ranges[8];
    float lane_sums[8], lane_abs_sums[8], lane_sq_sums[8];
    _mm256_storeu_si256((__m256i *)lane_lows, lows);
    _mm256_storeu_si256((__m256i *)lane_highs, highs);
    _mm256_storeu_si256((__m256i *)lane_zeros, zeros);
    _mm256_storeu_si256((__m256i *)lane_negs, negs);
    _mm256_storeu_si256((__m256i *)lane_ranges, ranges);
    _mm256_storeu_ps(lane_sums, _mm256_add_ps(sums[0], sums[1]));
    _mm256_storeu_ps(lane_abs_sums, _mm256_add_ps(abs_sums[0], abs_sums[1]));
    _mm256_storeu_ps(lane_sq_sums, _mm256_add_ps(sq_sums[0], sq_sums[1]));
    int lo = INT16_MAX, hi = INT16_MIN;
    int64_t zero = 0, neg = 0, range = 0;
    double sum = 0.0, abs_sum = 0.0, sq_sum = 0.0;
    for (int k = 0; k < 16; k++) {
        lo = lane_lows[k] < lo ? lane_lows[k] : lo;
        hi = lane_highs[k] > hi ? lane_highs[k] : hi;
        zero += lane_zeros[k];
        neg += lane_negs[k];
    }
    for (int k = 0; k < 8; k++) {
        sum += lane_sums[k]; abs_sum += lane_abs_sums[k]; sq_sum += lane_sq_sums[k]; range += lane_ranges[k];
    }
    for (; i < n; i++) { /* the last few */
        int sign = x[i] >> 15, key = sign ? -(x[i] & 0x7FFF) : x[i];
        lo = key < lo ? key : lo;
        hi = key > hi ? key : hi;
        zero += key == 0;
        neg += key < 0;
        float v = wide_value(x[i], bfloat);
        sum += v; abs_sum += fabsf(v); sq_sum += v * v;
        if (ranged) range += (v >= req->low32) & (v <= req->high32);
    }
    const int infinity = bfloat ? 0x7F80 : 0x7C00;
    if (hi >= infinity || lo <= -infinity) return 0;
    float largest = key_value(-lo > hi ? -lo : hi, bfloat);
    if (!n || !(largest <= 0x1p60f) || (largest < 0x1p-50f && largest != 0.0f) || !isfinite(sq_sum)) return -1;
    add_block(t, key_value(lo, bfloat), key_value(hi, bfloat), sum, abs_sum, sq_sum, zero, neg, range);
    return 1;
}

WIDE static int wide_2byte(const uint16_t *x, Py_ssize_t n, const Request *req, Totals *t, int bfloat) {
    switch (bfloat * 2 + req->ranged) {
    case 0: return wide_body(x, n, req, t, 0, 0);
    case 1: return wide_body(x, n, req, t, 0, 1);
    case 2: return wide_body(x, n, req, t, 1, 0);
    default: return wide_body(x, n, req, t, 1, 1);
    }
}

/* The loop for this CPU: wide_2byte where it runs AVX2, FMA and F16C (and the OS saves their registers). */
static TwoByteLoop best_2byte_loop(void) {
    unsigned int eax, ebx, ecx, edx;
    __builtin_cpu_init();
    int f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C);
    return f16c && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? wide_2byte : portable_2byte;
}
#else
static TwoByteLoop best_2byte_loop(void) { return portable_2byte; }
#endif

/* ----- digest of the raw bytes ------------------------------------------------------------------------------ */

/* A 64-bit digest of the bytes, for weight_frozen's "bit for bit unchanged" (compared within one process run only).
 * The bytes are cut into segments of DIGEST_SEGMENT bytes from the buffer's start (the last one shorter); each is
 * hashed in eight independent lanes over its 8-byte words (each word xor a key, its 32-bit halves multiplied and
 * summed in the lane; the word itself summed apart: a one-bit change moves that sum by a power of two, so it never
 * cancels), its tail zero-padded, and the lanes folded with its length into the running digest, which seeds the
 * next segment. A buffer reduced in pieces whose sizes are multiples of
 * DIGEST_SEGMENT bytes, each call seeded with the last one's digest, gets the digest of one call. The reductions
 * below hash each segment as soon as their blocks have covered it, while it is in cache (digest_upto). */
#define DIGEST_SEGMENT 16384

#define DIGEST_LANES 8

static const uint64_t digest_keys[DIGEST_LANES] = {
    0x9E3779B185EBCA87ull, 0xC2B2AE3D27D4EB4Full, 0x165667B19E3779F9ull, 0x85EBCA77C2B2AE63ull,
    0x27D4EB2F165667C5ull, 0xFF51AFD7ED558CCDull, 0xC4CEB9FE1A85EC53ull, 0x9FB21C651E98DF25ull};

static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 33; x *= 0xFF51AFD7ED558CCDull;
    x ^= x >> 33; x *= 0xC4CEB9FE1A85EC53ull;
    return x ^ (x >> 33);
}

/* One stripe of DIGEST_LANES words into the lanes: products of the keyed words' 32-bit halves, and the words' sums. */
static inline void digest_stripe(uint64_t *products, uint64_t *sums, const unsigned char *p) {
    uint64_t w[DIGEST_LANES];
    memcpy(w, p, sizeof(w));
    for (int j = 0; j < DIGEST_LANES; j++) {
        uint64_t k = w[j] ^ digest_keys[j];
        products[j] += (uint64_t)(uint32_t)k * (uint32_t)(k >> 32);
        sums[j] += w[j];
    }
}

/* The segment's last stripes from ``i`` on (the tail zero-padded, the length folded in) and its lanes, folded. */
static uint64_t digest_finish(uint64_t h, const unsigned char *p, Py_ssize_t i, Py_ssize_t len, uint64_t *products,
                              uint64_t *sums) {
    const Py_ssize_t stripe = DIGEST_LANES * 8;
    for (; i + stripe <= len; i += stripe) digest_stripe(products, sums, p + i);
    if (i < len) {
        unsigned char last[DIGEST_LANES * 8] = {0};
        memcpy(last, p + i, (size_t)(len - i));
        digest_stripe(products, sums, last);
    }
    h = mix64(h ^ (uint64_t)len);
    for (int j = 0; j < DIGEST_LANES; j++) h = (h ^ mix64(products[j]) ^ mix64(sums[j] + j)) * 0x9FB21C651E98DF25ull;
    return mix64(h);
}

/* One segment folded into the running digest ``h`` (the lanes start from it). */
typedef uint64_t (*DigestSegment)(uint64_t h, const unsigned char *p, Py_ssize_t len);

static uint64_t digest_portable(uint64_t h, const unsigned char *p, Py_ssize_t len) {
    uint64_t products[DIGEST_LANES], sums[DIGEST_LANES];
    for (int j = 0; j < DIGEST_LANES; j++) products[j] = sums[j] = h ^ digest_keys[j];
    return digest_finish(h, p, 0, len, products, sums);
}

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#include <immintrin.h>
/* The same with AVX2: a stripe is two vectors, each product one vpmuludq (compilers emulate a full 64-bit one). */
__attribute__((target("avx2"))) static uint64_t digest_avx2(uint64_t h, const unsigned char *p, Py_ssize_t len) {
    const __m256i key0 = _mm256_loadu_si256((const __m256i *)digest_keys);
    const __m256i key1 = _mm256_loadu_si256((const __m256i *)(digest_keys + 4));
    const __m256i seed = _mm256_set1_epi64x((long long)h);
    __m256i products0 = _mm256_xor_si256(seed, key0), products1 = _mm256_xor_si256(seed, key1);
    __m256i sums0 = products0, sums1 = products1;
    Py_ssize_t i = 0;
    for (; i + 64 <= len; i += 64) {
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(p + i)), w1 = _mm256_loadu_si256((const __m256i *)(p + i + 32));
        __m256i k0 = _mm256_xor_si256(w0, key0), k1 = _mm256_xor_si256(w1, key1);
        products0 = _mm256_add_epi64(products0, _mm256_mul_epu32(k0, _mm256_srli_epi64(k0, 32)));
        products1 = _mm256_add_epi64(products1, _mm256_mul_epu32(k1, _mm256_srli_epi64(k1, 32)));
        sums0 = _mm256_add_epi64(sums0, w0);
        sums1 = _mm256_add_epi64(sums1, w1);
    }
    uint64_t products[DIGEST_LANES], sums[DIGEST_LANES];
    _mm256_storeu_si256((__m256i *)products, products0);
    _mm256_storeu_si256((__m256i *)(products + 4), products1);
    _mm256_storeu_si256((__m256i *)sums, sums0);
    _mm256_storeu_si256((__m256i *)(sums + 4), sums1);
    return digest_finish(h, p, i, len, products, sums);
}

static DigestSegment best_digest(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") ? digest_avx2 : digest_portable;
}
#else
static DigestSegment best_digest(void) { return digest_portable; }
#endif

/* The segment loop for this CPU (set when the module loads). */
static DigestSegment digest_loop = digest_portable;

/* Fold the bytes of data[*done, upto) that fill whole segments (all of them when upto is the buffer's end, total)
 * into the request's running digest, when it asks for one, and move *done past them. */
static void digest_upto(const Request *req, const void *data, Py_ssize_t *done, Py_ssize_t upto, Py_ssize_t total) {
    if (req->digest == NULL) return;
    const unsigned char *p = data;
    Py_ssize_t end = upto == total ? total : *done + (upto - *done) / DIGEST_SEGMENT * DIGEST_SEGMENT;
    for (; *done < end; *done += DIGEST_SEGMENT)
        *req->digest = req->digest_loop(*req->digest, p + *done,
                                        end - *done < DIGEST_SEGMENT ? end - *done : DIGEST_SEGMENT);
    *done = end;
}

/* ----- whole buffers --------------------------------------------------------------------------------------- */

/* The overflow check alone probes spans of PROBE elements, and counts element by element only in those with NaN/Inf. */
#define PROBE (32 * BLOCK)
#define PROBE_ONLY(TYPE, ANY_NONFINITE, VALUE)                                                                  \
    Py_ssize_t hashed = 0;                                                                                      \
    for (Py_ssize_t start = 0; start < n; start += PROBE) {                                                     \
        Py_ssize_t len = n - start < PROBE ? n - start : PROBE;                                                 \
        const TYPE *span = x + start;                                                                           \
        if (ANY_NONFINITE)                                                                                      \
            for (Py_ssize_t i = 0; i < len; i++) mixed_value(VALUE, req, t);                                    \
        digest_upto(req, x, &hashed, (start + len) * (Py_ssize_t)sizeof(TYPE), n * (Py_ssize_t)sizeof(TYPE));     \
    }

static void reduce_f32(const float *x, Py_ssize_t n, const Request *req, Totals *t) {
    if (!req->full) {
        PROBE_ONLY(float, nonfinite32((const uint32_t *)span, len), span[i])
        return;
    }
    Py_ssize_t hashed = 0;
    for (Py_ssize_t start = 0; start < n; start += BLOCK) {
        Py_ssize_t len = n - start < BLOCK ? n - start : BLOCK;
        const float *block = x + start;
        if (!finite_f32(block, len, req, t))
            for (Py_ssize_t i = 0; i < len; i++) mixed_value(block[i], req, t);
        digest_upto(req, x, &hashed, (start + len) * 4, n * 4);
    }
}

static void reduce_f64(const double *x, Py_ssize_t n, const Request *req, Totals *t) {
    if (!req->full) {
        PROBE_ONLY(double, nonfinite64((const uint64_t *)span, len), span[i])
        return;
    }
    Py_ssize_t hashed = 0;
    for (Py_ssize_t start = 0; start < n; start += BLOCK) {
        Py_ssize_t len = n - start < BLOCK ? n - start : BLOCK;
        const double *block = x + start;
        if (nonfinite64((const uint64_t *)block, len) == 0) finite_f64(block, len, req, t);
        else for (Py_ssize_t i = 0; i < len; i++) mixed_value(block[i], req, t);
        digest_upto(req, x, &hashed, (start + len) * 8, n * 8);
    }
}

static void reduce_2byte(const uint16_t *x, Py_ssize_t n, int bfloat, TwoByteLoop fast, const Request *req,
                         Totals *t) {
    float values[BLOCK];
    const uint16_t exponent = bfloat ? 0x7F80u : 0x7C00u;
    if (!req->full) {
        PROBE_ONLY(uint16_t, nonfinite16(span, len, exponent), bfloat ? bfloat_value(span[i]) : half_value(span[i]))
        return;
    }
    Py_ssize_t hashed = 0;
    for (Py_ssize_t start = 0; start < n; start += BLOCK) {
        Py_ssize_t len = n - start < BLOCK ? n - start : BLOCK;
        const uint16_t *block = x + start;
        digest_upto(req, x, &hashed, (start + len) * 2, n * 2);
        int done = req->fast ? fast(block, len, req, t, bfloat) : -1;
        if (done == 1) continue;
        int finite = done == -1 && nonfinite16(block, len, exponent) == 0;
        if (bfloat) bfloat_to_float(block, len, values);
        else if (finite) half_to_float(block, len, values);
        if (finite) {
            finite_f32_exact(values, len, req, t);
        } else {
            for (Py_ssize_t i = 0; i < len; i++) mixed_value(bfloat ? (double)values[i] : half_value(block[i]), req, t);
        }
    }
}

#define REDUCE_INTEGERS(NAME, TYPE)                                                                             \
    static void NAME(const TYPE *x, Py_ssize_t n, const Request *req, Totals *t) {                              \
        double values[BLOCK];                                                                                   \
        Py_ssize_t hashed = 0;                                                                                  \
        for (Py_ssize_t start = 0; start < n; start += BLOCK) {                                                 \
            Py_ssize_t len = n - start < BLOCK ? n - start : BLOCK;                                             \
            for (Py_ssize_t i = 0; i < len; i++) values[i] = (double)x[start + i];                              \
            finite_f64(values, len, req, t);                                                                    \
            digest_upto(req, x, &hashed, (start + len) * (Py_ssize_t)sizeof(TYPE), n * (Py_ssize_t)sizeof(TYPE)); \
        }                                                                                                       \
    }
REDUCE_INTEGERS(reduce_i1, int8_t)
REDUCE_INTEGERS(reduce_i2, int16_t)
REDUCE_INTEGERS(reduce_i4, int32_t)
REDUCE_INTEGERS(reduce_i8, int64_t)
REDUCE_INTEGERS(reduce_u1, uint8_t)
REDUCE_INTEGERS(reduce_u2, uint16_t)
REDUCE_INTEGERS(reduce_u4, uint32_t)
REDUCE_INTEGERS(reduce_u8, uint64_t)

/* The smallest float32 >= value (up) or the largest <= value (down): exact float32 bounds of a float64 range. */
static float float32_bound(double value, int up) {
    float f = (float)value;
    if (value != value) return f;
    if (up && (double)f < value) f = nextafterf(f, INFINITY);
    if (!up && (double)f > value) f = nextafterf(f, -INFINITY);
    return f;
}

/* Buffers from this size up are reduced with the GIL released (256 KB: about 20 microseconds of work). */
#define GIL_RELEASE_BYTES (256 * 1024)

/* The finite-block loop for 2-byte floats on this CPU (set when the module loads). */
static TwoByteLoop two_byte_loop = portable_2byte;

/* The element size of a kernel kind, 0 for an unknown kind. */
static int kind_size(const char *kind) {
    static const struct { const char *kind; int size; } sizes[] = {
        {"e", 2}, {"B", 2}, {"f", 4}, {"d", 8}, {"i1", 1}, {"i2", 2}, {"i4", 4}, {"i8", 8},
        {"u1", 1}, {"u2", 2}, {"u4", 4}, {"u8", 8}, {"?", 1}};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++)
        if (strcmp(kind, sizes[k].kind) == 0) return sizes[k].size;
    return 0;
}

/* Reduce n elements of a known kind (no Python calls: runs with the GIL released). */
static void reduce_kind(const char *kind, const void *data, Py_ssize_t n, int size, const Request *req, Totals *t,
                        int portable) {
    int integers = kind[0] == 'i' || kind[0] == 'u' || kind[0] == '?';
    if (kind[0] == 'f') reduce_f32(data, n, req, t);
    else if (kind[0] == 'd') reduce_f64(data, n, req, t);
    else if (kind[0] == 'e' || kind[0] == 'B')
        reduce_2byte(data, n, kind[0] == 'B', portable ? portable_2byte : two_byte_loop, req, t);
    else if (integers && !req->full) { /* no NaN/Inf to count: the digest alone */
        Py_ssize_t hashed = 0;
        digest_upto(req, data, &hashed, n * size, n * size);
    }
    else if (integers) {
        if (kind[0] == '?' || strcmp(kind, "u1") == 0) reduce_u1(data, n, req, t);
        else if (strcmp(kind, "i1") == 0) reduce_i1(data, n, req, t);
        else if (strcmp(kind, "i2") == 0) reduce_i2(data, n, req, t);
        else if (strcmp(kind, "i4") == 0) reduce_i4(data, n, req, t);
        else if (strcmp(kind, "i8") == 0) reduce_i8(data, n, req, t);
        else if (strcmp(kind, "u2") == 0) reduce_u2(data, n, req, t);
        else if (strcmp(kind, "u4") == 0) reduce_u4(data, n, req, t);
        else reduce_u8(data, n, req, t);
    }
}

/* A request for a buffer of `total` values in all (reduced whole, or in pieces of READ_CHUNK bytes). */
static Request make_request(int mode, double low, double high, uint64_t *digest, int portable, Py_ssize_t total) {
    Request req = {mode > 0, mode == 2, total >= FAST_MIN, low, high, float32_bound(low, 1), float32_bound(high, 0),
                   digest, portable ? digest_portable : digest_loop};
    return req;
}

/* The kernel's result tuple (see the top of this file). */
static PyObject *totals_tuple(const Totals *t, const uint64_t *digest) {
    if (digest != NULL)
        return Py_BuildValue("(LLLLLLdddddK)", (long long)t->nan, (long long)t->pos_inf, (long long)t->neg_inf,
                             (long long)t->zero, (long long)t->neg, (long long)t->range, t->min, t->max, t->sum,
                             t->abs_sum, t->sq_sum, (unsigned long long)*digest);
    return Py_BuildValue("(LLLLLLddddd)", (long long)t->nan, (long long)t->pos_inf, (long long)t->neg_inf,
                         (long long)t->zero, (long long)t->neg, (long long)t->range, t->min, t->max, t->sum,
                         t->abs_sum, t->sq_sum);
}

static PyObject *reduce(PyObject *self, PyObject *args) {
    Py_buffer view;
    const char *kind;
    int mode;
    double low, high;
    int portable = 0;
    PyObject *seed = Py_None;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*sidd|pO", &view, &kind, &mode, &low, &high, &portable, &seed)) return NULL;
    uint64_t digest = 0;
    if (seed != Py_None) {
        digest = PyLong_AsUnsignedLongLongMask(seed);
        if (PyErr_Occurred()) {
            PyBuffer_Release(&view);
            return NULL;
        }
    }
    int size = kind_size(kind);
    if (size == 0 || view.len % size) {
        PyBuffer_Release(&view);
        PyErr_Format(PyExc_ValueError, "reduce: kind %s does not fit a buffer of %zd bytes", kind, view.len);
        return NULL;
    }
    Request req = make_request(mode, low, high, seed != Py_None ? &digest : NULL, portable, view.len / size);
    Totals t = {0, 0, 0, 0, 0, 0, NAN, NAN, 0.0, 0.0, 0.0};
    /* Small buffers are reduced holding the GIL: taking it back after a few microseconds of work can wait for
       another thread's switch interval, and each hand-over costs more than the work (a step's many small tensors
       on a worker thread beside the training). */
    PyThreadState *released = view.len >= GIL_RELEASE_BYTES ? PyEval_SaveThread() : NULL;
    reduce_kind(kind, view.buf, view.len / size, size, &req, &t, portable);
    if (released != NULL) PyEval_RestoreThread(released);
    PyBuffer_Release(&view);
    return totals_tuple(&t, seed != Py_None ? &digest : NULL);
}

/* ----- many .npy files in one call ------------------------------------------------------------------------- */

/* A file's data is read in pieces of READ_CHUNK bytes into one buffer that stays in the CPU's cache while the piece
 * is reduced: on tmpfs about twice as fast as mapping the file (the page-table work of a map, then reading from
 * memory). READ_CHUNK is a multiple of every element size, of BLOCK elements and of the digest's 16 KB segments,
 * so the blocks, fast-sum choices and digest are those of one call over the whole buffer: the same statistics bit
 * for bit. Smaller files are read whole. Files whose data exceed FILE_MAX_BYTES are left to the caller
 * (stats.WINDOW_BYTES: memory-mapped and reduced in windows there). */
#define READ_CHUNK (128 * 1024)
#define HEADER_READ 4096
#define FILE_MAX_BYTES ((Py_ssize_t)64 << 20)

typedef struct {
    PyObject *path;    /* bytes (owned reference) */
    int mode, bfloat, digest; /* mode -1: the header only */
    double low, high;
    /* filled without the GIL */
    int ok;            /* 1: read (and reduced when a float kind and mode >= 0); 0: left to the caller */
    int reduced;
    char kind[3];
    Py_ssize_t offset, size, count;
    unsigned char *header; /* the file's first `offset` bytes (malloc'd), for the caller's own header reading */
    Totals totals;
    uint64_t hash;
} FileJob;

/* Read `want` bytes at `offset` (or from the current position when offset < 0); 0 on an error or a short file. */
static int read_full(int fd, unsigned char *buffer, Py_ssize_t want, Py_ssize_t offset) {
    Py_ssize_t got = 0;
    while (got < want) {
        ssize_t r = offset < 0 ? read(fd, buffer + got, (size_t)(want - got))
                               : pread(fd, buffer + got, (size_t)(want - got), (off_t)(offset + got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return 0;
        got += r;
    }
    return 1;
}

/* The text after `key` in an .npy header dict, past spaces; NULL when absent. */
static const char *header_field(const char *text, const char *end, const char *key) {
    size_t len = strlen(key);
    for (const char *p = text; p + len <= end; p++)
        if (memcmp(p, key, len) == 0) {
            p += len;
            while (p < end && *p == ' ') p++;
            return p;
        }
    return NULL;
}

/* Parse the header MindSpore and NumPy write ({'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }) from
 * the file's first `have` bytes `h`: the job's kind, data offset and element count; returns the element size, 0 for
 * anything else (the caller's own reader then says what is wrong). */
static int parse_header(FileJob *job, const unsigned char *h, Py_ssize_t have) {
    if (have < 10 || memcmp(h, "\x93NUMPY", 6) != 0) return 0;
    Py_ssize_t offset = h[6] == 1 ? 10 + (h[8] | h[9] << 8)
                      : have >= 12 ? 12 + ((Py_ssize_t)h[8] | h[9] << 8 | h[10] << 16 | (Py_ssize_t)h[11] << 24) : 0;
    if (offset < 10 || offset > have) return 0;
    const char *text = (const char *)h + (h[6] == 1 ? 10 : 12), *end = (const char *)h + offset;
    const char *descr = header_field(text, end, "'descr':");
    const char *shape = header_field(text, end, "'shape':");
    if (descr == NULL || shape == NULL || descr + 5 > end || descr[0] != '\'' || descr[4] != '\'') return 0;
    static const struct { const char *descr, *kind; } kinds[] = {
        {"<f4", "f"}, {"<f2", "e"}, {"<f8", "d"}, {"|b1", "?"}, {"|i1", "i1"}, {"<i2", "i2"}, {"<i4", "i4"},
        {"<i8", "i8"}, {"|u1", "u1"}, {"<u2", "u2"}, {"<u4", "u4"}, {"<u8", "u8"}};
    const char *kind = NULL;
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
        if (memcmp(descr + 1, kinds[k].descr, 3) == 0) kind = kinds[k].kind;
    if (kind == NULL) return 0;
    if (job->bfloat && (strcmp(kind, "u2") == 0 || strcmp(kind, "i2") == 0)) kind = "B";
    if (shape >= end || *shape != '(') return 0;
    Py_ssize_t n = 1;
    const char *p = shape + 1;
    for (;;) {
        while (p < end && *p == ' ') p++;
        if (p < end && *p == ')') break;
        if (p >= end || *p < '0' || *p > '9') return 0;
        Py_ssize_t dim = 0;
        while (p < end && *p >= '0' && *p <= '9') {
            if (dim > (PY_SSIZE_T_MAX - 9) / 10) return 0;
            dim = dim * 10 + (*p++ - '0');
        }
        if (dim && n > PY_SSIZE_T_MAX / dim) return 0;
        n *= dim;
        while (p < end && *p == ' ') p++;
        if (p < end && *p == ',') p++;
        else if (p >= end || *p != ')') return 0;
    }
    int size = kind_size(kind);
    /* MindSpore's CPU O2 dump: float32 values under a float16 header (npyfile.read_header) */
    if (kind[0] == 'e' && n && job->size - offset == n * 4) {
        kind = "f";
        size = 4;
    }
    if (offset % size || job->size < offset + n * size || n * size > FILE_MAX_BYTES) return 0;
    strcpy(job->kind, kind);
    job->offset = offset;
    job->count = n;
    return size;
}

/* Read and reduce one file (no Python calls) with `buffer` (READ_CHUNK + HEADER_READ bytes). Integer and bool
 * files, and mode -1, are read but not reduced. */
static void reduce_file(FileJob *job, const char *path, unsigned char *buffer) {
    job->ok = 0;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return;
    struct stat info;
    if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) goto done;
    job->size = info.st_size;
    int whole = job->size <= READ_CHUNK + HEADER_READ;
    Py_ssize_t first = whole ? job->size : HEADER_READ;
    if (!read_full(fd, buffer, first, -1)) goto done;
    int size = parse_header(job, buffer, first < HEADER_READ ? first : HEADER_READ);
    if (size == 0 || (job->header = malloc((size_t)job->offset)) == NULL) goto done;
    memcpy(job->header, buffer, (size_t)job->offset);
    Py_ssize_t count = job->count;
    Totals t = {0, 0, 0, 0, 0, 0, NAN, NAN, 0.0, 0.0, 0.0};
    job->totals = t;
    job->hash = 0;
    job->reduced = job->mode >= 0 && strchr("efdB", job->kind[0]) != NULL;
    if (job->reduced) {
        Request req = make_request(job->mode, job->low, job->high, job->digest ? &job->hash : NULL, 0, count);
        Py_ssize_t bytes = count * size;
        if (whole) {
            reduce_kind(job->kind, buffer + job->offset, count, size, &req, &job->totals, 0);
        } else {
            for (Py_ssize_t done = 0; done < bytes; done += READ_CHUNK) {
                Py_ssize_t len = bytes - done < READ_CHUNK ? bytes - done : READ_CHUNK;
                if (!read_full(fd, buffer, len, job->offset + done)) goto done;
                reduce_kind(job->kind, buffer, len / size, size, &req, &job->totals, 0);
            }
        }
    }
    job->ok = 1;
done:
    close(fd);
}

static PyObject *reduce_files(PyObject *self, PyObject *args) {
    PyObject *jobs_in;
    (void)self;
    if (!PyArg_ParseTuple(args, "O!", &PyList_Type, &jobs_in)) return NULL;
    Py_ssize_t count = PyList_GET_SIZE(jobs_in);
    FileJob *jobs = calloc(count ? (size_t)count : 1, sizeof(FileJob));
    if (jobs == NULL) return PyErr_NoMemory();
    PyObject *result = NULL;
    Py_ssize_t parsed = 0;
    for (; parsed < count; parsed++) {
        FileJob *job = &jobs[parsed];
        if (!PyArg_ParseTuple(PyList_GET_ITEM(jobs_in, parsed), "O&ippdd", PyUnicode_FSConverter, &job->path,
                              &job->mode, &job->bfloat, &job->digest, &job->low, &job->high))
            goto cleanup;
    }
    unsigned char *buffer = malloc(READ_CHUNK + HEADER_READ);
    if (buffer == NULL) {
        PyErr_NoMemory();
        goto cleanup;
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < count; i++) reduce_file(&jobs[i], PyBytes_AS_STRING(jobs[i].path), buffer);
    Py_END_ALLOW_THREADS
    free(buffer);
    result = PyList_New(count);
    if (result == NULL) goto cleanup;
    for (Py_ssize_t i = 0; i < count; i++) {
        FileJob *job = &jobs[i];
        PyObject *item;
        if (!job->ok) {
            item = Py_NewRef(Py_None);
        } else {
            PyObject *totals = job->reduced ? totals_tuple(&job->totals, job->digest ? &job->hash : NULL)
                                            : Py_NewRef(Py_None);
            item = totals == NULL ? NULL : Py_BuildValue("(y#nsnN)", (const char *)job->header, job->offset,
                                                         job->size, job->kind, job->count, totals);
        }
        if (item == NULL) {
            Py_CLEAR(result);
            goto cleanup;
        }
        PyList_SET_ITEM(result, i, item);
    }
cleanup:
    for (Py_ssize_t i = 0; i < parsed; i++) {
        Py_XDECREF(jobs[i].path);
        free(jobs[i].header);
    }
    free(jobs);
    return result;
}

static PyMethodDef methods[] = {
    {"reduce", reduce, METH_VARARGS,
     "reduce(buffer, kind, mode, low, high, portable=False, seed=None) -> (nan, pos_inf, neg_inf, zero, neg, "
     "range_count, min, max, sum, abs_sum, sq_sum[, digest]): digest, with an int seed, chains from it"},
    {"reduce_files", reduce_files, METH_VARARGS,
     "reduce_files([(path, mode, bfloat, digest, low, high), ...]) -> [(header, size, kind, count, totals) or None, ...]: "
     "each .npy file read and reduced (float kinds, mode >= 0; else totals None) with the GIL released; None: a file "
     "left to the caller (unreadable, an unusual header, data over 64 MB)"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_statskernel",
                                    "Compiled one-pass tensor statistics (see msdbg/engine/stats.py).", -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__statskernel(void) {
    two_byte_loop = best_2byte_loop();
    digest_loop = best_digest();
    PyObject *kernel = PyModule_Create(&module);
    if (kernel && PyModule_AddIntConstant(kernel, "WIDE_2BYTE", two_byte_loop != portable_2byte) < 0) Py_CLEAR(kernel);
    return kernel;
}
