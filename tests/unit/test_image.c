/* Image decoding and CLIP preprocessing against Pillow + transformers' CLIPImageProcessor
 * (tests/data/models5/gen_goldens.py): for each generated test image (PNG RGB/RGBA/palette/
 * grey/16-bit grey, JPEG 4:2:0/4:2:2/4:4:4/grey, WebP lossy/lossless+alpha, GIF; odd sizes and
 * aspect ratios, up- and downscaling) the 224×224 uint8 image the processor normalises
 * (*.pixels.png) and so its pixel values; then hostile inputs: truncated, corrupt, zero-size,
 * huge dimensions (refused before any allocation), unknown and mismatched formats. */
#include <cjson/cJSON.h>
#include <math.h>
#include <zlib.h>

#include "io/image.h"
#include "test_support.h"

static uint8_t *read_data(const char *rel, size_t *len) {
    uint8_t *b = dc_test_read_file(dc_test_data_path(rel), len);
    assert_non_null(b);
    return b;
}

static void test_images_match_clip_processor(void **state) {
    (void)state;
    size_t glen;
    char *gj = (char *)read_data("models5/clip.json", &glen);
    cJSON *g = cJSON_ParseWithLength(gj, glen);
    free(gj);
    assert_non_null(g);
    const cJSON *im;
    dc_image_preprocess pp;
    dc_image_preprocess_clip(&pp);
    const size_t plane = 224 * 224;
    float *pix = malloc(3 * plane * sizeof *pix);
    double worst = 0;
    int count = 0;
    cJSON_ArrayForEach(im, cJSON_GetObjectItem(g, "images")) {
        char rel[256];
        snprintf(rel, sizeof rel, "images/%s", cJSON_GetObjectItem(im, "file")->valuestring);
        size_t len;
        uint8_t *bytes = read_data(rel, &len);
        dc_image img;
        assert_ok(dc_image_decode(bytes, len, &img));
        const cJSON *size = cJSON_GetObjectItem(im, "size");
        assert_int_equal(img.width, cJSON_GetArrayItem(size, 0)->valueint);
        assert_int_equal(img.height, cJSON_GetArrayItem(size, 1)->valueint);
        uint32_t ow, oh;
        dc_image_preprocess_size(&pp, &img, &ow, &oh);
        assert_int_equal(ow, 224);
        assert_int_equal(oh, 224);
        assert_ok(dc_image_to_pixels(&img, &pp, pix));
        /* the golden: the uint8 image that normalises exactly to the processor's values */
        snprintf(rel, sizeof rel, "images/%s", cJSON_GetObjectItem(im, "pixels")->valuestring);
        uint8_t *gb = read_data(rel, &len);
        dc_image ref;
        assert_ok(dc_image_decode(gb, len, &ref));
        assert_int_equal(ref.width, 224);
        assert_int_equal(ref.height, 224);
        double mx = 0;
        size_t differ = 0;
        for (size_t i = 0; i < plane; i++)
            for (int c = 0; c < 3; c++) {
                float want = (float)((double)ref.rgb[3 * i + c] * (1.0 / 255.0));
                want = (want - pp.mean[c]) / pp.std[c];
                double d = fabs((double)pix[c * plane + i] - want);
                differ += d > 0;
                if (d > mx) mx = d;
            }
        print_message("%-24s %4ux%-4u max-abs pixel difference %.3g (%zu of %zu values differ)\n",
                      cJSON_GetObjectItem(im, "file")->valuestring, img.width, img.height, mx,
                      differ, 3 * plane);
        if (mx > worst) worst = mx;
        count++;
        dc_image_free(&ref);
        dc_image_free(&img);
        free(gb);
        free(bytes);
    }
    print_message(
        "images: %d, max-abs pixel difference after normalisation %.3g (bound 1/255 = %.3g)\n",
        count, worst, 1.0 / 255);
    assert_true(count >= 10);
    assert_true(worst <= 1.0 / 255);
    free(pix);
    cJSON_Delete(g);
}

/* Pillow's resize on hand-checkable cases: a constant image stays constant under any scale,
 * and a same-size resize is a copy. */
