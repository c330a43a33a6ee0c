/* flat-wit C runtime: shared by every header flat-wit generates (included
 * once). Implements the flat format (flat-layout FORMAT.md): reading
 * little-endian values, validating regions with the claimed-bytes rule and
 * UTF-8, and an in-place builder that never writes outside its buffer. */
#ifndef FLAT_WIT_RUNTIME_V1
#define FLAT_WIT_RUNTIME_V1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A string inside a validated buffer: `len` bytes of UTF-8 at `ptr`
 * (not NUL-terminated). */
typedef struct {
    const char *ptr;
    size_t len;
} flat_wit_str;

/* ---------------------------------------------------------------- reading */

static inline uint64_t flat_wit_le(const uint8_t *p, unsigned n) {
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++) {
        v |= (uint64_t)p[i] << (8u * i);
    }
    return v;
}

static inline bool flat_wit_get_bool(const uint8_t *p) { return p[0] == 1; }
static inline uint8_t flat_wit_get_u8(const uint8_t *p) { return p[0]; }
static inline uint16_t flat_wit_get_u16(const uint8_t *p) { return (uint16_t)flat_wit_le(p, 2); }
static inline uint32_t flat_wit_get_u32(const uint8_t *p) { return (uint32_t)flat_wit_le(p, 4); }
static inline uint64_t flat_wit_get_u64(const uint8_t *p) { return flat_wit_le(p, 8); }
static inline int8_t flat_wit_get_s8(const uint8_t *p) { return (int8_t)p[0]; }
static inline int16_t flat_wit_get_s16(const uint8_t *p) { return (int16_t)flat_wit_get_u16(p); }
static inline int32_t flat_wit_get_s32(const uint8_t *p) { return (int32_t)flat_wit_get_u32(p); }
static inline int64_t flat_wit_get_s64(const uint8_t *p) { return (int64_t)flat_wit_get_u64(p); }
static inline uint32_t flat_wit_get_char(const uint8_t *p) { return flat_wit_get_u32(p); }
static inline float flat_wit_get_f32(const uint8_t *p) {
    uint32_t bits = flat_wit_get_u32(p);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}
static inline double flat_wit_get_f64(const uint8_t *p) {
    uint64_t bits = flat_wit_get_u64(p);
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

/* The contents of the string or list whose header pair (index width `w`
 * bytes) is at `p`, and its length. Only for validated buffers. */
static inline const uint8_t *flat_wit_region(const uint8_t *p, unsigned w) {
    return p + (size_t)flat_wit_le(p, w);
}
static inline size_t flat_wit_count(const uint8_t *p, unsigned w) {
    return (size_t)flat_wit_le(p + w, w);
}
static inline flat_wit_str flat_wit_get_str(const uint8_t *p, unsigned w) {
    flat_wit_str s;
    s.ptr = (const char *)flat_wit_region(p, w);
    s.len = flat_wit_count(p, w);
    return s;
}

/* ---------------------------------------------------------------- validation */

/* Validation state: the buffer and the end of the bytes claimed so far
 * (FORMAT.md §4.1). */
typedef struct {
    const uint8_t *buf;
    size_t len;
    size_t claimed;
} flat_wit_validator;

/* UTF-8 exactly as Rust's core::str::from_utf8: no overlong forms, no
 * surrogates, nothing above U+10FFFF. */
static inline bool flat_wit_utf8(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint8_t lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else {
            return false;
        }
        if (n - i - 1 < need) return false;
        if (s[i + 1] < lo || s[i + 1] > hi) return false;
        for (size_t k = 2; k <= need; k++) {
            if (s[i + k] < 0x80 || s[i + k] > 0xBF) return false;
        }
        i += need + 1;
    }
    return true;
}

/* Checks the header pair at `h` (width `w`) of a region of `count * unit`
 * bytes: no overflow, inside the buffer, and (if not empty) at or after the
 * claimed end, which it then moves. */
