/* Image decoding (PNG, JPEG, WebP, GIF) to RGB8 as Pillow does it, Pillow's bicubic resize,
 * centre crop and CLIP's pixel normalisation. See image.h for the equivalences. */
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <gif_lib.h>
#include <png.h>
#include <turbojpeg.h>
#include <webp/decode.h>

#include "core/error.h"
#include "io/image.h"

void dc_image_free(dc_image *img) {
    if (!img) return;
    free(img->rgb);
    memset(img, 0, sizeof *img);
}

const char *dc_image_format_name(dc_image_format f) {
    switch (f) {
    case DC_IMAGE_PNG:
        return "png";
    case DC_IMAGE_JPEG:
        return "jpeg";
    case DC_IMAGE_WEBP:
        return "webp";
    case DC_IMAGE_GIF:
        return "gif";
    }
    return "unknown";
}

dc_status dc_image_detect(const uint8_t *b, size_t len, dc_image_format *out) {
    if (!b && len) return dc_fail(DC_ERR_INVALID_ARGUMENT, "image: NULL bytes");
    if (len >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8))
        *out = DC_IMAGE_PNG;
    else if (len >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF)
        *out = DC_IMAGE_JPEG;
    else if (len >= 12 && !memcmp(b, "RIFF", 4) && !memcmp(b + 8, "WEBP", 4))
        *out = DC_IMAGE_WEBP;
    else if (len >= 6 && (!memcmp(b, "GIF87a", 6) || !memcmp(b, "GIF89a", 6)))
        *out = DC_IMAGE_GIF;
    else if (len == 0)
        return dc_fail(DC_ERR_EMPTY_INPUT, "image: no bytes");
    else
        return dc_fail(DC_ERR_UNSUPPORTED_FORMAT,
                       "image: %zu bytes are not PNG, JPEG, WebP or GIF (unknown signature)", len);
    return DC_OK;
}

/* Dimensions first, then the allocation: the bomb check never allocates. */
static dc_status check_dims_limit(const char *fmt, uint64_t w, uint64_t h, uint64_t limit) {
    if (w == 0 || h == 0)
        return dc_fail(DC_ERR_INVALID_DIMENSION, "%s image: zero size (%llu x %llu)", fmt,
                       (unsigned long long)w, (unsigned long long)h);
    if (w > limit || h > limit || w * h > limit)
        return dc_fail(DC_ERR_INVALID_DIMENSION,
                       "%s image: %llu x %llu pixels exceeds the limit of %llu pixels "
                       "(decompression bomb guard)",
                       fmt, (unsigned long long)w, (unsigned long long)h,
                       (unsigned long long)limit);
    return DC_OK;
}

static dc_status check_dims(const char *fmt, uint64_t w, uint64_t h) {
    return check_dims_limit(fmt, w, h, DC_IMAGE_MAX_PIXELS);
}

static dc_status alloc_image(const char *fmt, uint32_t w, uint32_t h, dc_image *out) {
    out->rgb = malloc((size_t)w * h * 3);
    if (!out->rgb) return dc_fail(DC_ERR_OUT_OF_MEMORY, "%s image: %u x %u pixels", fmt, w, h);
    out->width = w;
    out->height = h;
    return DC_OK;
}

/* transformers' convert_to_rgb: an image with alpha is alpha-composited onto opaque white
 * (Pillow's Image.alpha_composite, 7 extra bits, rounded divisions by 255), then RGB. */
#define DC_AC_BITS   7
#define DC_DIV255(a) ((((a) >> 8) + (a)) >> 8)

static void over_white(const uint8_t *s, uint8_t *o) {
    if (s[3] == 0) {
        o[0] = o[1] = o[2] = 255;
        return;
    }
    const uint32_t a = s[3];
    const uint32_t blend = 255u * (255u - a), outa255 = a * 255u + blend;
    const uint32_t coef1 = a * 255u * 255u * (1u << DC_AC_BITS) / outa255;
    const uint32_t coef2 = 255u * (1u << DC_AC_BITS) - coef1;
    for (int c = 0; c < 3; c++) {
        uint32_t t = s[c] * coef1 + 255u * coef2 + (0x80u << DC_AC_BITS);
        o[c] = (uint8_t)(DC_DIV255(t) >> DC_AC_BITS);
    }
}

/* ---- PNG (libpng) ---- */

typedef struct png_src {
    const uint8_t *p;
    size_t len, off;
    char err[160];
} png_src;

