/* Image input for E10 (CLIP): decoding PNG, JPEG, WebP and the first GIF frame to 8-bit RGB
 * the way Pillow's Image.open(...).convert("RGB") does, Pillow's antialiased bicubic resize
 * (bit-exact for 8-bit images), centre crop, and the float pixel tensor of transformers'
 * CLIPImageProcessor.
 *
 * Equivalences: an image with alpha (RGBA, grey + alpha, a tRNS colour, a transparent GIF
 * index, WebP alpha) is composited onto opaque white with Pillow's alpha_composite, as
 * transformers' convert_to_rgb does; palette and grey images expand to RGB; 16-bit samples
 * keep their high byte, except 16-bit grey without alpha, which is clipped to 255 (Pillow's
 * I;16 conversion); no gamma, ICC or EXIF orientation is applied (the processor applies none). JPEG
 * goes through libjpeg-turbo with libjpeg's defaults (ISLOW IDCT, fancy upsampling), WebP through
 * libwebp, PNG through libpng, GIF through giflib.
 *
 * Hostile input: the dimensions are read and checked before any pixel buffer is allocated;
 * more than DC_IMAGE_MAX_PIXELS pixels is DC_ERR_INVALID_DIMENSION (Pillow's
 * decompression-bomb threshold); truncated or corrupt data is DC_ERR_SERIALIZATION; a
 * well-formed format we do not decode (CMYK JPEG, animated WebP) is DC_ERR_UNSUPPORTED_FORMAT.
 * The details name the format and what is wrong. */
#ifndef DC_IO_IMAGE_H
#define DC_IO_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dodeca/status.h"
#include "dodeca/types.h"

/* Pillow's Image.MAX_IMAGE_PIXELS (its warning threshold; it refuses at twice this). */
#define DC_IMAGE_MAX_PIXELS 89478485u

typedef struct dc_image {
    uint32_t width, height;
    uint8_t *rgb; /* width × height × 3, row-major, owned */
} dc_image;

void dc_image_free(dc_image *img);

/* The format from the first bytes; DC_ERR_UNSUPPORTED_FORMAT when none of the four. */
dc_status dc_image_detect(const uint8_t *bytes, size_t len, dc_image_format *out);
const char *dc_image_format_name(dc_image_format f); /* "png", "jpeg", "webp", "gif" */

/* Decodes by content. On failure *out is zeroed. */
dc_status dc_image_decode(const uint8_t *bytes, size_t len, dc_image *out);
/* Same with a lower pixel limit (0 = DC_IMAGE_MAX_PIXELS; larger values are capped to it). */
dc_status dc_image_decode_limit(const uint8_t *bytes, size_t len, uint64_t max_pixels,
                                dc_image *out);
/* Same, but the content must be `declared` (DC_ERR_INVALID_VALUE naming both otherwise). */
dc_status dc_image_decode_as(const uint8_t *bytes, size_t len, dc_image_format declared,
                             dc_image *out);

/* Pillow's Image.resize(size, BICUBIC) (reducing_gap None) on an RGB image: Keys cubic
 * a = −0.5, support scaled by the downscaling factor, 22-bit fixed-point weights, horizontal
 * pass first. A same-size resize is a copy. */
dc_status dc_image_resize_bicubic(const dc_image *in, uint32_t width, uint32_t height,
                                  dc_image *out);
/* transformers' center_crop: top = (H − h) / 2, left = (W − w) / 2 (floored); areas outside
 * the source (a smaller image) are zero. */
dc_status dc_image_center_crop(const dc_image *in, uint32_t width, uint32_t height, dc_image *out);

/* CLIPImageProcessor settings (preprocessor_config.json). */
typedef struct dc_image_preprocess {
    bool do_resize, do_center_crop, do_rescale, do_normalize;
    uint32_t shortest_edge; /* resize the short side to this */
    uint32_t crop_width, crop_height;
    double rescale_factor; /* 1/255 */
    float mean[3], std[3];
} dc_image_preprocess;

/* openai/clip-vit-large-patch14's: 224, crop 224, 1/255, CLIP mean and std. */
void dc_image_preprocess_clip(dc_image_preprocess *p);
/* Reads preprocessor_config.json (old integer and new {"shortest_edge"} / {"height","width"}
 * forms); unknown keys are ignored, a resample other than 3 (bicubic) or a bad value is
 * DC_ERR_MODEL_LOAD naming the field. */
dc_status dc_image_preprocess_read(const char *path, dc_image_preprocess *p);
/* The output size: width × height of the tensor dc_image_to_pixels writes. */
void dc_image_preprocess_size(const dc_image_preprocess *p, const dc_image *in, uint32_t *width,
                              uint32_t *height);
/* The processor on a decoded image: resize (short side), centre crop, float32(u8 · factor)
 * then (x − mean) / std in float32, written channel-major: pixels[c][y][x], 3 × height × width
 * floats as dc_image_preprocess_size says. */
dc_status dc_image_to_pixels(const dc_image *in, const dc_image_preprocess *p, float *pixels);

#endif