static inline bool flat_wit_claim(flat_wit_validator *v, size_t h, unsigned w, size_t unit,
                                  size_t *start, size_t *count) {
    if (h > v->len || v->len - h < 2u * w) return false;
    uint64_t offset = flat_wit_le(v->buf + h, w);
    uint64_t n = flat_wit_le(v->buf + h + w, w);
    uint64_t s = (uint64_t)h + offset; /* both < 2^32 + SIZE_MAX: no overflow in 64 bits */
    if (s < (uint64_t)h) return false;
    uint64_t bytes = 0;
    if (n != 0 && (uint64_t)unit != 0) {
        if ((uint64_t)unit > UINT64_MAX / n) return false;
        bytes = n * (uint64_t)unit;
    }
    if (bytes > UINT64_MAX - s) return false;
    uint64_t end = s + bytes;
    if (end > (uint64_t)v->len) return false;
    if (bytes > 0) {
        if (s < (uint64_t)v->claimed) return false;
        v->claimed = (size_t)end;
    }
    *start = (size_t)s;
    *count = (size_t)n;
    return true;
}

static inline bool flat_wit_check_str(flat_wit_validator *v, size_t h, unsigned w) {
    size_t start, n;
    if (!flat_wit_claim(v, h, w, 1, &start, &n)) return false;
    return flat_wit_utf8(v->buf + start, n);
}

static inline bool flat_wit_check_char(const flat_wit_validator *v, size_t pos) {
    uint32_t c = flat_wit_get_u32(v->buf + pos);
    return c < 0xD800u || (c > 0xDFFFu && c <= 0x10FFFFu);
}

/* ---------------------------------------------------------------- building */

/* An in-place builder over a caller's buffer: the value's inline bytes at 0,
 * strings and lists appended at `tail` (FORMAT.md §3). Every function
 * returns false (and sets `failed`) instead of writing outside the buffer or
 * writing an offset or length that does not fit the index width. */
typedef struct {
    uint8_t *buf;
    size_t cap;
    size_t tail;
    bool failed;
} flat_wit_builder;

static inline void flat_wit_builder_init(flat_wit_builder *b, uint8_t *buf, size_t cap) {
    b->buf = buf;
    b->cap = buf ? cap : 0;
    b->tail = 0;
    b->failed = false;
}

/* The number of bytes to hand on, or false if any step failed. */
static inline bool flat_wit_builder_finish(const flat_wit_builder *b, size_t *used) {
    if (b->failed) return false;
    *used = b->tail;
    return true;
}

static inline bool flat_wit_fail(flat_wit_builder *b) {
    b->failed = true;
    return false;
}

/* Whether `n` bytes at `pos` lie in the reserved part of the buffer. */
static inline bool flat_wit_room(const flat_wit_builder *b, size_t pos, size_t n) {
    return pos <= b->tail && n <= b->tail - pos;
}

/* Reserves `n` zeroed bytes at the tail. */
static inline bool flat_wit_reserve(flat_wit_builder *b, size_t n, size_t *pos) {
    if (b->tail > b->cap || n > b->cap - b->tail) return flat_wit_fail(b);
    memset(b->buf + b->tail, 0, n);
    *pos = b->tail;
    b->tail += n;
    return true;
}

/* Reserves the root's `size` inline bytes (the first call on a builder). */
static inline bool flat_wit_begin(flat_wit_builder *b, size_t size, size_t *pos) {
    if (b->tail != 0) return flat_wit_fail(b);
    return flat_wit_reserve(b, size, pos);
}

static inline bool flat_wit_put_le(flat_wit_builder *b, size_t pos, uint64_t v, unsigned n) {
    if (!flat_wit_room(b, pos, n)) return flat_wit_fail(b);
    for (unsigned i = 0; i < n; i++) {
        b->buf[pos + i] = (uint8_t)(v >> (8u * i));
    }
    return true;
}

static inline bool flat_wit_zero(flat_wit_builder *b, size_t pos, size_t n) {
    if (!flat_wit_room(b, pos, n)) return flat_wit_fail(b);
    memset(b->buf + pos, 0, n);
    return true;
}

