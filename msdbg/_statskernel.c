/* One-pass statistics of a flat, contiguous buffer: the compiled kernel of msdbg/engine/stats.py.
 *
 * reduce(buffer, kind, mode, low, high) reads the buffer once, in blocks of BLOCK elements (the GIL released
 * from GIL_RELEASE_BYTES up), and returns
 * (nan, pos_inf, neg_inf, zero, neg, range_count, min, max, sum, abs_sum, sq_sum):
 *   kind   'e' float16, 'f' float32, 'd' float64, 'B' bfloat16 (raw bits), 'i1' 'i2' 'i4' 'i8' 'u1' 'u2' 'u4' 'u8'
 *          integers, '?' bool (integers and bool are read as float64 and hold no NaN/Inf);
 *   mode   0: count NaN/+Inf/-Inf only (the other fields are 0); 1: every statistic but range_count (0);
 *          2: every statistic;
 *   low, high  range_count counts finite values in [low, high] (compared exactly, as float64).
 * Conventions follow stats.py: NaN/Inf are counted apart and every other statistic covers the finite values;
 * -0.0 is zero; min/max are NaN when there is no finite value.
 *
 * Each block is probed for NaN/Inf on its bits; a finite block is reduced by one loop the compiler vectorises
 * (OpenMP SIMD reductions, -fopenmp-simd: no OpenMP runtime), a block holding NaN/Inf element by element. Sums:
 * float64 for float64 data, integers and buffers under FAST_MIN values (each float32 value and its square are
 * exact in float64); otherwise float32 within a block across the SIMD lanes (fast_body, which also probes the
 * bits and widens 2-byte floats in the same loop) and float64 across blocks.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

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
    double low, high;   /* range bounds for float64 values */
    float low32, high32; /* the same bounds for float32 values: x >= low <=> x >= low32 (exact) */
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

/* float32 values, summed in float64: each value and its square are exact in float64. */
CLONES static void finite_f32_exact(const float *x, Py_ssize_t n, const Request *req, Totals *t) {
    float lo = INFINITY, hi = -INFINITY;
    double sum = 0.0, abs_sum = 0.0, sq_sum = 0.0;
    int64_t zero = 0, neg = 0, range = 0;
    const float l = req->low32, h = req->high32;
#pragma omp simd reduction(min:lo) reduction(max:hi) reduction(+:sum, abs_sum, sq_sum, zero, neg, range)
    for (Py_ssize_t i = 0; i < n; i++) {
        float v = x[i];
        double d = (double)v;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
        sum += d;
        abs_sum += fabs(d);
        sq_sum += d * d;
        zero += v == 0.0f;
        neg += v < 0.0f;
        range += (v >= l) & (v <= h);
    }
    if (n) {
        t->min = fmin(t->min, lo);
        t->max = fmax(t->max, hi);
    }
    t->sum += sum; t->abs_sum += abs_sum; t->sq_sum += sq_sum;
    t->zero += zero; t->neg += neg; t->range += range;
}

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
    t->min = fmin(t->min, lo);
    t->max = fmax(t->max, hi);
    t->sum += sum; t->abs_sum += abs_sum; t->sq_sum += sq_sum;
    t->zero += zero; t->neg += neg; t->range += range;
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
static int finite_f32(const float *x, Py_ssize_t n, Py_ssize_t total, const Request *req, Totals *t) {
    int done = total >= FAST_MIN ? fast_block(x, n, req, t, F32) : -1;
    if (done >= 0) return done;
    if (nonfinite32((const void *)x, n)) return 0;
    finite_f32_exact(x, n, req, t);
    return 1;
}

