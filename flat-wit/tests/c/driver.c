/* Test driver for the header flat-wit generates from tests/wit (compiled and
 * run by tests/conformance.rs). Reads records from standard input:
 *
 *   op (1 byte) | type index (1 byte) | width (1 byte: 1, 2, 4) | len (u32 LE) | len bytes
 *
 * op 'V': prints 1 or 0 (the validator's verdict), one per line;
 * op 'D': prints the value rendered through the accessors (the same text as
 *         tests/common/mod.rs renders from flat-layout's views), or "invalid";
 * op 'B': builds a fixed value of the type (len is 0; type 8 here means a
 *         frame with 300 pixels, types 20.. misuses that must fail) with the
 *         in-place builder into a 64 KiB buffer and prints its hex, or "fail";
 * op 'S': like 'B' into a buffer of exactly `len` bytes (capacity test).
 *
 * Every value is built through the generated functions of its type and
 * width only (no flat_wit_* runtime call, no index width by hand). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "messages.h"

static void put_hex(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) printf("%02x", p[i]);
}

static void put_str(flat_wit_str s) {
    printf("s:");
    put_hex((const uint8_t *)s.ptr, s.len);
}

#define RENDERERS(W)                                                                        \
    static void r_strings_##W(const uint8_t *p) {                                           \
        size_t n = strings_##W##_len(p);                                                    \
        printf("[");                                                                        \
        for (size_t i = 0; i < n; i++) {                                                    \
            if (i) printf(" ");                                                             \
            put_str(strings_##W##_get(p, i));                                               \
        }                                                                                   \
        printf("]");                                                                        \
    }                                                                                       \
    static void r_frame_##W(const uint8_t *p) {                                             \
        const uint8_t *px = frame_##W##_pixels(p);                                          \
        printf("{%" PRIu32 " %" PRIu32 " ", frame_##W##_width(p), frame_##W##_height(p));  \
        r_strings_##W(frame_##W##_tags(p));                                                 \
        printf(" b:");                                                                      \
        put_hex(list_u8_##W##_data(px), list_u8_##W##_len(px));                             \
        printf("}");                                                                        \
    }                                                                                       \
    static void r_opt_str_##W(const uint8_t *p) {                                           \
        if (option_string_##W##_is_some(p)) {                                               \
            printf("some(");                                                                \
            put_str(option_string_##W##_get(p));                                            \
            printf(")");                                                                    \
        } else {                                                                            \
            printf("none");                                                                 \
        }                                                                                   \
    }                                                                                       \
    static void r_entry_##W(const uint8_t *p) {                                             \
        printf("{%u ", (unsigned)entry_##W##_id(p));                                        \
        r_strings_##W(entry_##W##_tags(p));                                                 \
        printf(" ");                                                                        \
        r_opt_str_##W(entry_##W##_note(p));                                                 \
        printf(" %d}", entry_##W##_ok(p) ? 1 : 0);                                          \
    }                                                                                       \
    static void r_example4_##W(const uint8_t *p) {                                          \
        const uint8_t *l = example4_##W##_f2(p);                                            \
        printf("(");                                                                        \
        r_opt_str_##W(example4_##W##_f0(p));                                                \
        printf(" %" PRIu32 " [", example4_##W##_f1(p));                                     \
        for (size_t i = 0; i < list_u32_##W##_len(l); i++) {                                \
            printf(i ? " %" PRIu32 : "%" PRIu32, list_u32_##W##_get(l, i));                 \
        }                                                                                   \
        printf("])");                                                                       \
    }                                                                                       \
    static void r_label_##W(const uint8_t *p) {                                             \
        printf("{");                                                                        \
        put_str(label_##W##_text(p));                                                       \
        printf("}");                                                                        \
    }                                                                                       \
    static void r_shape_##W(const uint8_t *p) {                                             \
        switch (shape_##W##_tag(p)) {                                                       \
        case SHAPE_EMPTY: printf("#0"); break;                                              \
        case SHAPE_CIRCLE: printf("#1(%u)", (unsigned)shape_##W##_circle(p)); break;        \
        case SHAPE_LABEL:                                                                   \
            printf("#2(");                                                                  \
            r_label_##W(shape_##W##_label(p));                                              \
            printf(")");                                                                    \
            break;                                                                          \
        default: printf("?"); break;                                                        \
        }                                                                                   \
    }                                                                                       \
    static void r_shapes_##W(const uint8_t *p) {                                            \
        printf("[");                                                                        \
        for (size_t i = 0; i < shapes_##W##_len(p); i++) {                                  \
            if (i) printf(" ");                                                             \
            r_shape_##W(shapes_##W##_get(p, i));                                            \
        }                                                                                   \
        printf("]");                                                                        \
    }                                                                                       \
    static void r_nested_##W(const uint8_t *p) {                                            \
        printf("[");                                                                        \
        for (size_t i = 0; i < nested_##W##_len(p); i++) {                                  \
            const uint8_t *e = nested_##W##_get(p, i);                                      \
            printf(i ? " b:" : "b:");                                                       \
            put_hex(list_u8_##W##_data(e), list_u8_##W##_len(e));                           \
        }                                                                                   \
        printf("]");                                                                        \
    }                                                                                       \
    static void r_color_##W(const uint8_t *p) { printf("#%u", (unsigned)color_##W##_tag(p)); } \
    static void r_kitchen_sink_##W(const uint8_t *p) {                                      \
        const uint8_t *pair = kitchen_sink_##W##_pair(p);                                   \
        const uint8_t *maybe = kitchen_sink_##W##_maybe(p);                                 \
        const uint8_t *frames = kitchen_sink_##W##_frames(p);                               \
        const uint8_t *words = kitchen_sink_##W##_words(p);                                 \
        const uint8_t *ty = kitchen_sink_##W##_type(p);                                    \
        float ratio = kitchen_sink_##W##_ratio(p);                                          \
        double precise = kitchen_sink_##W##_precise(p);                                     \
        uint32_t rb;                                                                        \
        uint64_t pb;                                                                        \
        memcpy(&rb, &ratio, 4);                                                             \
        memcpy(&pb, &precise, 8);                                                           \
        printf("{%d %" PRIu32 " ", kitchen_sink_##W##_flag(p) ? 1 : 0,                      \
               kitchen_sink_##W##_letter(p));                                               \
        r_color_##W(kitchen_sink_##W##_color(p));                                           \
        printf(" %d %d %" PRId32 " %" PRId64 " %" PRIu64 " f:%08" PRIx32 " f:%016" PRIx64,  \
               (int)kitchen_sink_##W##_small(p), (int)kitchen_sink_##W##_wide(p),           \
               kitchen_sink_##W##_medium(p), kitchen_sink_##W##_big(p),                     \
               kitchen_sink_##W##_huge(p), rb, pb);                                         \
        printf(" (%u ", (unsigned)tuple2_u16_string_##W##_f0(pair));                        \
        put_str(tuple2_u16_string_##W##_f1(pair));                                          \
        printf(") ");                                                                       \
        if (option_shape_##W##_is_some(maybe)) {                                            \
            printf("some(");                                                                \
            r_shape_##W(option_shape_##W##_get(maybe));                                     \
            printf(")");                                                                    \
        } else {                                                                            \
            printf("none");                                                                 \
        }                                                                                   \
        printf(" [");                                                                       \
        for (size_t i = 0; i < list_frame_##W##_len(frames); i++) {                         \
            if (i) printf(" ");                                                             \
            r_frame_##W(list_frame_##W##_get(frames, i));                                   \
        }                                                                                   \
        printf("] [");                                                                      \
        for (size_t i = 0; i < list_option_string_##W##_len(words); i++) {                  \
            if (i) printf(" ");                                                             \
            r_opt_str_##W(list_option_string_##W##_get(words, i));                          \
        }                                                                                   \
        printf("] ");                                                                       \
        if (option_list_char_##W##_is_some(ty)) {                                           \
            const uint8_t *chars = option_list_char_##W##_get(ty);                          \
            printf("some([");                                                               \
            for (size_t i = 0; i < list_char_##W##_len(chars); i++) {                       \
                printf(i ? " %" PRIu32 : "%" PRIu32, list_char_##W##_get(chars, i));        \
            }                                                                               \
            printf("])");                                                                   \
        } else {                                                                            \
            printf("none");                                                                 \
        }                                                                                   \
        printf("}");                                                                        \
    }

RENDERERS(u8)
RENDERERS(u16)
RENDERERS(u32)

/* The fixed values built with the builder (the Rust test builds the same
 * values with flat-layout and compares the bytes). */