static inline bool flat_wit_put_bool(flat_wit_builder *b, size_t pos, bool v) { return flat_wit_put_le(b, pos, v ? 1u : 0u, 1); }
static inline bool flat_wit_put_u8(flat_wit_builder *b, size_t pos, uint8_t v) { return flat_wit_put_le(b, pos, v, 1); }
static inline bool flat_wit_put_u16(flat_wit_builder *b, size_t pos, uint16_t v) { return flat_wit_put_le(b, pos, v, 2); }
static inline bool flat_wit_put_u32(flat_wit_builder *b, size_t pos, uint32_t v) { return flat_wit_put_le(b, pos, v, 4); }
static inline bool flat_wit_put_u64(flat_wit_builder *b, size_t pos, uint64_t v) { return flat_wit_put_le(b, pos, v, 8); }
static inline bool flat_wit_put_s8(flat_wit_builder *b, size_t pos, int8_t v) { return flat_wit_put_le(b, pos, (uint8_t)v, 1); }
static inline bool flat_wit_put_s16(flat_wit_builder *b, size_t pos, int16_t v) { return flat_wit_put_le(b, pos, (uint16_t)v, 2); }
static inline bool flat_wit_put_s32(flat_wit_builder *b, size_t pos, int32_t v) { return flat_wit_put_le(b, pos, (uint32_t)v, 4); }
static inline bool flat_wit_put_s64(flat_wit_builder *b, size_t pos, int64_t v) { return flat_wit_put_le(b, pos, (uint64_t)v, 8); }
static inline bool flat_wit_put_f32(flat_wit_builder *b, size_t pos, float v) {
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    return flat_wit_put_le(b, pos, bits, 4);
}
static inline bool flat_wit_put_f64(flat_wit_builder *b, size_t pos, double v) {
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return flat_wit_put_le(b, pos, bits, 8);
}
/* Fails for surrogates and values above U+10FFFF. */
static inline bool flat_wit_put_char(flat_wit_builder *b, size_t pos, uint32_t c) {
    if (!(c < 0xD800u || (c > 0xDFFFu && c <= 0x10FFFFu))) return flat_wit_fail(b);
    return flat_wit_put_le(b, pos, c, 4);
}

/* Writes the header pair at `h` (width `w`) of a region of `count` units of
 * `unit` bytes and reserves the region (zeroed) at the tail; `*start` is
 * its position. Empty regions get offset 0 and reserve nothing. */
static inline bool flat_wit_alloc(flat_wit_builder *b, size_t h, unsigned w, size_t count,
                                  size_t unit, size_t *start) {
    uint64_t max = w == 1 ? 0xFFu : w == 2 ? 0xFFFFu : 0xFFFFFFFFu;
    if (!flat_wit_room(b, h, 2u * w)) return flat_wit_fail(b);
    if ((uint64_t)count > max) return flat_wit_fail(b);
    if (unit != 0 && count > SIZE_MAX / unit) return flat_wit_fail(b);
    size_t bytes = count * unit;
    size_t offset = 0;
    size_t s = h;
    if (bytes > 0) {
        offset = b->tail - h; /* h + 2w <= tail */
        if ((uint64_t)offset > max) return flat_wit_fail(b);
        if (!flat_wit_reserve(b, bytes, &s)) return false;
    }
    if (!flat_wit_put_le(b, h, offset, w) || !flat_wit_put_le(b, h + w, count, w)) return false;
    *start = s;
    return true;
}

/* Writes the string `s` (`n` bytes of UTF-8, checked) for the header at `h`. */
static inline bool flat_wit_put_str(flat_wit_builder *b, size_t h, unsigned w, const char *s,
                                    size_t n) {
    size_t start;
    if (n > 0 && s == NULL) return flat_wit_fail(b);
    if (!flat_wit_utf8((const uint8_t *)s, n)) return flat_wit_fail(b);
    if (!flat_wit_alloc(b, h, w, n, 1, &start)) return false;
    if (n > 0) memcpy(b->buf + start, s, n);
    return true;
}

#endif /* FLAT_WIT_RUNTIME_V1 */
