/* libFuzzer target: the image decoders (PNG, JPEG, WebP, GIF by signature) on arbitrary bytes,
 * with a 1-megapixel limit so a small file cannot ask for a slow decode; every decoded image
 * is read end to end and run through CLIP's preprocessing at a small size (resize, crop,
 * normalise), so a buffer the decoder under-filled or overran shows up under
 * AddressSanitizer. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    dc_image img;
    if (dc_image_decode_limit(copy, size, 1u << 20, &img) == DC_OK) {
        if (!img.rgb || !img.width || !img.height || (uint64_t)img.width * img.height > (1u << 20))
            abort();
        volatile unsigned sink = 0;
        for (size_t i = 0; i < (size_t)img.width * img.height * 3; i++) sink += img.rgb[i];
        (void)sink;
        dc_image_preprocess p;
        dc_image_preprocess_clip(&p);
        p.shortest_edge = 20;
        p.crop_width = 16;
        p.crop_height = 16;
        float *pix = malloc(3 * 16 * 16 * sizeof *pix);
        if (pix && dc_image_to_pixels(&img, &p, pix) != DC_OK) abort();
        for (int i = 0; pix && i < 3 * 16 * 16; i++)
            if (!(pix[i] > -10.0f && pix[i] < 10.0f)) abort();
        free(pix);
        dc_image_free(&img);
    } else if (img.rgb) {
        abort(); /* failures leave nothing allocated */
    }
    free(copy);
    return 0;
}