#define BUILDERS(W)                                                                     \
    static bool b_frame_##W(flat_wit_builder *b, size_t f, uint32_t npix) {                 \
        size_t tags, px;                                                                    \
        if (!frame_##W##_set_width(b, f, 4) || !frame_##W##_set_height(b, f, 2)) return false; \
        if (!list_string_##W##_init(b, frame_##W##_tags_at(f), 2, &tags)) return false;     \
        if (!list_string_##W##_set(b, tags, 0, "camera", 6)) return false;                  \
        if (!list_string_##W##_set(b, tags, 1, "frame-1", 7)) return false;                 \
        if (!list_u8_##W##_init(b, frame_##W##_pixels_at(f), npix, &px)) return false;      \
        for (uint32_t i = 0; i < npix; i++) {                                               \
            if (!list_u8_##W##_set(b, px, i, (uint8_t)i)) return false;                     \
        }                                                                                   \
        return true;                                                                        \
    }                                                                                       \
    static bool build_##W(unsigned ty, flat_wit_builder *b) {                               \
        size_t root, e, payload, some;                                                      \
        switch (ty) {                                                                       \
        case 1: /* frame */                                                                 \
            return frame_##W##_begin(b, &root) && b_frame_##W(b, root, 8);                  \
        case 8: /* a frame with 300 pixels, as `frame` again: too long for u8 */            \
            return frame_##W##_begin(b, &root) && b_frame_##W(b, root, 300);                \
        case 2: /* entry, FORMAT.md example 3 */                                            \
            if (!entry_##W##_begin(b, &root) || !entry_##W##_set_id(b, root, 7)) return false; \
            if (!list_string_##W##_init(b, entry_##W##_tags_at(root), 2, &e)) return false;  \
            if (!list_string_##W##_set(b, e, 0, "a", 1) || !list_string_##W##_set(b, e, 1, "bc", 2)) \
                return false;                                                               \
            if (!option_string_##W##_set_some(b, entry_##W##_note_at(root), "hi", 2)) return false; \
            return entry_##W##_set_ok(b, root, true);                                       \
        case 6: /* shapes, FORMAT.md example 7 */                                           \
            if (!shapes_##W##_begin(b, &root) || !shapes_##W##_init(b, root, 3, &e)) return false; \
            if (!shape_##W##_set_circle(b, shapes_##W##_at(e, 0), 9)) return false;         \
            if (!shape_##W##_set_label(b, shapes_##W##_at(e, 1), &payload)) return false;    \
            if (!label_##W##_set_text(b, payload, "ok", 2)) return false;                   \
            return shape_##W##_set_empty(b, shapes_##W##_at(e, 2));                         \
        case 9: { /* kitchen-sink */                                                        \
            size_t frames, words, chars;                                                    \
            if (!kitchen_sink_##W##_begin(b, &root)) return false;                          \
            if (!kitchen_sink_##W##_set_flag(b, root, true) ||                              \
                !kitchen_sink_##W##_set_letter(b, root, 0x1F600) ||                         \
                !color_##W##_set(b, kitchen_sink_##W##_color_at(root), COLOR_BLUE) ||        \
                !kitchen_sink_##W##_set_small(b, root, -5) ||                               \
                !kitchen_sink_##W##_set_wide(b, root, -300) ||                              \
                !kitchen_sink_##W##_set_medium(b, root, -70000) ||                          \
                !kitchen_sink_##W##_set_big(b, root, INT64_MIN) ||                          \
                !kitchen_sink_##W##_set_huge(b, root, UINT64_MAX) ||                        \
                !kitchen_sink_##W##_set_ratio(b, root, 1.5f) ||                             \
                !kitchen_sink_##W##_set_precise(b, root, -0.25))                            \
                return false;                                                               \
            e = kitchen_sink_##W##_pair_at(root);                                           \
            if (!tuple2_u16_string_##W##_set_f0(b, e, 513) ||                               \
                !tuple2_u16_string_##W##_set_f1(b, e, "p\xc3\xa9", 3))                      \
                return false;                                                               \
            if (!option_shape_##W##_set_some(b, kitchen_sink_##W##_maybe_at(root), &some) ||  \
                !shape_##W##_set_label(b, some, &payload) ||                                \
                !label_##W##_set_text(b, payload, "tag", 3))                                \
                return false;                                                               \
            if (!list_frame_##W##_init(b, kitchen_sink_##W##_frames_at(root), 2, &frames) ||  \
                !b_frame_##W(b, list_frame_##W##_at(frames, 0), 3) ||                       \
                !b_frame_##W(b, list_frame_##W##_at(frames, 1), 0))                         \
                return false;                                                               \
            if (!list_option_string_##W##_init(b, kitchen_sink_##W##_words_at(root), 3, &words) || \
                !option_string_##W##_set_some(b, list_option_string_##W##_at(words, 0), "x", 1) || \
                !option_string_##W##_set_none(b, list_option_string_##W##_at(words, 1)) ||  \
                !option_string_##W##_set_some(b, list_option_string_##W##_at(words, 2), "", 0)) \
                return false;                                                               \
            if (!option_list_char_##W##_set_some(b, kitchen_sink_##W##_type_at(root), 2, &chars) || \
                !list_char_##W##_set(b, chars, 0, 'a') || !list_char_##W##_set(b, chars, 1, 0x10FFFF)) \
                return false;                                                               \
            return true;                                                                    \
        }                                                                                   \
        /* Misuse: each must fail without writing outside the buffer. */                  \
        case 20: /* a second root */                                                        \
            return frame_##W##_begin(b, &root) && frame_##W##_begin(b, &root);              \
        case 21: /* invalid UTF-8 */                                                        \
            return label_##W##_begin(b, &root) && label_##W##_set_text(b, root, "\xed\xa0\x80", 3); \
        case 22: /* a surrogate char */                                                     \
            return kitchen_sink_##W##_begin(b, &root) && kitchen_sink_##W##_set_letter(b, root, 0xD800); \
        case 23: /* enum tag out of range */                                                \
            return color_##W##_begin(b, &root) && color_##W##_set(b, root, 3);              \
        case 24: /* a field of a record that was never reserved */                          \
            return frame_##W##_begin(b, &root) && frame_##W##_set_width(b, root + 100, 1);  \
        case 25: /* a header outside the reserved bytes */                                  \
            return frame_##W##_begin(b, &root) && list_u8_##W##_init(b, 10000, 1, &e);      \
        case 26: /* a list longer than the buffer */                                        \
            return frame_##W##_begin(b, &root) &&                                           \
                   list_u8_##W##_init(b, frame_##W##_pixels_at(root), 255, &e);             \
        case 27: /* an element count that overflows size_t */                               \
            return strings_##W##_begin(b, &root) && strings_##W##_init(b, root, SIZE_MAX / 2, &e); \
        default:                                                                            \
            return false;                                                                   \
        }                                                                                   \
    }

BUILDERS(u8)
BUILDERS(u16)
BUILDERS(u32)

#define DISPATCH(W, F)                                                                      \
    switch (ty) {                                                                           \
    case 0: F(strings, W); break;                                                           \
    case 1: F(frame, W); break;                                                             \
    case 2: F(entry, W); break;                                                             \
    case 3: F(example4, W); break;                                                          \
    case 4: F(label, W); break;                                                             \
    case 5: F(shape, W); break;                                                             \
    case 6: F(shapes, W); break;                                                            \
    case 7: F(nested, W); break;                                                            \
    case 8: F(color, W); break;                                                             \
    case 9: F(kitchen_sink, W); break;                                                      \
    default: fprintf(stderr, "bad type %u\n", ty); exit(2);                                 \
    }

#define VALIDATE(T, W) ok = T##_##W##_validate(data, len)
#define RENDER(T, W)                                                                        \
    if (T##_##W##_validate(data, len)) {                                                    \
        r_##T##_##W(data);                                                                  \
    } else {                                                                                \
        printf("invalid");                                                                  \
    }

int main(void) {
    size_t cap = 1 << 16;
    uint8_t *buf = malloc(cap);
    if (!buf) return 2;
    for (;;) {
        uint8_t head[7];
        size_t got = fread(head, 1, sizeof head, stdin);
        if (got == 0) break;
        if (got != sizeof head) return 3;
        unsigned op = head[0], ty = head[1], w = head[2];
        size_t len = (size_t)head[3] | (size_t)head[4] << 8 | (size_t)head[5] << 16 | (size_t)head[6] << 24;
        if (op == 'V' || op == 'D') {
            /* An exactly sized heap block, so that AddressSanitizer sees any
             * read past the end. */
            uint8_t *data = malloc(len ? len : 1);
            if (!data) return 2;
            if (fread(data, 1, len, stdin) != len) return 3;
            bool ok = false;
            if (op == 'V') {
                if (w == 1) { DISPATCH(u8, VALIDATE) } else if (w == 2) { DISPATCH(u16, VALIDATE) } else { DISPATCH(u32, VALIDATE) }
                printf("%d\n", ok ? 1 : 0);
            } else {
                if (w == 1) { DISPATCH(u8, RENDER) } else if (w == 2) { DISPATCH(u16, RENDER) } else { DISPATCH(u32, RENDER) }
                printf("\n");
                (void)ok;
            }
            free(data);
        } else if (op == 'B' || op == 'S') {
            flat_wit_builder bld;
            size_t used = 0;
            size_t size = op == 'S' ? len : cap;
            /* An exactly sized heap block, so that AddressSanitizer sees any
             * write past the end. */
            uint8_t *out = malloc(size ? size : 1);
            bool ok;
            if (!out) return 2;
            flat_wit_builder_init(&bld, out, size);
            ok = w == 1 ? build_u8(ty, &bld) : w == 2 ? build_u16(ty, &bld) : build_u32(ty, &bld);
            if (ok != flat_wit_builder_finish(&bld, &used)) return 4; /* sticky failure */
            if (ok && bld.tail > size) return 5;
            if (ok) {
                put_hex(out, used);
                printf("\n");
            } else {
                printf("fail\n");
            }
            free(out);
        } else {
            return 3;
        }
    }
    free(buf);
    return 0;
}