static void png_read_mem(png_structp png, png_bytep out, size_t n) {
    png_src *s = png_get_io_ptr(png);
    if (n > s->len - s->off) {
        snprintf(s->err, sizeof s->err, "truncated at byte %zu (wanted %zu more)", s->len, n);
        png_longjmp(png, 1);
    }
    memcpy(out, s->p + s->off, n);
    s->off += n;
}

static void png_on_error(png_structp png, png_const_charp msg) {
    png_src *s = png_get_error_ptr(png);
    if (s && !s->err[0]) snprintf(s->err, sizeof s->err, "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg; /* Pillow ignores libpng warnings too (bad ancillary chunks) */
}

/* Decodes into out; `rows` is the row-pointer array, freed by the caller even after longjmp. */
static dc_status png_decode(const uint8_t *bytes, size_t len, uint64_t limit, dc_image *out) {
    png_src src = {bytes, len, 0, ""};
    png_structp png =
        png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_on_error, png_on_warning);
    if (!png) return dc_fail(DC_ERR_OUT_OF_MEMORY, "png decoder");
    png_infop info = png_create_info_struct(png);
    /* volatile: written after setjmp and read after a longjmp */
    uint8_t *volatile raw = NULL;
    png_bytep *volatile rows = NULL;
    volatile dc_status st = DC_OK;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "png decoder");
    }
    if (setjmp(png_jmpbuf(png))) {
        if (st == DC_OK)
            st = dc_fail(DC_ERR_SERIALIZATION, "png image: %s",
                         src.err[0] ? src.err : "corrupt data");
        goto done;
    }
    /* the bomb check reads IHDR itself: libpng would first want the chunks after it */
    if (len >= 24 && !memcmp(bytes + 12, "IHDR", 4)) {
        uint32_t hw = (uint32_t)bytes[16] << 24 | (uint32_t)bytes[17] << 16 |
                      (uint32_t)bytes[18] << 8 | bytes[19];
        uint32_t hh = (uint32_t)bytes[20] << 24 | (uint32_t)bytes[21] << 16 |
                      (uint32_t)bytes[22] << 8 | bytes[23];
        if ((st = check_dims_limit("png", hw, hh, limit)) != DC_OK) goto done;
    }
    png_set_read_fn(png, &src, png_read_mem);
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    png_read_info(png, info);
    png_uint_32 w = 0, h = 0;
    int depth = 0, ctype = 0, interlace = 0;
    png_get_IHDR(png, info, &w, &h, &depth, &ctype, &interlace, NULL, NULL);
    if ((st = check_dims_limit("png", w, h, limit)) != DC_OK) goto done;
    /* Pillow's I;16 → RGB clips grey values above 255; every other 16-bit mode keeps the high
     * byte */
    const bool gray16 = depth == 16 && ctype == PNG_COLOR_TYPE_GRAY;
    if (ctype == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (depth == 16 && !gray16) png_set_strip_16(png);
    /* Pillow turns a tRNS colour into alpha before the composite */
    if (!gray16 && png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (gray16) png_set_swap(png); /* native little-endian u16 for the clip below */
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    const size_t rowbytes = png_get_rowbytes(png, info);
    const int channels = png_get_channels(png, info);
    if (rowbytes / w < (size_t)channels * (gray16 ? 2 : 1)) {
        st = dc_fail(DC_ERR_SERIALIZATION, "png image: unexpected row layout");
        goto done;
    }
    raw = malloc(rowbytes * h);
    rows = malloc(h * sizeof *rows);
    if (!raw || !rows) {
        st = dc_fail(DC_ERR_OUT_OF_MEMORY, "png image: %u x %u pixels", (unsigned)w, (unsigned)h);
        goto done;
    }
    for (png_uint_32 y = 0; y < h; y++) rows[y] = raw + (size_t)y * rowbytes;
    png_read_image(png, rows);
    if ((st = alloc_image("png", w, h, out)) != DC_OK) goto done;
    for (png_uint_32 y = 0; y < h; y++) {
        const uint8_t *r = rows[y];
        uint8_t *o = out->rgb + (size_t)y * w * 3;
        for (png_uint_32 x = 0; x < w; x++, o += 3) {
            if (gray16) {
                unsigned v = (unsigned)r[2 * x] | (unsigned)r[2 * x + 1] << 8;
                o[0] = o[1] = o[2] = (uint8_t)(v > 255 ? 255 : v);
            } else if (channels == 4) {
                over_white(r + (size_t)x * 4, o);
            } else if (channels == 3) {
                memcpy(o, r + (size_t)x * 3, 3);
            } else if (channels == 2) {
                const uint8_t *q = r + (size_t)x * 2;
                uint8_t ga[4] = {q[0], q[0], q[0], q[1]};
                over_white(ga, o);
            } else {
                o[0] = o[1] = o[2] = r[x];
            }
        }
    }
done:
    png_destroy_read_struct(&png, &info, NULL);
    free(raw);
    free(rows);
    if (st != DC_OK) dc_image_free(out);
    return st;
}

/* ---- JPEG (TurboJPEG) ---- */

static dc_status jpeg_decode(const uint8_t *bytes, size_t len, uint64_t limit, dc_image *out) {
    tjhandle tj = tjInitDecompress();
    if (!tj) return dc_fail(DC_ERR_OUT_OF_MEMORY, "jpeg decoder");
    int w = 0, h = 0, sub = 0, cs = 0;
    dc_status st = DC_OK;
    if (tjDecompressHeader3(tj, bytes, (unsigned long)len, &w, &h, &sub, &cs) != 0) {
        st = dc_fail(DC_ERR_SERIALIZATION, "jpeg image: %s", tjGetErrorStr2(tj));
        goto done;
    }
    if (cs == TJCS_CMYK || cs == TJCS_YCCK) {
        st = dc_fail(DC_ERR_UNSUPPORTED_FORMAT, "jpeg image: CMYK/YCCK colour is not supported");
        goto done;
    }
    if ((st = check_dims_limit("jpeg", (uint64_t)w, (uint64_t)h, limit)) != DC_OK) goto done;
    if ((st = alloc_image("jpeg", (uint32_t)w, (uint32_t)h, out)) != DC_OK) goto done;
    /* flags 0: ISLOW IDCT and fancy upsampling, libjpeg's (and so Pillow's) defaults */
    if (tjDecompress2(tj, bytes, (unsigned long)len, out->rgb, w, 0, h, TJPF_RGB, 0) != 0) {
        const char *msg = tjGetErrorStr2(tj);
        /* libjpeg fills a truncated image with grey and calls it a warning; Pillow refuses
         * truncated files, so do we. Other warnings (extraneous bytes) are benign. */
        if (tjGetErrorCode(tj) != TJERR_WARNING || strstr(msg, "Premature end"))
            st = dc_fail(DC_ERR_SERIALIZATION, "jpeg image: %s", msg);
    }
done:
    tjDestroy(tj);
    if (st != DC_OK) dc_image_free(out);
    return st;
}

/* ---- WebP (libwebp) ---- */

static dc_status webp_decode(const uint8_t *bytes, size_t len, uint64_t limit, dc_image *out) {
    WebPBitstreamFeatures f;
    VP8StatusCode vs = WebPGetFeatures(bytes, len, &f);
    if (vs != VP8_STATUS_OK)
        return dc_fail(
            vs == VP8_STATUS_UNSUPPORTED_FEATURE ? DC_ERR_UNSUPPORTED_FORMAT : DC_ERR_SERIALIZATION,
            "webp image: %s", vs == VP8_STATUS_NOT_ENOUGH_DATA ? "truncated header" : "bad header");
    if (f.has_animation)
        return dc_fail(DC_ERR_UNSUPPORTED_FORMAT, "webp image: animated WebP is not supported");
    dc_status st = check_dims_limit("webp", (uint64_t)(f.width > 0 ? f.width : 0),
                                    (uint64_t)(f.height > 0 ? f.height : 0), limit);
    if (st != DC_OK) return st;
    if ((st = alloc_image("webp", (uint32_t)f.width, (uint32_t)f.height, out)) != DC_OK) return st;
    const size_t npix = (size_t)f.width * f.height;
    if (!f.has_alpha) {
        if (!WebPDecodeRGBInto(bytes, len, out->rgb, npix * 3, f.width * 3)) {
            dc_image_free(out);
            return dc_fail(DC_ERR_SERIALIZATION, "webp image: corrupt or truncated data");
        }
        return DC_OK;
    }
    uint8_t *rgba = malloc(npix * 4);
    if (!rgba) {
        dc_image_free(out);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "webp image: %d x %d pixels", f.width, f.height);
    }
    if (!WebPDecodeRGBAInto(bytes, len, rgba, npix * 4, f.width * 4)) {
        free(rgba);
        dc_image_free(out);
        return dc_fail(DC_ERR_SERIALIZATION, "webp image: corrupt or truncated data");
    }
    for (size_t i = 0; i < npix; i++) over_white(rgba + 4 * i, out->rgb + 3 * i);
    free(rgba);
    return DC_OK;
}