static void test_resize_basics(void **state) {
    (void)state;
    dc_image a = {7, 5, malloc(7 * 5 * 3)};
    memset(a.rgb, 200, 7 * 5 * 3);
    const uint32_t sizes[][2] = {{3, 2}, {224, 224}, {7, 9}, {1, 1}, {14, 5}};
    for (size_t i = 0; i < 5; i++) {
        dc_image b;
        assert_ok(dc_image_resize_bicubic(&a, sizes[i][0], sizes[i][1], &b));
        for (size_t k = 0; k < (size_t)b.width * b.height * 3; k++) assert_int_equal(b.rgb[k], 200);
        dc_image_free(&b);
    }
    for (size_t k = 0; k < 7 * 5 * 3; k++) a.rgb[k] = (uint8_t)(k * 37);
    dc_image b;
    assert_ok(dc_image_resize_bicubic(&a, 7, 5, &b));
    assert_memory_equal(a.rgb, b.rgb, 7 * 5 * 3);
    dc_image_free(&b);
    /* crop: centred, floor offsets, zero outside a smaller source */
    assert_ok(dc_image_center_crop(&a, 4, 2, &b));
    for (uint32_t y = 0; y < 2; y++)
        assert_memory_equal(b.rgb + y * 4 * 3, a.rgb + ((y + 1) * 7 + 1) * 3, 4 * 3);
    dc_image_free(&b);
    assert_ok(dc_image_center_crop(&a, 9, 5, &b));
    assert_int_equal(b.rgb[0], 0);
    assert_memory_equal(b.rgb + 3, a.rgb, 7 * 3);
    dc_image_free(&b);
    assert_status(dc_image_resize_bicubic(&a, 0, 4, &b), DC_ERR_INVALID_ARGUMENT);
    dc_image_free(&a);
}

/* ---- hostile inputs ---- */

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* A PNG signature + IHDR (valid CRC) claiming w × h, then nothing. */
static size_t png_header(uint8_t *b, uint32_t w, uint32_t h) {
    memcpy(b, "\x89PNG\r\n\x1a\n", 8);
    put_be32(b + 8, 13);
    memcpy(b + 12, "IHDR", 4);
    put_be32(b + 16, w);
    put_be32(b + 20, h);
    b[24] = 8, b[25] = 2, b[26] = 0, b[27] = 0, b[28] = 0;
    put_be32(b + 29, (uint32_t)crc32(crc32(0, NULL, 0), b + 12, 17));
    return 33;
}

static void expect_fail(const uint8_t *b, size_t n, dc_status want, const char *needle) {
    dc_image img;
    dc_status st = dc_image_decode(b, n, &img);
    if (st != want)
        fail_msg("expected %s, got %s (%s)", dc_status_name(want), dc_status_name(st),
                 dc_error_detail());
    assert_null(img.rgb);
    if (needle) assert_detail_contains(needle);
}