CLONES static void finite_f64(const double *x, Py_ssize_t n, const Request *req, Totals *t) {
    double lo = INFINITY, hi = -INFINITY, sum = 0.0, abs_sum = 0.0, sq_sum = 0.0;
    int64_t zero = 0, neg = 0, range = 0;
    const double l = req->low, h = req->high;
#pragma omp simd reduction(min:lo) reduction(max:hi) reduction(+:sum, abs_sum, sq_sum, zero, neg, range)
    for (Py_ssize_t i = 0; i < n; i++) {
        double v = x[i];
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
        sum += v;
        abs_sum += fabs(v);
        sq_sum += v * v;
        zero += v == 0.0;
        neg += v < 0.0;
        range += (v >= l) & (v <= h);
    }
    if (n) {
        t->min = fmin(t->min, lo);
        t->max = fmax(t->max, hi);
    }
    t->sum += sum; t->abs_sum += abs_sum; t->sq_sum += sq_sum;
    t->zero += zero; t->neg += neg; t->range += range;
}

/* ----- blocks holding NaN/Inf: element by element ---------------------------------------------------------- */

static void mixed_value(double v, const Request *req, Totals *t) {
    if (v != v) { t->nan++; return; }
    if (isinf(v)) { if (v > 0) t->pos_inf++; else t->neg_inf++; return; }
    if (!req->full) return;
    t->min = fmin(t->min, v);
    t->max = fmax(t->max, v);
    t->sum += v; t->abs_sum += fabs(v); t->sq_sum += v * v;
    t->zero += v == 0.0; t->neg += v < 0.0; t->range += (v >= req->low) & (v <= req->high);
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

/* ----- whole buffers --------------------------------------------------------------------------------------- */

/* The overflow check alone probes spans of PROBE elements, and counts element by element only in those with NaN/Inf. */
#define PROBE (32 * BLOCK)
#define PROBE_ONLY(TYPE, ANY_NONFINITE, VALUE)                                                                  \
    for (Py_ssize_t start = 0; start < n; start += PROBE) {                                                     \
        Py_ssize_t len = n - start < PROBE ? n - start : PROBE;                                                 \
        const TYPE *span = x + start;                                                                           \
        if (ANY_NONFINITE)                                                                                      \
            for (Py_ssize_t i = 0; i < len; i++) mixed_value(VALUE, req, t);                                    \
    }

static void reduce_f32(const float *x, Py_ssize_t n, const Request *req, Totals *t) {
    if (!req->full) {
        PROBE_ONLY(float, nonfinite32((const uint32_t *)span, len), span[i])
        return;
    }
    for (Py_ssize_t start = 0; start < n; start += BLOCK) {
        Py_ssize_t len = n - start < BLOCK ? n - start : BLOCK;
        const float *block = x + start;
        if (!finite_f32(block, len, n, req, t))
            for (Py_ssize_t i = 0; i < len; i++) mixed_value(block[i], req, t);
    }
}

static void reduce_f64(const double *x, Py_ssize_t n, const Request *req, Totals *t) {
    if (!req->full) {
        PROBE_ONLY(double, nonfinite64((const uint64_t *)span, len), span[i])
        return;
    }
    for (Py_ssize_t start = 0; start < n; start += BLOCK) {
        Py_ssize_t len = n - start < BLOCK ? n - start : BLOCK;
        const double *block = x + start;
        if (nonfinite64((const uint64_t *)block, len) == 0) {
            if (req->full) finite_f64(block, len, req, t);
        } else {
            for (Py_ssize_t i = 0; i < len; i++) mixed_value(block[i], req, t);
        }
    }
}

static void reduce_2byte(const uint16_t *x, Py_ssize_t n, int bfloat, const Request *req, Totals *t) {
    float values[BLOCK];
    const uint16_t exponent = bfloat ? 0x7F80u : 0x7C00u;
    if (!req->full) {
        PROBE_ONLY(uint16_t, nonfinite16(span, len, exponent), bfloat ? bfloat_value(span[i]) : half_value(span[i]))
        return;
    }
    for (Py_ssize_t start = 0; start < n; start += BLOCK) {
        Py_ssize_t len = n - start < BLOCK ? n - start : BLOCK;
        const uint16_t *block = x + start;
        int done = req->full && n >= FAST_MIN ? fast_block(block, len, req, t, bfloat ? BF16 : F16) : -1;
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
        for (Py_ssize_t start = 0; start < n; start += BLOCK) {                                                 \
            Py_ssize_t len = n - start < BLOCK ? n - start : BLOCK;                                             \
            for (Py_ssize_t i = 0; i < len; i++) values[i] = (double)x[start + i];                              \
            finite_f64(values, len, req, t);                                                                    \
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

static PyObject *reduce(PyObject *self, PyObject *args) {
    Py_buffer view;
    const char *kind;
    int mode;
    double low, high;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*sidd", &view, &kind, &mode, &low, &high)) return NULL;
    static const struct { const char *kind; int size; } sizes[] = {
        {"e", 2}, {"B", 2}, {"f", 4}, {"d", 8}, {"i1", 1}, {"i2", 2}, {"i4", 4}, {"i8", 8},
        {"u1", 1}, {"u2", 2}, {"u4", 4}, {"u8", 8}, {"?", 1}};
    int size = 0;
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++)
        if (strcmp(kind, sizes[k].kind) == 0) size = sizes[k].size;
    if (size == 0 || view.len % size) {
        PyBuffer_Release(&view);
        PyErr_Format(PyExc_ValueError, "reduce: kind %s does not fit a buffer of %zd bytes", kind, view.len);
        return NULL;
    }
    Py_ssize_t n = view.len / size;
    Request req = {mode > 0, mode == 2, low, high, float32_bound(low, 1), float32_bound(high, 0)};
    Totals t = {0, 0, 0, 0, 0, 0, NAN, NAN, 0.0, 0.0, 0.0};
    const void *data = view.buf;
    int integers = kind[0] == 'i' || kind[0] == 'u' || kind[0] == '?';
    /* Small buffers are reduced holding the GIL: taking it back after a few microseconds of work can wait for
       another thread's switch interval, and each hand-over costs more than the work (a step's many small tensors
       on a worker thread beside the training). */
    PyThreadState *released = view.len >= GIL_RELEASE_BYTES ? PyEval_SaveThread() : NULL;
    if (kind[0] == 'f') reduce_f32(data, n, &req, &t);
    else if (kind[0] == 'd') reduce_f64(data, n, &req, &t);
    else if (kind[0] == 'e') reduce_2byte(data, n, 0, &req, &t);
    else if (kind[0] == 'B') reduce_2byte(data, n, 1, &req, &t);
    else if (integers && req.full) {
        if (kind[0] == '?' || strcmp(kind, "u1") == 0) reduce_u1(data, n, &req, &t);
        else if (strcmp(kind, "i1") == 0) reduce_i1(data, n, &req, &t);
        else if (strcmp(kind, "i2") == 0) reduce_i2(data, n, &req, &t);
        else if (strcmp(kind, "i4") == 0) reduce_i4(data, n, &req, &t);
        else if (strcmp(kind, "i8") == 0) reduce_i8(data, n, &req, &t);
        else if (strcmp(kind, "u2") == 0) reduce_u2(data, n, &req, &t);
        else if (strcmp(kind, "u4") == 0) reduce_u4(data, n, &req, &t);
        else reduce_u8(data, n, &req, &t);
    }
    if (released != NULL) PyEval_RestoreThread(released);
    PyBuffer_Release(&view);
    return Py_BuildValue("(LLLLLLddddd)", (long long)t.nan, (long long)t.pos_inf, (long long)t.neg_inf,
                         (long long)t.zero, (long long)t.neg, (long long)t.range, t.min, t.max, t.sum, t.abs_sum,
                         t.sq_sum);
}

static PyMethodDef methods[] = {
    {"reduce", reduce, METH_VARARGS,
     "reduce(buffer, kind, mode, low, high) -> (nan, pos_inf, neg_inf, zero, neg, range_count, min, max, sum, "
     "abs_sum, sq_sum)"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_statskernel",
                                    "Compiled one-pass tensor statistics (see msdbg/engine/stats.py).", -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__statskernel(void) { return PyModule_Create(&module); }