/* ---- GIF (giflib), first frame ---- */

typedef struct gif_src {
    const uint8_t *p;
    size_t len, off;
} gif_src;

static int gif_read_mem(GifFileType *g, GifByteType *buf, int n) {
    gif_src *s = g->UserData;
    size_t want = n > 0 ? (size_t)n : 0, left = s->len - s->off;
    if (want > left) want = left;
    memcpy(buf, s->p + s->off, want);
    s->off += want;
    return (int)want;
}

static dc_status gif_decode(const uint8_t *bytes, size_t len, uint64_t limit, dc_image *out) {
    gif_src src = {bytes, len, 0};
    int err = 0;
    GifFileType *g = DGifOpen(&src, gif_read_mem, &err);
    if (!g) return dc_fail(DC_ERR_SERIALIZATION, "gif image: %s", GifErrorString(err));
    dc_status st = DC_OK;
    uint8_t *idx = NULL;
    int transparent = -1;
    if ((st = check_dims_limit("gif", (uint64_t)(g->SWidth > 0 ? g->SWidth : 0),
                               (uint64_t)(g->SHeight > 0 ? g->SHeight : 0), limit)) != DC_OK)
        goto done;
    const uint32_t W = (uint32_t)g->SWidth, H = (uint32_t)g->SHeight;
    for (;;) {
        GifRecordType rt;
        if (DGifGetRecordType(g, &rt) == GIF_ERROR) {
            st = dc_fail(DC_ERR_SERIALIZATION, "gif image: %s", GifErrorString(g->Error));
            goto done;
        }
        if (rt == TERMINATE_RECORD_TYPE) {
            st = dc_fail(DC_ERR_SERIALIZATION, "gif image: no image in the file");
            goto done;
        }
        if (rt == EXTENSION_RECORD_TYPE) {
            int code;
            GifByteType *ext;
            if (DGifGetExtension(g, &code, &ext) == GIF_ERROR) {
                st = dc_fail(DC_ERR_SERIALIZATION, "gif image: %s", GifErrorString(g->Error));
                goto done;
            }
            while (ext) {
                if (code == GRAPHICS_EXT_FUNC_CODE && ext[0] >= 4 && (ext[1] & 1))
                    transparent = ext[4];
                if (DGifGetExtensionNext(g, &ext) == GIF_ERROR) {
                    st = dc_fail(DC_ERR_SERIALIZATION, "gif image: %s", GifErrorString(g->Error));
                    goto done;
                }
            }
            continue;
        }
        if (rt != IMAGE_DESC_RECORD_TYPE) continue;
        if (DGifGetImageDesc(g) == GIF_ERROR) {
            st = dc_fail(DC_ERR_SERIALIZATION, "gif image: %s", GifErrorString(g->Error));
            goto done;
        }
        const GifImageDesc *d = &g->Image;
        const ColorMapObject *cm = d->ColorMap ? d->ColorMap : g->SColorMap;
        if (!cm || !cm->Colors || cm->ColorCount <= 0) {
            st = dc_fail(DC_ERR_SERIALIZATION, "gif image: no colour table");
            goto done;
        }
        if (d->Width <= 0 || d->Height <= 0 || d->Left < 0 || d->Top < 0 ||
            (uint64_t)d->Left + (uint64_t)d->Width > W ||
            (uint64_t)d->Top + (uint64_t)d->Height > H) {
            st = dc_fail(DC_ERR_SERIALIZATION,
                         "gif image: frame %dx%d at (%d, %d) lies outside the %ux%u screen",
                         d->Width, d->Height, d->Left, d->Top, W, H);
            goto done;
        }
        /* outside the first frame: the transparency index if any, else the background */
        int fill = transparent >= 0 ? transparent : g->SBackGroundColor;
        idx = malloc((size_t)W * H);
        if (!idx) {
            st = dc_fail(DC_ERR_OUT_OF_MEMORY, "gif image: %u x %u pixels", W, H);
            goto done;
        }
        memset(idx, fill & 0xFF, (size_t)W * H);
        const uint32_t fw = (uint32_t)d->Width, fh = (uint32_t)d->Height;
        static const uint32_t ioff[4] = {0, 4, 2, 1}, istep[4] = {8, 8, 4, 2};
        for (int pass = 0; pass < (d->Interlace ? 4 : 1); pass++) {
            uint32_t y0 = d->Interlace ? ioff[pass] : 0, dy = d->Interlace ? istep[pass] : 1;
            for (uint32_t y = y0; y < fh; y += dy) {
                uint8_t *row = idx + (size_t)(d->Top + (int)y) * W + (uint32_t)d->Left;
                if (DGifGetLine(g, row, (int)fw) == GIF_ERROR) {
                    st = dc_fail(DC_ERR_SERIALIZATION, "gif image: %s", GifErrorString(g->Error));
                    goto done;
                }
            }
        }
        if ((st = alloc_image("gif", W, H, out)) != DC_OK) goto done;
        for (size_t i = 0; i < (size_t)W * H; i++) {
            if (idx[i] == transparent) { /* alpha 0: the white background */
                memset(out->rgb + 3 * i, 255, 3);
                continue;
            }
            int c = idx[i] < cm->ColorCount ? idx[i] : 0;
            out->rgb[3 * i] = cm->Colors[c].Red;
            out->rgb[3 * i + 1] = cm->Colors[c].Green;
            out->rgb[3 * i + 2] = cm->Colors[c].Blue;
        }
        break;
    }
done:
    free(idx);
    DGifCloseFile(g, &err);
    if (st != DC_OK) dc_image_free(out);
    return st;
}

