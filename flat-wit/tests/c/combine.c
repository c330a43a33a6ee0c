/* Headers generated separately, all in one translation unit
 * (tests/c_headers.rs writes them): package flat-wit:test with the default
 * prefix at u8 and at u16 (`flat-wit c --width u8`, then `--width u16`), at
 * u8+u16 and u16+u32 (overlapping the first two), only `frame` and only
 * `entry` at u32; and two packages that declare the same type names
 * (one:pkg and two:pkg, default prefixes). Each builds and validates what
 * it declares; any part that was skipped, defined twice or clashing fails
 * the build (-Wall -Wextra -pedantic -Werror) or the run.
 *
 * Prints "ok" and exits with 0 when every check passes. */
#include <stdio.h>
#include <string.h>

/* First the case alone: u8, then u16 (used below before any other
 * header could declare the u16 functions). */
#include "messages_u8.h"
#include "messages_u16.h"

static int failures = 0;

#define CHECK(cond)                                                                         \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond);                      \
            failures++;                                                                     \
        }                                                                                   \
    } while (0)

#define FRAME(W, WU, WB)                                                                    \
    static void frame_##W(void) {                                                           \
        uint8_t buf[64];                                                                    \
        flat_wit_builder b;                                                                 \
        size_t f, tags, used;                                                               \
        flat_wit_builder_init(&b, buf, sizeof buf);                                         \
        CHECK(flat_wit_test_frame_##W##_begin(&b, &f));                                    \
        CHECK(flat_wit_test_frame_##W##_set_width(&b, f, 640));                            \
        CHECK(flat_wit_test_list_string_##W##_init(&b, flat_wit_test_frame_##W##_tags_at(f), 1, &tags)); \
        CHECK(flat_wit_test_list_string_##W##_set(&b, tags, 0, "front", 5));               \
        CHECK(flat_wit_builder_finish(&b, &used));                                          \
        CHECK(flat_wit_test_frame_##W##_validate(buf, used));                               \
        CHECK(flat_wit_test_frame_##W##_width(buf) == 640);                                 \
        CHECK(flat_wit_test_list_string_##W##_get(flat_wit_test_frame_##W##_tags(buf), 0).len == 5); \
        /* Two u32 and two headers of two indexes. */                                    \
        CHECK(FLAT_WIT_TEST_FRAME_##WU##_SIZE == 8 + 4 * WB);                               \
    }

FRAME(u8, U8, 1)
FRAME(u16, U16, 2)

/* Then widths that overlap those, single types, and other packages. */
#include "messages_u8_u16.h"
#include "messages_u16_u32.h"
#include "frame_u32.h"
#include "entry_u32.h"
#include "one.h"
#include "two.h"

FRAME(u32, U32, 4)

static void entry_u32(void) {
    uint8_t buf[64];
    flat_wit_builder b;
    size_t e, used;
    flat_wit_builder_init(&b, buf, sizeof buf);
    CHECK(flat_wit_test_entry_u32_begin(&b, &e));
    CHECK(flat_wit_test_entry_u32_set_id(&b, e, 7));
    CHECK(flat_wit_test_option_string_u32_set_some(&b, flat_wit_test_entry_u32_note_at(e), "hi", 2));
    CHECK(flat_wit_builder_finish(&b, &used));
    CHECK(flat_wit_test_entry_u32_validate(buf, used));
    CHECK(flat_wit_test_option_string_u32_is_some(flat_wit_test_entry_u32_note(buf)));
}

/* one:pkg and two:pkg both declare `status` and `frame`, differently. */
static void two_packages(void) {
    uint8_t buf[64];
    flat_wit_builder b;
    size_t s, used;
    flat_wit_str text;

    flat_wit_builder_init(&b, buf, sizeof buf);
    CHECK(one_pkg_status_u16_begin(&b, &s));
    CHECK(one_pkg_status_u16_set_degraded(&b, s, "dust", 4));
    CHECK(flat_wit_builder_finish(&b, &used));
    CHECK(one_pkg_status_u16_validate(buf, used));
    CHECK(one_pkg_status_u16_tag(buf) == ONE_PKG_STATUS_DEGRADED);
    text = one_pkg_status_u16_degraded(buf);
    CHECK(text.len == 4 && memcmp(text.ptr, "dust", 4) == 0);

    flat_wit_builder_init(&b, buf, sizeof buf);
    CHECK(two_pkg_status_u16_begin(&b, &s));
    CHECK(two_pkg_status_u16_set_degraded(&b, s, 99));
    CHECK(flat_wit_builder_finish(&b, &used));
    CHECK(two_pkg_status_u16_validate(buf, used));
    CHECK(two_pkg_status_u16_tag(buf) == TWO_PKG_STATUS_DEGRADED);
    CHECK(two_pkg_status_u16_degraded(buf) == 99);

    CHECK(ONE_PKG_STATUS_DEGRADED == 1 && TWO_PKG_STATUS_DEGRADED == 2);
    CHECK(ONE_PKG_FRAME_U16_SIZE == 1 && TWO_PKG_FRAME_U16_SIZE == 4);
}

int main(void) {
    frame_u8();
    frame_u16();
    frame_u32();
    entry_u32();
    two_packages();
    if (failures) return 1;
    printf("ok\n");
    return 0;
}
