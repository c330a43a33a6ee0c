/* Builds a `report` (tests/wit-payloads, package flat-wit:payloads, default
 * prefix) once per case of `status` at every index width, each payload
 * through the generated setter of its kind: a scalar or a string in the
 * setter's call, a list allocated by it, anything else at the position it
 * gives to that type's own functions. No flat_wit_* runtime call and no
 * index width by hand: the generated functions carry the width.
 *
 * Prints one line per width and case: "<width bytes> <case> <hex>"; the
 * Rust test compares it with flat-layout's encoding of the same value.
 * Exits with 4 if a build fails, 5 if the generated validator rejects what
 * the builder wrote. */
#include <stdio.h>
#include <stdlib.h>

#include "payloads.h"

#define CASES 14

/* A generated name: the package prefix, the type, the width, the function. */
#define N(T, W, F) flat_wit_payloads_##T##_##W##_##F

static void put_hex(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) printf("%02x", p[i]);
}

#define BUILD(W)                                                                            \
    static bool status_##W(flat_wit_builder *b, size_t pos, unsigned k) {                  \
        size_t e, pl;                                                                       \
        switch (k) {                                                                        \
        case 0: return N(status, W, set_ok)(b, pos);                                        \
        case 1: return N(status, W, set_code)(b, pos, 513);                                 \
        case 2: return N(status, W, set_flag)(b, pos, true);                                \
        case 3: return N(status, W, set_letter)(b, pos, 0x1F600);                           \
        case 4: return N(status, W, set_ratio)(b, pos, -0.25);                              \
        case 5: return N(status, W, set_degraded)(b, pos, "dust", 4);                       \
        case 6: return N(status, W, set_word)(b, pos, "w\xc3\xa9", 3);                      \
        case 7:                                                                             \
            return N(status, W, set_reasons)(b, pos, 2, &e) &&                              \
                   N(list_string, W, set)(b, e, 0, "a", 1) &&                               \
                   N(list_string, W, set)(b, e, 1, "bc", 2);                                \
        case 8:                                                                             \
            return N(status, W, set_names)(b, pos, 1, &e) && N(names, W, set)(b, e, 0, "n", 1); \
        case 9:                                                                             \
            return N(status, W, set_note)(b, pos, &pl) &&                                   \
                   N(option_string, W, set_some)(b, pl, "hi", 2);                           \
        case 10:                                                                            \
            return N(status, W, set_at)(b, pos, &pl) && N(point, W, set_x)(b, pl, -3) &&    \
                   N(point, W, set_y)(b, pl, 4);                                            \
        case 11:                                                                            \
            return N(status, W, set_pair)(b, pos, &pl) &&                                   \
                   N(tuple2_u8_string, W, set_f0)(b, pl, 9) &&                              \
                   N(tuple2_u8_string, W, set_f1)(b, pl, "x", 1);                           \
        case 12:                                                                            \
            return N(status, W, set_level)(b, pos, &pl) &&                                  \
                   N(level, W, set)(b, pl, FLAT_WIT_PAYLOADS_LEVEL_HIGH);                   \
        case 13:                                                                            \
            return N(status, W, set_inner)(b, pos, &pl) &&                                  \
                   N(inner, W, set_text)(b, pl, "in", 2);                                   \
        default: return false;                                                              \
        }                                                                                   \
    }                                                                                       \
    static bool report_##W(flat_wit_builder *b, unsigned k) {                               \
        size_t root, e, pl;                                                                 \
        return N(report, W, begin)(b, &root) && N(report, W, set_id)(b, root, 7) &&          \
               status_##W(b, N(report, W, status_at)(root), k) &&                           \
               N(option_u16, W, set_some)(b, N(report, W, maybe_code_at)(root), 65535) &&    \
               N(option_string, W, set_some)(b, N(report, W, maybe_text_at)(root), "t", 1) && \
               N(option_list_u32, W, set_some)(b, N(report, W, maybe_numbers_at)(root), 2, &e) && \
               N(list_u32, W, set)(b, e, 0, 1) && N(list_u32, W, set)(b, e, 1, 0x01020304) && \
               N(option_point, W, set_some)(b, N(report, W, maybe_point_at)(root), &pl) &&   \
               N(point, W, set_x)(b, pl, 5) && N(point, W, set_y)(b, pl, -6) &&             \
               N(option_option_string, W, set_some)(b, N(report, W, maybe_nested_at)(root), &pl) && \
               N(option_string, W, set_some)(b, pl, "deep", 4) &&                           \
               N(list_status, W, init)(b, N(report, W, statuses_at)(root), 2, &e) &&         \
               status_##W(b, N(list_status, W, at)(e, 0), k) &&                             \
               status_##W(b, N(list_status, W, at)(e, 1), (k + 1) % CASES) &&               \
               N(report, W, set_after)(b, root, "end", 3);                                  \
    }                                                                                       \
    static int run_##W(unsigned wb, uint8_t *buf, size_t cap) {                             \
        for (unsigned k = 0; k < CASES; k++) {                                              \
            flat_wit_builder b;                                                             \
            size_t used;                                                                    \
            flat_wit_builder_init(&b, buf, cap);                                            \
            if (!report_##W(&b, k) || !flat_wit_builder_finish(&b, &used)) return 4;        \
            if (!N(report, W, validate)(buf, used)) return 5;                               \
            printf("%u %u ", wb, k);                                                        \
            put_hex(buf, used);                                                             \
            printf("\n");                                                                   \
        }                                                                                   \
        return 0;                                                                           \
    }

BUILD(u8)
BUILD(u16)
BUILD(u32)

int main(void) {
    size_t cap = 1024;
    uint8_t *buf = malloc(cap);
    int rc;
    if (!buf) return 2;
    rc = run_u8(1, buf, cap);
    if (rc == 0) rc = run_u16(2, buf, cap);
    if (rc == 0) rc = run_u32(4, buf, cap);
    free(buf);
    return rc;
}