dc_status dc_image_decode_limit(const uint8_t *bytes, size_t len, uint64_t max_pixels,
                                dc_image *out) {
    if (!out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "image: NULL output");
    memset(out, 0, sizeof *out);
    dc_image_format f;
    dc_status st = dc_image_detect(bytes, len, &f);
    if (st != DC_OK) return st;
    uint64_t limit =
        max_pixels && max_pixels < DC_IMAGE_MAX_PIXELS ? max_pixels : DC_IMAGE_MAX_PIXELS;
    switch (f) {
    case DC_IMAGE_PNG:
        return png_decode(bytes, len, limit, out);
    case DC_IMAGE_JPEG:
        return jpeg_decode(bytes, len, limit, out);
    case DC_IMAGE_WEBP:
        return webp_decode(bytes, len, limit, out);
    case DC_IMAGE_GIF:
        return gif_decode(bytes, len, limit, out);
    }
    return dc_fail(DC_ERR_INTERNAL, "image: format %d", (int)f);
}

dc_status dc_image_decode(const uint8_t *bytes, size_t len, dc_image *out) {
    return dc_image_decode_limit(bytes, len, 0, out);
}

dc_status dc_image_decode_as(const uint8_t *bytes, size_t len, dc_image_format declared,
                             dc_image *out) {
    if (!out) return dc_fail(DC_ERR_INVALID_ARGUMENT, "image: NULL output");
    memset(out, 0, sizeof *out);
    dc_image_format f;
    dc_status st = dc_image_detect(bytes, len, &f);
    if (st != DC_OK) return st;
    if (f != declared)
        return dc_fail(DC_ERR_INVALID_VALUE, "image: declared as %s but the bytes are %s",
                       dc_image_format_name(declared), dc_image_format_name(f));
    return dc_image_decode(bytes, len, out);
}