static void test_hostile_images(void **state) {
    (void)state;
    uint8_t b[64];
    /* huge dimensions: refused from the header, nothing allocated */
    expect_fail(b, png_header(b, 1u << 20, 1u << 20), DC_ERR_INVALID_DIMENSION,
                "decompression bomb");
    expect_fail(b, png_header(b, 0x7fffffff, 2), DC_ERR_INVALID_DIMENSION, "pixels");
    expect_fail(b, png_header(b, 100, 100), DC_ERR_SERIALIZATION, "png");
    expect_fail(b, png_header(b, 0, 10), DC_ERR_INVALID_DIMENSION, "zero size");
    expect_fail(NULL, 0, DC_ERR_EMPTY_INPUT, NULL);
    expect_fail((const uint8_t *)"hello world, not an image", 25, DC_ERR_UNSUPPORTED_FORMAT,
                "signature");
    static const char *files[] = {"images/rgb_301x203.png",      "images/q90_420_320x241.jpg",
                                  "images/lossy_250x170.webp",   "images/frame_140x300.gif",
                                  "images/lossless_181x97.webp", "images/gray16_60x50.png"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        size_t len;
        uint8_t *bytes = read_data(files[i], &len);
        /* truncations at several points: a clear error, never a partial image */
        const size_t cuts[] = {len / 2, len * 3 / 4, 40, 13};
        for (size_t c = 0; c < 4; c++) {
            dc_image img;
            dc_status st = dc_image_decode(bytes, cuts[c], &img);
            if (st == DC_OK) fail_msg("%s cut at %zu decoded", files[i], cuts[c]);
            assert_null(img.rgb);
        }
        /* flipped bytes in the body: an error or an image, never a crash */
        uint8_t *x = malloc(len);
        for (size_t k = 0; k < 16; k++) {
            memcpy(x, bytes, len);
            for (size_t j = 50 + k; j < len; j += 97 + k) x[j] ^= (uint8_t)(0x5A + k);
            dc_image img;
            if (dc_image_decode(x, len, &img) == DC_OK) {
                assert_true(img.width > 0 && img.height > 0);
                dc_image_free(&img);
            }
        }
        free(x);
        free(bytes);
    }
    /* a declared format that is not the content */
    size_t len;
    uint8_t *png = read_data("images/tiny_16x16.png", &len);
    dc_image img;
    assert_status(dc_image_decode_as(png, len, DC_IMAGE_JPEG, &img), DC_ERR_INVALID_VALUE);
    assert_detail_contains("declared as jpeg");
    assert_ok(dc_image_decode_as(png, len, DC_IMAGE_PNG, &img));
    dc_image_free(&img);
    free(png);
    /* JPEG / GIF / WebP headers with bomb dimensions */
    uint8_t gif[32] = "GIF89a";
    gif[6] = 0xff, gif[7] = 0xff, gif[8] = 0xff, gif[9] = 0xff, gif[10] = 0, gif[11] = 0,
    gif[12] = 0;
    gif[13] = ';';
    expect_fail(gif, 14, DC_ERR_INVALID_DIMENSION, "gif");
    uint8_t *jpg = read_data("images/gray_250x171.jpg", &len);
    for (size_t i = 0; i + 8 < len; i++)
        if (jpg[i] == 0xFF && (jpg[i + 1] == 0xC0 || jpg[i + 1] == 0xC2)) {
            jpg[i + 5] = 0xFD, jpg[i + 6] = 0xE8, jpg[i + 7] = 0xFD, jpg[i + 8] = 0xE8; /* 65000² */
            break;
        }
    expect_fail(jpg, len, DC_ERR_INVALID_DIMENSION, "jpeg");
    free(jpg);
}

static void test_preprocess_config(void **state) {
    (void)state;
    dc_image_preprocess p;
    const char *old = "{\"crop_size\": 224, \"do_center_crop\": true, \"do_normalize\": true, "
                      "\"do_resize\": true, \"feature_extractor_type\": \"CLIPFeatureExtractor\", "
                      "\"image_mean\": [0.5, 0.5, 0.5], \"image_std\": [0.25, 0.25, 0.25], "
                      "\"resample\": 3, \"size\": 256}";
    const char *path = dc_test_write_temp(old, strlen(old), ".json");
    assert_ok(dc_image_preprocess_read(path, &p));
    assert_int_equal(p.shortest_edge, 256);
    assert_int_equal(p.crop_width, 224);
    assert_true(p.mean[1] == 0.5f && p.std[2] == 0.25f);
    const char *bad = "{\"resample\": 2}";
    path = dc_test_write_temp(bad, strlen(bad), ".json");
    assert_status(dc_image_preprocess_read(path, &p), DC_ERR_MODEL_LOAD);
    assert_detail_contains("resample");
    const char *std0 = "{\"image_std\": [0.2, 0, 0.2]}";
    path = dc_test_write_temp(std0, strlen(std0), ".json");
    assert_status(dc_image_preprocess_read(path, &p), DC_ERR_MODEL_LOAD);
    assert_detail_contains("image_std");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_images_match_clip_processor),
        cmocka_unit_test(test_resize_basics),
        cmocka_unit_test(test_hostile_images),
        cmocka_unit_test(test_preprocess_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