/* ---- Pillow's bicubic resample ---- */

#define DC_PRECISION_BITS (32 - 8 - 2)

static double bicubic(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

/* Per output pixel: the first input index, the tap count, and ksize fixed-point weights. */
typedef struct coeffs {
    uint32_t ksize;
    uint32_t *bounds; /* 2 per output: xmin, count */
    int32_t *k;       /* ksize per output */
} coeffs;

static dc_status coeffs_make(uint32_t in_size, uint32_t out_size, coeffs *c) {
    double scale = (double)in_size / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 2.0 * filterscale;
    c->ksize = (uint32_t)ceil(support) * 2 + 1;
    c->bounds = malloc((size_t)out_size * 2 * sizeof *c->bounds);
    c->k = malloc((size_t)out_size * c->ksize * sizeof *c->k);
    double *pre = malloc(c->ksize * sizeof *pre);
    if (!c->bounds || !c->k || !pre) {
        free(c->bounds);
        free(c->k);
        free(pre);
        return dc_fail(DC_ERR_OUT_OF_MEMORY, "resize coefficients for %u -> %u", in_size, out_size);
    }
    const double ss = 1.0 / filterscale;
    for (uint32_t xx = 0; xx < out_size; xx++) {
        double center = (xx + 0.5) * scale;
        double ww = 0.0;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > (int)in_size) xmax = (int)in_size;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            double w = bicubic((x + xmin - center + 0.5) * ss);
            pre[x] = w;
            ww += w;
        }
        int32_t *k = c->k + (size_t)xx * c->ksize;
        for (int x = 0; x < (int)c->ksize; x++) {
            double w = x < xmax ? (ww != 0.0 ? pre[x] / ww : pre[x]) : 0.0;
            /* round half away from zero into 22 fractional bits */
            k[x] = w < 0 ? (int32_t)(-0.5 + w * (1 << DC_PRECISION_BITS))
                         : (int32_t)(0.5 + w * (1 << DC_PRECISION_BITS));
        }
        c->bounds[2 * xx] = (uint32_t)xmin;
        c->bounds[2 * xx + 1] = (uint32_t)xmax;
    }
    free(pre);
    return DC_OK;
}

static void coeffs_free(coeffs *c) {
    free(c->bounds);
    free(c->k);
}

static inline uint8_t clip8(int64_t v) {
    if (v >= ((int64_t)1 << DC_PRECISION_BITS << 8)) return 255;
    if (v <= 0) return 0;
    return (uint8_t)(v >> DC_PRECISION_BITS);
}

dc_status dc_image_resize_bicubic(const dc_image *in, uint32_t width, uint32_t height,
                                  dc_image *out) {
    if (!in || !out || !in->rgb || !width || !height)
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "resize: empty image or size");
    memset(out, 0, sizeof *out);
    dc_status st = check_dims("resized", width, height);
    if (st != DC_OK) return st;
    const uint32_t W = in->width, H = in->height;
    if (width == W && height == H) {
        if ((st = alloc_image("resized", W, H, out))) return st;
        memcpy(out->rgb, in->rgb, (size_t)W * H * 3);
        return DC_OK;
    }
    coeffs ch = {0}, cv = {0};
    dc_image tmp = {0};
    const dc_image *src = in;
    if ((st = coeffs_make(W, width, &ch)) || (st = coeffs_make(H, height, &cv))) goto done;
    /* horizontal pass first, over all rows (Pillow restricts it to the rows the vertical pass
     * reads; the values are the same) */
    if (width != W) {
        if ((st = alloc_image("resized", width, H, &tmp))) goto done;
        for (uint32_t y = 0; y < H; y++) {
            const uint8_t *row = in->rgb + (size_t)y * W * 3;
            uint8_t *o = tmp.rgb + (size_t)y * width * 3;
            for (uint32_t xx = 0; xx < width; xx++) {
                uint32_t xmin = ch.bounds[2 * xx], n = ch.bounds[2 * xx + 1];
                const int32_t *k = ch.k + (size_t)xx * ch.ksize;
                int64_t s0 = 1 << (DC_PRECISION_BITS - 1), s1 = s0, s2 = s0;
                for (uint32_t x = 0; x < n; x++) {
                    const uint8_t *p = row + (size_t)(x + xmin) * 3;
                    s0 += (int64_t)p[0] * k[x];
                    s1 += (int64_t)p[1] * k[x];
                    s2 += (int64_t)p[2] * k[x];
                }
                o[3 * xx] = clip8(s0);
                o[3 * xx + 1] = clip8(s1);
                o[3 * xx + 2] = clip8(s2);
            }
        }
        src = &tmp;
    }
    if (height == H) { /* horizontal only: the intermediate is the result */
        *out = tmp;
        memset(&tmp, 0, sizeof tmp);
        goto done;
    }
    if ((st = alloc_image("resized", width, height, out))) goto done;
    for (uint32_t yy = 0; yy < height; yy++) {
        uint32_t ymin = cv.bounds[2 * yy], n = cv.bounds[2 * yy + 1];
        const int32_t *k = cv.k + (size_t)yy * cv.ksize;
        uint8_t *o = out->rgb + (size_t)yy * width * 3;
        for (uint32_t xx = 0; xx < width * 3; xx++) {
            int64_t s = 1 << (DC_PRECISION_BITS - 1);
            for (uint32_t y = 0; y < n; y++)
                s += (int64_t)src->rgb[(size_t)(y + ymin) * width * 3 + xx] * k[y];
            o[xx] = clip8(s);
        }
    }
done:
    coeffs_free(&ch);
    coeffs_free(&cv);
    dc_image_free(&tmp);
    if (st != DC_OK) dc_image_free(out);
    return st;
}

dc_status dc_image_center_crop(const dc_image *in, uint32_t width, uint32_t height, dc_image *out) {
    if (!in || !out || !in->rgb || !width || !height)
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "crop: empty image or size");
    memset(out, 0, sizeof *out);
    dc_status st = check_dims("cropped", width, height);
    if (st == DC_OK) st = alloc_image("cropped", width, height, out);
    if (st != DC_OK) return st;
    /* offsets of the crop in source coordinates; negative when the source is smaller */
    int64_t top = ((int64_t)in->height - height) / 2, left = ((int64_t)in->width - width) / 2;
    if ((int64_t)in->height < height) top = -(((int64_t)height - in->height + 1) / 2);
    if ((int64_t)in->width < width) left = -(((int64_t)width - in->width + 1) / 2);
    for (uint32_t y = 0; y < height; y++) {
        int64_t sy = top + y;
        uint8_t *o = out->rgb + (size_t)y * width * 3;
        for (uint32_t x = 0; x < width; x++) {
            int64_t sx = left + x;
            if (sy < 0 || sx < 0 || sy >= in->height || sx >= in->width) {
                memset(o + 3 * x, 0, 3);
                continue;
            }
            memcpy(o + 3 * x, in->rgb + ((size_t)sy * in->width + (size_t)sx) * 3, 3);
        }
    }
    return DC_OK;
}

/* ---- the processor ---- */

void dc_image_preprocess_clip(dc_image_preprocess *p) {
    *p = (dc_image_preprocess){
        .do_resize = true,
        .do_center_crop = true,
        .do_rescale = true,
        .do_normalize = true,
        .shortest_edge = 224,
        .crop_width = 224,
        .crop_height = 224,
        .rescale_factor = 1.0 / 255.0,
        .mean = {0.48145466f, 0.4578275f, 0.40821073f},
        .std = {0.26862954f, 0.26130258f, 0.27577711f},
    };
}

static dc_status pp_bool(const cJSON *root, const char *path, const char *key, bool *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) return DC_OK;
    if (!cJSON_IsBool(v))
        return dc_fail(DC_ERR_MODEL_LOAD, "%s: field \"%s\" must be a boolean", path, key);
    *out = cJSON_IsTrue(v);
    return DC_OK;
}

static bool pp_size(const cJSON *v, uint32_t *out) {
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 1 ||
        v->valuedouble > 65536)
        return false;
    *out = (uint32_t)v->valuedouble;
    return true;
}

dc_status dc_image_preprocess_read(const char *path, dc_image_preprocess *p) {
    dc_image_preprocess_clip(p);
    FILE *f = fopen(path, "rb");
    if (!f) return dc_fail(DC_ERR_MODEL_LOAD, "%s: cannot open", path);
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    bool big = !feof(f);
    fclose(f);
    if (big) return dc_fail(DC_ERR_MODEL_LOAD, "%s: larger than 64 KiB", path);
    cJSON *root = cJSON_ParseWithLength(buf, n);
    dc_status st = DC_OK;
    if (!cJSON_IsObject(root)) {
        st = dc_fail(DC_ERR_MODEL_LOAD, "%s: not a JSON object", path);
        goto done;
    }
    if ((st = pp_bool(root, path, "do_resize", &p->do_resize)) ||
        (st = pp_bool(root, path, "do_center_crop", &p->do_center_crop)) ||
        (st = pp_bool(root, path, "do_rescale", &p->do_rescale)) ||
        (st = pp_bool(root, path, "do_normalize", &p->do_normalize)))
        goto done;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "size");
    if (v && !cJSON_IsNull(v)) {
        const cJSON *se =
            cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, "shortest_edge") : v;
        if (!pp_size(se, &p->shortest_edge)) {
            st = dc_fail(DC_ERR_MODEL_LOAD,
                         "%s: field \"size\" must be an integer or {\"shortest_edge\": n}", path);
            goto done;
        }
    }
    v = cJSON_GetObjectItemCaseSensitive(root, "crop_size");
    if (v && !cJSON_IsNull(v)) {
        bool ok = cJSON_IsObject(v)
                      ? pp_size(cJSON_GetObjectItemCaseSensitive(v, "height"), &p->crop_height) &&
                            pp_size(cJSON_GetObjectItemCaseSensitive(v, "width"), &p->crop_width)
                      : pp_size(v, &p->crop_height) && pp_size(v, &p->crop_width);
        if (!ok) {
            st = dc_fail(DC_ERR_MODEL_LOAD,
                         "%s: field \"crop_size\" must be an integer or {\"height\", \"width\"}",
                         path);
            goto done;
        }
    }
    v = cJSON_GetObjectItemCaseSensitive(root, "resample");
    if (v && !cJSON_IsNull(v) && !(cJSON_IsNumber(v) && v->valuedouble == 3)) {
        st = dc_fail(DC_ERR_MODEL_LOAD, "%s: field \"resample\" must be 3 (bicubic)", path);
        goto done;
    }
    v = cJSON_GetObjectItemCaseSensitive(root, "rescale_factor");
    if (v && !cJSON_IsNull(v)) {
        if (!cJSON_IsNumber(v) || !(v->valuedouble > 0)) {
            st = dc_fail(DC_ERR_MODEL_LOAD, "%s: field \"rescale_factor\" must be positive", path);
            goto done;
        }
        p->rescale_factor = v->valuedouble;
    }
    static const char *keys[2] = {"image_mean", "image_std"};
    for (int t = 0; t < 2; t++) {
        v = cJSON_GetObjectItemCaseSensitive(root, keys[t]);
        if (!v || cJSON_IsNull(v)) continue;
        float *dst = t ? p->std : p->mean;
        if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 3) {
            st = dc_fail(DC_ERR_MODEL_LOAD, "%s: field \"%s\" must be 3 numbers", path, keys[t]);
            goto done;
        }
        for (int c = 0; c < 3; c++) {
            const cJSON *e = cJSON_GetArrayItem(v, c);
            if (!cJSON_IsNumber(e) || (t && !(e->valuedouble > 0)) || !isfinite(e->valuedouble)) {
                st = dc_fail(DC_ERR_MODEL_LOAD, "%s: field \"%s\" must be 3 %snumbers", path,
                             keys[t], t ? "positive " : "");
                goto done;
            }
            dst[c] = (float)e->valuedouble;
        }
    }
done:
    cJSON_Delete(root);
    return st;
}

/* transformers' get_resize_output_image_size(default_to_square=False): the short side
 * becomes shortest_edge, the long side int(shortest_edge · long / short). */
static void resize_size(const dc_image_preprocess *p, uint32_t w, uint32_t h, uint32_t *ow,
                        uint32_t *oh) {
    if (!p->do_resize) {
        *ow = w;
        *oh = h;
        return;
    }
    uint32_t s = p->shortest_edge;
    if (w <= h) {
        *ow = s;
        *oh = (uint32_t)((double)((uint64_t)s * h) / (double)w);
    } else {
        *oh = s;
        *ow = (uint32_t)((double)((uint64_t)s * w) / (double)h);
    }
    if (!*ow) *ow = 1;
    if (!*oh) *oh = 1;
}

void dc_image_preprocess_size(const dc_image_preprocess *p, const dc_image *in, uint32_t *width,
                              uint32_t *height) {
    if (p->do_center_crop) {
        *width = p->crop_width;
        *height = p->crop_height;
        return;
    }
    resize_size(p, in->width, in->height, width, height);
}

dc_status dc_image_to_pixels(const dc_image *in, const dc_image_preprocess *p, float *pixels) {
    if (!in || !in->rgb || !p || !pixels)
        return dc_fail(DC_ERR_INVALID_ARGUMENT, "pixels: NULL argument");
    uint32_t rw, rh;
    resize_size(p, in->width, in->height, &rw, &rh);
    dc_image resized = {0}, cropped = {0};
    dc_status st = dc_image_resize_bicubic(in, rw, rh, &resized);
    if (st == DC_OK && p->do_center_crop)
        st = dc_image_center_crop(&resized, p->crop_width, p->crop_height, &cropped);
    if (st != DC_OK) {
        dc_image_free(&resized);
        return st;
    }
    const dc_image *img = p->do_center_crop ? &cropped : &resized;
    const size_t plane = (size_t)img->width * img->height;
    for (size_t i = 0; i < plane; i++)
        for (int c = 0; c < 3; c++) {
            /* numpy: float32(float64(u8) · factor), then (x − mean) / std in float32 */
            float x = img->rgb[3 * i + c];
            if (p->do_rescale) x = (float)((double)img->rgb[3 * i + c] * p->rescale_factor);
            if (p->do_normalize) x = (x - p->mean[c]) / p->std[c];
            pixels[(size_t)c * plane + i] = x;
        }
    dc_image_free(&resized);
    dc_image_free(&cropped);
    return DC_OK;
}
