"""Image preprocessing fixtures from PIL + torchvision (the reference): PNG files of every color type and bit
depth (written by a small PNG encoder here, since PIL cannot write 16-bit color, low bit depths or
interlacing), JPEGs (from PIL: baseline, progressive, 4:4:4, 4:2:2, 4:2:0, gray, CMYK and YCCK, tiny; from libjpeg-turbo's
cjpeg, the same library PIL decodes with: 4:4:0, 4:1:1, 3:1 and mixed sampling, restart intervals, RGB, separate
scans per component), BMPs (written here: every header size, bit depth, bit-field layout and run-length coding PIL
reads, and by PIL), GIFs (written here: code sizes, a full LZW table with and without a clear, interlacing of every
height, local/global/no color tables, an image off the screen's origin or past its edge, transparency, extensions;
and by PIL, animations too), Netpbm (written here: P1 to P6, maximum values from 1 to 65535, comments in the header
and data; and by PIL), TIFFs (written here: strips, tiles, separate planes, both byte orders, BigTIFF, uncompressed, LZW,
Deflate and PackBits, differencing, bit-reversed bytes, every sample layout PIL reads; by PIL through libtiff; JPEG
inside TIFF by PIL and by libtiff's tiffcp), WebPs (lossy by PIL, by libwebp's cwebp with each loop filter setting,
segments, alpha and metadata chunks, and by libwebp's encoder through ctypes with several token partitions;
animations; lossless by PIL and cwebp),
and for each, what PIL and torchvision's ImageNet eval transform give on
`Image.open(f).convert('RGB')`:

  images.json       per file: SHA-256 of the decoded RGB pixels, of the uint8 224×224×3 Resize(256)+CenterCrop(224)
                    result and of the float32 3×224×224 tensor after ToTensor+Normalize (exact checks that cost no space)
  <name>.tensor.npy the float32 tensor (with --tensors)

    python3 tools/make_image_fixtures.py tests/fixtures/images            # small, checked in (needs cjpeg and
                                                                           #   tiffcp and cwebp: apt-get install
                                                                           #   libjpeg-turbo-progs libtiff-tools webp)
    python3 tools/make_image_fixtures.py --large --tensors fixtures/images  # CI: photos, big sizes, 60 random
                                                                             #   cjpeg and 40 cwebp (lossy and
                                                                             #   lossless) variants
                                                                             #   (also needs cjpeg and cwebp)
"""
import argparse
import glob
import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import tempfile
import zlib

import warnings

import numpy as np
from PIL import Image
from torchvision import transforms

RESIZE_CROP = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224)])
FULL = transforms.Compose([RESIZE_CROP, transforms.ToTensor(),
                           transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])


def png(path, rows, color_type, depth, palette=None, trns=None, interlace=False):
    """rows: uint array H×W×channels of sample values (palette indices for type 3)."""
    h, w = rows.shape[:2]
    chans = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    rows = rows.reshape(h, w, chans)

    def pack(sub):
        out = b""
        for r in sub:
            vals = r.reshape(-1)
            if depth == 16:
                line = b"".join(struct.pack(">H", int(v)) for v in vals)
            elif depth == 8:
                line = bytes(int(v) for v in vals)
            else:
                bits = "".join(format(int(v), f"0{depth}b") for v in vals)
                bits += "0" * (-len(bits) % 8)
                line = bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8))
            out += b"\x00" + line
        return out

    if interlace:
        raw = b""
        for x0, y0, dx, dy in [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]:
            sub = rows[y0::dy, x0::dx]
            if sub.shape[0] and sub.shape[1]:
                raw += pack(sub)
    else:
        raw = pack(rows)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    body = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 1 if interlace else 0))
    if palette is not None:
        body += chunk(b"PLTE", bytes(np.asarray(palette, dtype=np.uint8).reshape(-1)))
    if trns is not None:
        body += chunk(b"tRNS", trns)
    body += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + body)


def bmp(path, pixels, bits, header=40, compression=0, palette=None, colors=None, masks=None, topdown=False,
        offset_into_palette=False, rle=None):
    """pixels: H×W array of palette indices (bits <= 8), of 16-bit values (16) or H×W×4 of the bytes each pixel
    stores (24/32: the first 3 or 4). rle: the coded data, replacing pixels' rows."""
    h, w = pixels.shape[:2]
    stride = ((w * bits + 31) >> 3) & ~3
    data = b""
    if rle is not None:
        data = rle
    else:
        for row in (pixels if topdown else pixels[::-1]):
            if bits <= 8:
                bitstr = "".join(format(int(v), f"0{bits}b") for v in row)
                line = bytes(int(bitstr[i:i + 8].ljust(8, "0"), 2) for i in range(0, len(bitstr), 8))
            elif bits == 16:
                line = b"".join(struct.pack("<H", int(v)) for v in row)
            else:
                line = bytes(np.asarray(row[:, :bits // 8], dtype=np.uint8).reshape(-1))
            data += line + b"\0" * (stride - len(line))
    entry = 3 if header == 12 else 4
    pal = b"" if palette is None else b"".join(bytes([int(b), int(g), int(r)]) + b"\0" * (entry - 3) for r, g, b in palette)
    if header == 12:
        info = struct.pack("<IHHHH", 12, w, h, 1, bits)
    else:
        info = struct.pack("<IiiHHIIiiII", header, w, -h if topdown else h, 1, bits, compression, len(data), 2835, 2835,
                           len(palette) if colors is None and palette is not None else (colors or 0), 0)
        if masks is not None and header > 40:
            info += b"".join(struct.pack("<I", m) for m in masks) + b"\0" * (header - 40 - 4 * len(masks))
        else:
            info += b"\0" * (header - 40)
    extra = b"".join(struct.pack("<I", m) for m in masks) if masks is not None and header == 40 else b""
    offset = 14 + len(info) + len(extra) + len(pal)
    stated = 14 + len(info) if offset_into_palette else offset  # PIL then reads the data after the palette
    with open(path, "wb") as f:
        f.write(b"BM" + struct.pack("<IHHI", offset + len(data), 0, 0, stated) + info + extra + pal + data)


def rle8_rows(indices):
    """RLE8 of every row (runs of equal values, literal runs of 3+ distinct ones, an end of line each), then EOB."""
    out = b""
    for row in indices[::-1]:
        row = [int(v) for v in row]
        i = 0
        while i < len(row):
            j = i
            while j < len(row) and j - i < 255 and row[j] == row[i]:
                j += 1
            if j - i >= 2 or len(row) - i < 3:
                out += bytes([j - i, row[i]])
                i = j
            else:
                k = min(len(row), i + 200)
                lit = row[i:k]
                out += bytes([0, len(lit)] + lit) + (b"\0" if len(lit) % 2 else b"")
                i = k
        out += b"\0\0"
    return out + b"\0\1"


def rle4_rows(indices):
    """RLE4 of every row: encoded runs of two alternating nibbles and literal runs of an even length."""
    out = b""
    for row in indices[::-1]:
        row = [int(v) for v in row]
        i = 0
        while i < len(row):
            if len(row) - i >= 8 and (i // 8) % 2 == 0:
                lit = row[i:i + 8]
                out += bytes([0, 8] + [lit[k] << 4 | lit[k + 1] for k in range(0, 8, 2)])
                i += 8
            else:
                n = min(len(row) - i, 5)
                out += bytes([n, row[i] << 4 | row[min(i + 1, len(row) - 1)]])
                i += n
        out += b"\0\0"
    return out + b"\0\1"


def adder(out, names):
    """add(name): notes the name, returns its path."""
    def add(name):
        names.append(name)
        return f"{out}/{name}"
    return add


def photos_as(ext, add, names):
    """Three of darknet's photos saved by PIL as ext (a GIF quantized, and interlaced)."""
    for photo in sorted(glob.glob("/usr/share/darknet/data/*.jpg"))[:3]:
        Image.open(photo).save(add(os.path.basename(photo)[:-4] + ext))
    return names


def bmp_fixtures(out, rng, large):
    """Every layout PIL's BmpImagePlugin reads (own writer) and what PIL writes; returns the names."""
    names = []
    add = adder(out, names)
    if large:
        return photos_as(".bmp", add, names)
    h, w = 29, 37
    rgbx = noise(rng, h, w, 4, 255)
    bmp(add("bgr24_37x29.bmp"), rgbx, 24)
    bmp(add("bgr24_5x3_topdown.bmp"), noise(rng, 3, 5, 4, 255), 24, topdown=True)
    bmp(add("bgrx32.bmp"), rgbx, 32)
    bmp(add("bgra32_v4.bmp"), rgbx, 32, header=108, compression=3, masks=[0xFF0000, 0xFF00, 0xFF, 0xFF000000])
    bmp(add("rgba32_v5.bmp"), rgbx, 32, header=124, compression=3, masks=[0xFF, 0xFF00, 0xFF0000, 0xFF000000])
    bmp(add("xbgr32_masks_after_header.bmp"), rgbx, 32, compression=3, masks=[0xFF000000, 0xFF0000, 0xFF00])
    bmp(add("abgr32_os2v2.bmp"), rgbx, 32, header=64, compression=3, masks=[0xFF000000, 0xFF0000, 0xFF00, 0xFF])
    bmp(add("bgr24_bitfields.bmp"), rgbx, 24, compression=3, masks=[0xFF0000, 0xFF00, 0xFF])
    words = noise(rng, h, w, 1, 65535)[..., 0]
    bmp(add("bgr555.bmp"), words, 16)
    bmp(add("bgr555_bitfields.bmp"), words, 16, compression=3, masks=[0x7C00, 0x3E0, 0x1F])
    bmp(add("bgr565_v4.bmp"), words, 16, header=108, compression=3, masks=[0xF800, 0x7E0, 0x1F, 0])
    for bits in (1, 4, 8):
        n = 2 ** bits
        bmp(add(f"palette{bits}.bmp"), noise(rng, h, w, 1, n - 1)[..., 0], bits, palette=rng.integers(0, 256, (n, 3)))
    bmp(add("palette8_short.bmp"), noise(rng, h, w, 1, 255)[..., 0], 8, palette=rng.integers(0, 256, (20, 3)))  # gray past 20
    bmp(add("palette8_gray.bmp"), noise(rng, h, w, 1, 255)[..., 0], 8, palette=[(i, i, i) for i in range(256)])
    bmp(add("palette1_black_white.bmp"), noise(rng, h, w, 1, 1)[..., 0], 1, palette=[(0, 0, 0), (255, 255, 255)])
    bmp(add("palette8_offset_into_palette.bmp"), noise(rng, h, w, 1, 255)[..., 0], 8,
        palette=rng.integers(0, 256, (256, 3)), offset_into_palette=True)
    bmp(add("os2_bgr24.bmp"), rgbx, 24, header=12)
    bmp(add("os2_palette8.bmp"), noise(rng, h, w, 1, 255)[..., 0], 8, header=12, palette=rng.integers(0, 256, (256, 3)))
    runs = noise(rng, h, w, 1, 255)[..., 0] // 40 * 40  # long runs of equal values, and literal stretches
    bmp(add("rle8.bmp"), runs, 8, compression=1, palette=rng.integers(0, 256, (256, 3)), rle=rle8_rows(runs))
    nibbles = noise(rng, h, w, 1, 15)[..., 0]
    bmp(add("rle4.bmp"), nibbles, 4, compression=2, palette=rng.integers(0, 256, (16, 3)), rle=rle4_rows(nibbles))
    src = Image.fromarray(noise(rng, 31, 43, 3, 255).astype(np.uint8))
    src.save(add("pil_rgb.bmp"))
    src.convert("L").save(add("pil_gray.bmp"))
    src.convert("P").save(add("pil_palette.bmp"))
    src.convert("1").save(add("pil_bilevel.bmp"))
    return names


def lzw(indices, min_size, clear_when_full=True):
    """GIF's LZW of a flat sequence of indices, as sub-blocks ending with an empty one. Without clear_when_full the
    encoder keeps going with a full table (a "deferred clear")."""
    clear, end = 1 << min_size, (1 << min_size) + 1
    acc = nbits = 0
    out = bytearray()

    def emit(code, size):
        nonlocal acc, nbits
        acc |= code << nbits
        nbits += size
        while nbits >= 8:
            out.append(acc & 255)
            acc >>= 8
            nbits -= 8

    def reset():
        return {}, end + 1, min_size + 1

    table, nxt, size = reset()
    emit(clear, size)
    prefix = None
    first = True  # the decoder adds no entry for the first code after a clear
    for c in [int(v) for v in indices]:
        if prefix is None:
            prefix = c
            continue
        if (prefix, c) in table:
            prefix = table[(prefix, c)]
            continue
        emit(prefix, size)
        if first:
            first = False
        if nxt < 4096:
            table[(prefix, c)] = nxt
            # The decoder, one entry behind, reads the next code wider once it has added entry 2^size - 1.
            if nxt == (1 << size) and size < 12:
                size += 1
            nxt += 1
        elif clear_when_full:
            emit(clear, size)
            table, nxt, size = reset()
            first = True
        prefix = c
    emit(prefix, size)
    if not first and nxt == (1 << size) and size < 12:
        size += 1
    emit(end, size)
    if nbits:
        out.append(acc & 255)
    blocks = b"".join(bytes([len(out[i:i + 255])]) + bytes(out[i:i + 255]) for i in range(0, len(out), 255))
    return blocks + b"\0"


def gif(path, screen, frames, global_table=None, extensions=b"", junk=b""):
    """frames: dicts with indices (H×W), at (x, y), table (local), interlace, transparency, min_size, full_table."""
    w, h = screen
    flags = 0
    if global_table is not None:
        bits = max(1, int(np.ceil(np.log2(len(global_table)))))
        flags = 0x80 | (bits - 1)
    out = b"GIF89a" + struct.pack("<HHBBB", w, h, flags, 0, 0)
    if global_table is not None:
        out += bytes(np.asarray(global_table, dtype=np.uint8).reshape(-1))
    out += extensions
    for f in frames:
        px = np.asarray(f["indices"])
        fh, fw = px.shape
        if f.get("transparency") is not None:
            out += b"!\xf9\x04" + struct.pack("<BHB", 1, 10, f["transparency"]) + b"\0"
        out += junk
        table = f.get("table")
        fl = 0x40 if f.get("interlace") else 0
        if table is not None:
            bits = max(1, int(np.ceil(np.log2(len(table)))))
            fl |= 0x80 | (bits - 1)
        x, y = f.get("at", (0, 0))
        out += b"," + struct.pack("<HHHHB", x, y, fw, fh, fl)
        if table is not None:
            out += bytes(np.asarray(table, dtype=np.uint8).reshape(-1))
        rows = px
        if f.get("interlace"):
            order = list(range(0, fh, 8)) + list(range(4, fh, 8)) + list(range(2, fh, 4)) + list(range(1, fh, 2))
            rows = px[order]
        size = f.get("min_size", 8)
        out += bytes([size]) + lzw(rows.reshape(-1), size, not f.get("full_table"))
    with open(path, "wb") as fh_:
        fh_.write(out + b";")


def gif_fixtures(out, rng, large):
    """GIF layouts PIL reads (own writer, and PIL's); returns the names."""
    names = []
    add = adder(out, names)
    if large:
        return photos_as(".gif", add, names)
    h, w = 29, 37
    table = rng.integers(0, 256, (256, 3))
    idx = noise(rng, h, w, 1, 255)[..., 0]
    gif(add("gif_global.gif"), (w, h), [dict(indices=idx)], global_table=table)
    gif(add("gif_local.gif"), (w, h), [dict(indices=idx, table=table[::-1])], global_table=table)
    gif(add("gif_no_table.gif"), (w, h), [dict(indices=idx)])  # gray
    gif(add("gif_local_gray_ramp.gif"), (w, h), [dict(indices=idx, table=[(i, i, i) for i in range(256)])], global_table=table)
    gif(add("gif_local_gray_ramp_alone.gif"), (w, h), [dict(indices=idx, table=[(i, i, i) for i in range(256)])])
    gif(add("gif_short_table.gif"), (w, h), [dict(indices=idx)], global_table=table[:16])  # gray past entry 16
    for size in (2, 4):
        gif(add(f"gif_code_size_{size}.gif"), (w, h), [dict(indices=idx % (1 << size), min_size=size)], global_table=table[:1 << size])
    big = rng.integers(0, 256, (120, 140))  # noise: the 4096-entry table fills several times
    gif(add("gif_table_full_clear.gif"), (140, 120), [dict(indices=big)], global_table=table)
    gif(add("gif_table_full_deferred.gif"), (140, 120), [dict(indices=big, full_table=True)], global_table=table)
    for rows in (1, 2, 3, 5, 9, 29):
        gif(add(f"gif_interlaced_{rows}.gif"), (w, rows), [dict(indices=idx[:rows], interlace=True)], global_table=table)
    gif(add("gif_offset.gif"), (w + 9, h + 4), [dict(indices=idx, at=(5, 3))], global_table=table)
    gif(add("gif_offset_transparent.gif"), (w + 9, h + 4), [dict(indices=idx, at=(5, 3), transparency=77)], global_table=table)
    gif(add("gif_past_screen.gif"), (20, 10), [dict(indices=idx, at=(4, 2))], global_table=table)
    ext = b"!\xfe\x05hello\x03abc\0" + b"!\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\0" + b"!\x01\x02ab\0"
    gif(add("gif_extensions_and_junk.gif"), (w, h), [dict(indices=idx, transparency=3)], global_table=table,
        extensions=ext, junk=b"\x07\x07")
    gif(add("gif_two_frames.gif"), (w, h), [dict(indices=idx), dict(indices=idx[::-1], table=table[::-1])], global_table=table)
    src = Image.fromarray(noise(rng, 31, 43, 3, 255).astype(np.uint8))
    src.save(add("pil.gif"))
    src.quantize(7).save(add("pil_7_colors.gif"), optimize=True)
    src.convert("L").save(add("pil_gray.gif"))
    src.convert("1").save(add("pil_bilevel.gif"))
    src.save(add("pil_transparent.gif"), transparency=5)
    frames = [src, src.transpose(Image.Transpose.FLIP_LEFT_RIGHT), src.convert("L").convert("RGB")]
    frames[0].save(add("pil_animated.gif"), save_all=True, append_images=frames[1:], duration=50, loop=0)
    return names


def pnm(path, kind, samples, maxval=255, header_comment=b"", plain_sep=b" "):
    """samples: H×W (gray, bits) or H×W×3 (P3/P6) integers. header_comment goes between the width and the height."""
    h, w = samples.shape[:2]
    head = b"P%d\n%d%s %d\n" % (kind, w, header_comment, h)
    if kind not in (1, 4):
        head += b"%d\n" % maxval
    flat = [int(v) for v in samples.reshape(-1)]
    if kind in (1, 2, 3):
        lines, per = [], w * (3 if kind == 3 else 1)
        for i in range(0, len(flat), per):
            lines.append(plain_sep.join(b"%d" % v for v in flat[i:i + per]))
        data = b"\n".join(lines) + b"\n"
    elif kind == 4:
        data = b"".join(bytes(int("".join(str(v) for v in row).ljust((w + 7) // 8 * 8, "0")[i:i + 8], 2)
                                    for i in range(0, (w + 7) // 8 * 8, 8)) for row in samples)
    else:
        data = b"".join(struct.pack(">H" if maxval > 255 else "B", v) for v in flat)
    with open(path, "wb") as f:
        f.write(head + data)


def netpbm_fixtures(out, rng):
    """Netpbm as PIL reads it (own writer, and PIL's); returns the names."""
    names = []
    add = adder(out, names)
    h, w = 29, 37
    pnm(add("p6.ppm"), 6, noise(rng, h, w, 3, 255))
    pnm(add("p6_max1000.ppm"), 6, noise(rng, h, w, 3, 1000), maxval=1000)
    pnm(add("p6_max100.ppm"), 6, noise(rng, h, w, 3, 110), maxval=100)  # samples above it: clamped
    pnm(add("p5.pgm"), 5, noise(rng, h, w, 1, 255)[..., 0], header_comment=b" # a comment\n")
    pnm(add("p5_max15.pgm"), 5, noise(rng, h, w, 1, 15)[..., 0], maxval=15)
    pnm(add("p5_max65535.pgm"), 5, noise(rng, h, w, 1, 600)[..., 0], maxval=65535)  # clamped to 255 as PIL's I -> RGB
    pnm(add("p5_max300.pgm"), 5, noise(rng, h, w, 1, 300)[..., 0], maxval=300)
    pnm(add("p4.pbm"), 4, noise(rng, h, w, 1, 1)[..., 0])
    pnm(add("p3.ppm"), 3, noise(rng, h, w, 3, 255), header_comment=b"#comment inside the width token\n")
    pnm(add("p3_max7.ppm"), 3, noise(rng, h, w, 3, 7), maxval=7, plain_sep=b"\t\n# a comment line\n")
    pnm(add("p2.pgm"), 2, noise(rng, h, w, 1, 255)[..., 0])
    pnm(add("p2_max1000.pgm"), 2, noise(rng, h, w, 1, 1000)[..., 0], maxval=1000)
    pnm(add("p1.pbm"), 1, noise(rng, h, w, 1, 1)[..., 0], plain_sep=b"")
    src = Image.fromarray(noise(rng, 31, 43, 3, 255).astype(np.uint8))
    src.save(add("pil.ppm"))
    src.convert("L").save(add("pil.pgm"))
    src.convert("1").save(add("pil.pbm"))
    Image.fromarray(noise(rng, 31, 43, 1, 700)[..., 0].astype(np.int32)).save(add("pil_16bit.pgm"))
    return names


def packbits(data):
    """PackBits: runs of 3 or more equal bytes as repeats, the rest as literals of up to 128."""
    out, i, n = bytearray(), 0, len(data)
    while i < n:
        j = i
        while j < n and j - i < 128 and data[j] == data[i]:
            j += 1
        if j - i >= 3:
            out += bytes([257 - (j - i), data[i]])
            i = j
            continue
        j = i
        while j < n and j - i < 128 and not (j + 2 < n and data[j] == data[j + 1] == data[j + 2]):
            j += 1
        out += bytes([j - i - 1]) + data[i:j]
        i = j
    return bytes(out)


def tiff_lzw(data):
    """TIFF's LZW: MSB-first codes, Clear 256, EOI 257, the width growing one code early (as libtiff writes)."""
    out, acc, nacc = bytearray(), 0, 0

    def emit(code, width):
        nonlocal acc, nacc
        acc = (acc << width) | code
        nacc += width
        while nacc >= 8:
            out.append((acc >> (nacc - 8)) & 255)
            nacc -= 8

    table, width, nxt = {bytes([i]): i for i in range(256)}, 9, 258
    emit(256, width)
    w = b""
    for c in data:
        wc = w + bytes([c])
        if wc in table:
            w = wc
            continue
        emit(table[w], width)
        table[wc] = nxt
        nxt += 1
        if nxt > (1 << width) - 1 and width < 12:
            width += 1
        if nxt == 4094:
            emit(256, width)
            table, width, nxt = {bytes([i]): i for i in range(256)}, 9, 258
        w = bytes([c])
    if w:
        emit(table[w], width)
        nxt += 1
        if nxt > (1 << width) - 1 and width < 12:
            width += 1
    emit(257, width)
    if nacc:
        out.append((acc << (8 - nacc)) & 255)
    return bytes(out)


def reverse_bits(data):
    return bytes(int(f"{b:08b}"[::-1], 2) for b in data)


def tiff(path, samples, bits, photometric, order="<", compression=1, predictor=1, planar=1, rows_per_strip=None,
         tile=None, extra=None, fillorder=1, colormap=None, bits_tag=None, bigtiff=False, encode=None, tags=None):
    """samples: H×W×C integers. A classic TIFF of one image: strips (rows_per_strip) or tiles (tile = (w, h)),
    chunky or planar, any of raw (1), LZW (5), Deflate (8, 32946) and PackBits (32773), with horizontal
    differencing (predictor 2) and bit-reversed bytes (fill order 2) applied as the format says; BigTIFF's
    8-byte offsets with bigtiff. encode: a chunk's samples → its stored bytes instead (a JPEG strip); tags: more
    entries, tag → (type, values)."""
    h, w, c = samples.shape

    def pack(block):  # rows × cols × channels → bytes, each row padded to a byte; differencing starts each row
        if predictor == 2:
            block = block.copy()
            block[:, 1:] = (block[:, 1:] - block[:, :-1]) % (1 << bits)
        rows = []
        for row in block:
            flat = [int(v) for v in row.reshape(-1)]
            if bits == 16:
                rows.append(struct.pack(order + "%dH" % len(flat), *flat))
            elif bits == 8:
                rows.append(bytes(flat))
            else:
                s = "".join(format(v, f"0{bits}b") for v in flat)
                s = s.ljust((len(s) + 7) // 8 * 8, "0")
                rows.append(bytes(int(s[i:i + 8], 2) for i in range(0, len(s), 8)))
        return b"".join(rows)

    def compress(raw):
        data = {1: lambda d: d, 5: tiff_lzw, 8: zlib.compress, 32946: zlib.compress, 32773: packbits}[compression](raw)
        return reverse_bits(data) if fillorder == 2 else data

    planes = [samples] if planar == 1 else [samples[..., k:k + 1] for k in range(c)]
    chunks = []
    for plane in planes:
        if tile:
            tw, th = tile
            padded = np.zeros(((h + th - 1) // th * th, (w + tw - 1) // tw * tw, plane.shape[2]), dtype=np.int64)
            padded[:h, :w] = plane
            for ty in range(0, h, th):
                for tx in range(0, w, tw):
                    chunks.append(compress(pack(padded[ty:ty + th, tx:tx + tw])))
        else:
            rps = rows_per_strip or h
            for y in range(0, h, rps):
                chunks.append(encode(plane[y:y + rps]) if encode else compress(pack(plane[y:y + rps])))
    magic = (b"II+\0" if order == "<" else b"MM\0+") if bigtiff else (b"II*\0" if order == "<" else b"MM\0*")
    body = bytearray(magic) + (struct.pack(order + "HHQ", 8, 0, 0) if bigtiff else b"\0\0\0\0")
    offsets = []
    for chunk in chunks:
        offsets.append(len(body))
        body += chunk
        if len(body) % 2:
            body += b"\0"
    entries = {256: (4, [w]), 257: (4, [h]), 258: (3, bits_tag or [bits] * c), 259: (3, [compression]),
               262: (3, [photometric]), 277: (3, [c]), 284: (3, [planar])}
    if fillorder != 1:
        entries[266] = (3, [fillorder])
    if predictor != 1:
        entries[317] = (3, [predictor])
    if extra is not None:
        entries[338] = (3, list(extra))
    if colormap is not None:
        entries[320] = (3, [int(v) for v in colormap.T.reshape(-1)])
    entries.update(tags or {})
    long = 16 if bigtiff else 4
    if tile:
        entries.update({322: (3, [tile[0]]), 323: (3, [tile[1]]), 324: (long, offsets), 325: (long, [len(x) for x in chunks])})
    else:
        entries.update({273: (long, offsets), 278: (4, [rows_per_strip or h]), 279: (long, [len(x) for x in chunks])})
    ifd_at = len(body)
    inline, count_fmt, entry_size = (8, "Q", 20) if bigtiff else (4, "I", 12)
    struct.pack_into(order + count_fmt, body, 8 if bigtiff else 4, ifd_at)
    ifd = bytearray(struct.pack(order + ("Q" if bigtiff else "H"), len(entries)))
    extra_data, base = bytearray(), ifd_at + (8 if bigtiff else 2) + entry_size * len(entries) + inline
    for tag in sorted(entries):
        kind, values = entries[tag]
        fmt = {3: "H", 4: "I", 16: "Q"}[kind]
        data = struct.pack(order + fmt * len(values), *values)
        if len(data) <= inline:
            field = data.ljust(inline, b"\0")
        else:
            field = struct.pack(order + count_fmt, base + len(extra_data))
            extra_data += data
        ifd += struct.pack(order + "HH" + count_fmt, tag, kind, len(values)) + field
    ifd += struct.pack(order + count_fmt, 0)
    with open(path, "wb") as f:
        f.write(bytes(body + ifd + extra_data))


def tiff_fixtures(out, rng, large):
    """TIFFs of the layouts PIL reads (own writer: strips, tiles, planes, both byte orders, every lossless
    compression, differencing, bit-reversed bytes; and PIL's own, written through libtiff); returns the names."""
    names = []
    add = adder(out, names)
    if large:
        for photo in sorted(glob.glob("/usr/share/darknet/data/*.jpg"))[:3]:
            Image.open(photo).save(add(os.path.basename(photo)[:-4] + ".tif"), compression="tiff_lzw")
            Image.open(photo).save(add(os.path.basename(photo)[:-4] + "_jpeg.tif"), compression="jpeg", quality=90)
        return names
    h, w = 29, 37
    rgb = noise(rng, h, w, 3, 255)
    tiff(add("tiff_rgb_strips.tif"), rgb, 8, 2, rows_per_strip=7)
    tiff(add("tiff_rgb_mm.tiff"), rgb, 8, 2, order=">")
    tiff(add("tiff_rgb_lzw_predictor.tif"), rgb, 8, 2, compression=5, predictor=2, rows_per_strip=10)
    tiff(add("tiff_rgb_lzw_mm.tif"), noise(rng, 61, 67, 3, 255), 8, 2, order=">", compression=5)
    tiff(add("tiff_rgb_deflate_predictor_mm.tif"), rgb, 8, 2, order=">", compression=8, predictor=2)
    tiff(add("tiff_rgb_deflate32946.tif"), rgb, 8, 2, compression=32946, rows_per_strip=4)
    tiff(add("tiff_rgb_packbits.tif"), rgb, 8, 2, compression=32773, rows_per_strip=3)
    tiff(add("tiff_rgb_tiles.tif"), rgb, 8, 2, tile=(16, 16))
    tiff(add("tiff_rgb_tiles_lzw_predictor.tif"), rgb, 8, 2, tile=(32, 16), compression=5, predictor=2)
    tiff(add("tiff_rgb_planar.tif"), rgb, 8, 2, planar=2, rows_per_strip=8)
    tiff(add("tiff_rgb_planar_lzw.tif"), rgb, 8, 2, planar=2, compression=5, predictor=2, rows_per_strip=8)
    tiff(add("tiff_rgb_planar_tiles_deflate.tif"), rgb, 8, 2, planar=2, compression=8, tile=(16, 16))
    tiff(add("tiff_rgb_fillorder2.tif"), rgb, 8, 2, fillorder=2)
    tiff(add("tiff_rgb_bits_once.tif"), rgb, 8, 2, bits_tag=[8])  # one BitsPerSample value for all three
    rgba = noise(rng, h, w, 4, 255)
    tiff(add("tiff_rgba.tif"), rgba, 8, 2, extra=[2])
    tiff(add("tiff_rgba_no_extra_tag.tif"), rgba, 8, 2)
    tiff(add("tiff_rgbx.tif"), rgba, 8, 2, extra=[0], compression=5)
    premultiplied = rgba.copy()
    premultiplied[..., :3] = premultiplied[..., :3] * premultiplied[..., 3:] // 255
    premultiplied[0, :5, 3] = [0, 1, 2, 254, 255]
    tiff(add("tiff_rgba_associated.tif"), premultiplied, 8, 2, extra=[1])
    tiff(add("tiff_rgba_associated_deflate.tif"), premultiplied, 8, 2, extra=[1], compression=8)
    tiff(add("tiff_rgba_planar.tif"), rgba, 8, 2, extra=[2], planar=2)
    tiff(add("tiff_rgbxx.tif"), noise(rng, h, w, 5, 255), 8, 2, extra=[0, 0])
    tiff(add("tiff_rgbax.tif"), noise(rng, h, w, 5, 255), 8, 2, extra=[2, 0], compression=32773)
    rgb16 = noise(rng, h, w, 3, 65535)
    tiff(add("tiff_rgb16.tif"), rgb16, 16, 2)
    tiff(add("tiff_rgb16_lzw_predictor_mm.tif"), rgb16, 16, 2, order=">", compression=5, predictor=2)
    tiff(add("tiff_rgba16_associated.tif"), noise(rng, h, w, 4, 65535), 16, 2, extra=[1], compression=8)
    tiff(add("tiff_rgba16.tif"), noise(rng, h, w, 4, 65535), 16, 2, extra=[2], order=">")
    gray = noise(rng, h, w, 1, 255)
    tiff(add("tiff_gray8.tif"), gray, 8, 1)
    tiff(add("tiff_gray8_white_is_zero_lzw.tif"), gray, 8, 0, compression=5, predictor=2)
    tiff(add("tiff_gray8_fillorder2_packbits.tif"), gray, 8, 1, compression=32773, fillorder=2)
    tiff(add("tiff_gray4.tif"), noise(rng, h, w, 1, 15), 4, 1, rows_per_strip=5)
    tiff(add("tiff_gray4_white_is_zero_fillorder2.tif"), noise(rng, h, w, 1, 15), 4, 0, fillorder=2, compression=8)
    tiff(add("tiff_gray2.tif"), noise(rng, h, w, 1, 3), 2, 1, compression=5)
    tiff(add("tiff_gray16.tif"), noise(rng, h, w, 1, 600), 16, 1)
    tiff(add("tiff_gray16_deflate_predictor_mm.tif"), noise(rng, h, w, 1, 600), 16, 1, order=">", compression=8, predictor=2)
    tiff(add("tiff_gray16_white_is_zero.tif"), noise(rng, h, w, 1, 600), 16, 0)
    tiff(add("tiff_gray_alpha.tif"), noise(rng, h, w, 2, 255), 8, 1, extra=[2], compression=5)
    tiff(add("tiff_bilevel.tif"), noise(rng, h, w, 1, 1), 1, 1)
    tiff(add("tiff_bilevel_white_is_zero_packbits.tif"), noise(rng, h, w, 1, 1), 1, 0, compression=32773)
    tiff(add("tiff_bilevel_fillorder2_tiles.tif"), noise(rng, h, w, 1, 1), 1, 0, fillorder=2, tile=(16, 16))
    for bits in (1, 2, 4, 8):
        n = 1 << bits
        colormap = rng.integers(0, 65536, (n, 3))
        tiff(add(f"tiff_palette{bits}.tif"), noise(rng, h, w, 1, n - 1), bits, 3, colormap=colormap,
             compression=5 if bits == 8 else 1)
    pa = np.concatenate([noise(rng, h, w, 1, 255), noise(rng, h, w, 1, 255)], axis=2)
    tiff(add("tiff_palette_alpha.tif"), pa, 8, 3, colormap=rng.integers(0, 65536, (256, 3)), extra=[2])
    cmyk = noise(rng, h, w, 4, 255)
    tiff(add("tiff_cmyk.tif"), cmyk, 8, 5)
    tiff(add("tiff_cmyk_lzw_predictor.tif"), cmyk, 8, 5, compression=5, predictor=2)
    tiff(add("tiff_cmykx.tif"), noise(rng, h, w, 5, 255), 8, 5, extra=[0])
    tiff(add("tiff_cmyk16.tif"), noise(rng, h, w, 4, 65535), 16, 5)
    tiff(add("tiff_bigtiff.tif"), noise(rng, h, w, 3, 255), 8, 2, bigtiff=True, compression=5, rows_per_strip=5)
    gray_tiles = noise(rng, h, w, 1, 255)
    tiff(add("tiff_bigtiff_tiles.tif"), gray_tiles, 8, 1, bigtiff=True, tile=(16, 32))
    # PIL 9.4 takes a big-endian BigTIFF for a classic TIFF and cannot open it: the same samples, for a test that
    # reads it as the little-endian one (not a fixture of PIL's, so not named .tif).
    tiff(f"{out}/tiff_bigtiff_tiles_mm.bin", gray_tiles, 8, 1, bigtiff=True, order=">", tile=(16, 32))
    src = Image.fromarray(noise(rng, 31, 43, 3, 255).astype(np.uint8))
    src.save(add("pil.tif"))
    src.save(add("pil_lzw.tif"), compression="tiff_lzw")
    src.save(add("pil_deflate.tif"), compression="tiff_adobe_deflate")
    src.save(add("pil_packbits.tif"), compression="packbits")
    src.convert("P").save(add("pil_palette.tif"))
    src.convert("1").save(add("pil_bilevel_lzw.tif"), compression="tiff_lzw")
    src.convert("RGBA").save(add("pil_rgba_deflate.tif"), compression="tiff_deflate")
    src.convert("CMYK").save(add("pil_cmyk.tif"))
    src.save(add("pil_pages.tif"), save_all=True, append_images=[src.convert("L")])
    # JPEG inside TIFF: PIL writes RGB (no color transform) and gray; libtiff's tiffcp writes YCbCr, subsampled 2×2,
    # in strips (of 16 rows, and one strip taller than the image) and tiles, and RGB.
    src.save(add("pil_jpeg.tif"), compression="jpeg")
    src.convert("L").save(add("pil_jpeg_gray.tif"), compression="jpeg", quality=95)
    with tempfile.TemporaryDirectory() as tmp:
        Image.fromarray(noise(rng, 45, 61, 3, 255).astype(np.uint8)).save(f"{tmp}/base.tif")
        for name, opts in [("tiffcp_jpeg_ycbcr.tif", ["-r", "48"]), ("tiffcp_jpeg_ycbcr_strips.tif", ["-r", "16"]),
                           ("tiffcp_jpeg_ycbcr_tiles.tif", ["-t", "-w", "32", "-l", "32"])]:
            subprocess.run(["tiffcp", "-c", "jpeg", *opts, f"{tmp}/base.tif", add(name)], check=True)
        subprocess.run(["tiffcp", "-c", "jpeg:r", "-r", "16", f"{tmp}/base.tif", add("tiffcp_jpeg_rgb.tif")], check=True)
        # A JPEG strip's own markers do not choose its color space; the TIFF's photometric does (libtiff sets it):
        # JFIF YCbCr strips in an RGB TIFF are taken as they are, and cjpeg's RGB strips (Adobe, no transform) in a
        # YCbCr TIFF are converted. Own rng, so the fixtures above stay as they were.
        jrng = np.random.default_rng(11)

        def jpeg_strip(block, opts=None):
            Image.fromarray(block.astype(np.uint8)).save(f"{tmp}/strip.ppm")
            if opts is None:
                buf = io.BytesIO()
                Image.open(f"{tmp}/strip.ppm").save(buf, "JPEG", quality=90, subsampling=0)
                return buf.getvalue()
            subprocess.run(["cjpeg", *opts, "-outfile", f"{tmp}/strip.jpg", f"{tmp}/strip.ppm"], check=True)
            return open(f"{tmp}/strip.jpg", "rb").read()

        tiff(add("tiff_jpeg_jfif_strips_as_rgb.tif"), noise(jrng, 37, 53, 3, 255), 8, 2, compression=7, rows_per_strip=16,
             encode=jpeg_strip)
        tiff(add("tiff_jpeg_rgb_strips_as_ycbcr.tif"), noise(jrng, 37, 53, 3, 255), 8, 6, compression=7, rows_per_strip=16,
             encode=lambda block: jpeg_strip(block, ["-rgb", "-quality", "90"]), tags={530: (3, [1, 1])})
    return names


def webp_encode(rgb, quality, partitions, method=2):
    """A lossy WebP from libwebp's encoder itself (PIL's), its config's token partitions set: no command-line tool or
    PIL option writes more than one. Method 2 or less, as the token-buffer loop of higher methods keeps one."""
    import ctypes
    lib = ctypes.CDLL("libwebp.so.7")
    abi = 0x020f  # libwebp 1.2's encoder ABI
    h, w, _ = rgb.shape
    config = ctypes.create_string_buffer(256)
    assert lib.WebPConfigInitInternal(config, 0, ctypes.c_float(quality), abi)
    fields = (ctypes.c_int * 64).from_buffer(config)
    fields[2], fields[18] = method, partitions  # WebPConfig.method, .partitions (log2 of the count)
    assert lib.WebPValidateConfig(config)
    picture = ctypes.create_string_buffer(512)
    assert lib.WebPPictureInitInternal(picture, abi)
    ints = (ctypes.c_int * 128).from_buffer(picture)
    ints[2], ints[3] = w, h  # WebPPicture.width, .height
    writer = ctypes.create_string_buffer(64)
    lib.WebPMemoryWriterInit(writer)
    data = np.ascontiguousarray(rgb.astype(np.uint8))
    assert lib.WebPPictureImportRGB(picture, data.ctypes.data_as(ctypes.c_void_p), w * 3)
    pointers = (ctypes.c_void_p * 64).from_buffer(picture)
    pointers[12] = ctypes.cast(lib.WebPMemoryWrite, ctypes.c_void_p).value  # WebPPicture.writer
    pointers[13] = ctypes.addressof(writer)                                 # WebPPicture.custom_ptr
    ok = lib.WebPEncode(config, picture)
    memory = (ctypes.c_void_p * 2).from_buffer(writer)
    out = ctypes.string_at(memory[0], memory[1])
    lib.WebPPictureFree(picture)
    lib.WebPMemoryWriterClear(writer)
    assert ok, "WebPEncode failed"
    return out


def webp_fixtures(out, rng, large):
    """WebPs (PIL decodes them with libwebp): lossy by PIL, by cwebp with every loop filter setting, segments, qualities
    and methods, with alpha and metadata chunks (VP8X), with 2 to 8 token partitions (libwebp's encoder through
    ctypes); animations; lossless by PIL and cwebp, palettes of every packing; returns the names."""
    names = []
    add = adder(out, names)
    photo = Image.open("/usr/share/darknet/data/dog.jpg").convert("RGB")

    def crop(w, h):
        x0, y0 = rng.integers(photo.width - w), rng.integers(photo.height - h)
        return photo.crop((x0, y0, x0 + w, y0 + h))

    def cwebp(name, image, *opts):
        with tempfile.TemporaryDirectory() as tmp:
            image.save(f"{tmp}/src.png")
            subprocess.run(["cwebp", "-quiet", *opts, f"{tmp}/src.png", "-o", add(name)], check=True)

    if large:
        for p in sorted(glob.glob("/usr/share/darknet/data/*.jpg")):
            Image.open(p).save(add(os.path.basename(p)[:-4] + ".webp"), quality=80)
        sizes = [(1, 1), (1, 17), (17, 1), (3, 5), (15, 16), (16, 15), (31, 33), (101, 77), (250, 13), (400, 300)]
        for i in range(40):
            w, h = sizes[rng.integers(len(sizes))]
            opts = ["-q", str(rng.choice([0, 20, 50, 75, 90, 100])), "-m", str(rng.integers(7))]
            if rng.random() < 0.3:
                opts += ["-f", str(rng.choice([0, 20, 60, 100]))]
            if rng.random() < 0.3:
                opts += ["-sharpness", str(rng.integers(8))]
            if rng.random() < 0.3:
                opts.append("-nostrong")
            if rng.random() < 0.3:
                opts += ["-segments", str(rng.integers(1, 5))]
            if rng.random() < 0.2:
                opts += ["-sns", str(rng.choice([0, 100]))]
            if rng.random() < 0.2:
                opts.append("-af")
            image = crop(w, h)
            if rng.random() < 0.3:  # lossless, a palette's image now and then
                opts = ["-lossless", "-q", str(rng.choice([0, 50, 100])), "-m", str(rng.integers(7))]
                if rng.random() < 0.4:
                    image = image.quantize(int(rng.choice([2, 3, 5, 16, 17, 100]))).convert("RGB")
            cwebp(f"cwebp_{i:02d}_{w}x{h}.webp", image, *opts)
        return names
    crop(61, 45).save(add("webp_q75_61x45.webp"), quality=75)
    for w, h in [(1, 1), (1, 17), (17, 1), (16, 16), (17, 15)]:
        crop(w, h).save(add(f"webp_{w}x{h}.webp"), quality=80)
    crop(40, 30).save(add("webp_q0.webp"), quality=0)
    crop(40, 30).save(add("webp_q100.webp"), quality=100)
    cwebp("cwebp_simple_filter.webp", crop(53, 37), "-q", "60", "-nostrong")
    cwebp("cwebp_no_filter.webp", crop(53, 37), "-q", "60", "-f", "0")
    cwebp("cwebp_sharpness7.webp", crop(53, 37), "-q", "40", "-f", "100", "-sharpness", "7")
    cwebp("cwebp_one_segment_m0.webp", crop(53, 37), "-q", "60", "-segments", "1", "-m", "0")
    cwebp("cwebp_sns100_m6_af.webp", crop(53, 37), "-q", "30", "-sns", "100", "-m", "6", "-af")
    cwebp("cwebp_sharp_yuv.webp", crop(33, 31), "-q", "90", "-sharp_yuv")
    rgba = crop(45, 33).convert("RGBA")
    rgba.putalpha(Image.fromarray((noise(rng, 33, 45, 1, 255)[..., 0] > 128).astype(np.uint8) * 255))
    cwebp("cwebp_alpha.webp", rgba, "-q", "70")          # VP8X, ALPH, VP8: the color decodes without the alpha
    rgba.save(add("webp_alpha_pil.webp"), quality=70)
    crop(30, 20).save(add("webp_icc.webp"), quality=70, icc_profile=b"\0" * 64)  # VP8X, ICCP, VP8
    crop(30, 20).save(add("webp_exif.webp"), quality=70, exif=b"Exif\0\0II*\0\x08\0\0\0\0\0")  # VP8X, VP8, EXIF
    for p in (1, 2, 3):
        with open(add(f"webp_{1 << p}_partitions.webp"), "wb") as f:
            f.write(webp_encode(np.asarray(crop(37, 70)), 70, p))
    frames = [crop(40, 30) for _ in range(3)]
    frames[0].save(add("webp_animated.webp"), save_all=True, append_images=frames[1:], quality=70, duration=100)

    def chunk(tag, data):
        return tag + struct.pack("<I", len(data)) + data + b"\0" * (len(data) & 1)

    # An animation whose first frame is smaller than its canvas and off its corner (PIL writes full first frames).
    buf = io.BytesIO()
    crop(21, 15).save(buf, "WEBP", quality=70)
    vp8 = buf.getvalue()[12:]
    u24 = lambda v: struct.pack("<I", v)[:3]
    body = (chunk(b"VP8X", bytes([0x02, 0, 0, 0]) + u24(33 - 1) + u24(25 - 1)) + chunk(b"ANIM", bytes([0, 0, 255, 255, 0, 0]))
            + chunk(b"ANMF", u24(3) + u24(2) + u24(21 - 1) + u24(15 - 1) + u24(100) + bytes([0]) + vp8))
    with open(add("webp_animated_offset_frame.webp"), "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body)
    # Lossless: every transform (predictors, cross color, subtract green; palettes of 2, 4, 16 and more colors, packed
    # 8, 4, 2 and 1 to a pixel), color caches, meta prefix codes, LZ77 copies; alpha; an animation.
    crop(61, 45).save(add("webp_lossless.webp"), lossless=True)
    crop(61, 45).save(add("webp_lossless_m0.webp"), lossless=True, method=0)
    crop(1, 1).save(add("webp_lossless_1x1.webp"), lossless=True)
    for colors, (w, h) in [(2, (53, 17)), (4, (50, 21)), (16, (37, 19)), (200, (45, 33))]:
        crop(w, h).quantize(colors).convert("RGB").save(add(f"webp_lossless_palette{colors}.webp"), lossless=True)
    rgba = np.asarray(crop(40, 30).convert("RGBA")).copy()
    rgba[..., 3] = np.arange(40)[None, :] * 6
    Image.fromarray(rgba).save(add("webp_lossless_alpha.webp"), lossless=True, exact=True)
    cwebp("cwebp_lossless_z9.webp", crop(64, 48), "-z", "9")
    cwebp("cwebp_near_lossless60.webp", crop(64, 48), "-lossless", "-near_lossless", "60")
    frames = [crop(40, 30) for _ in range(2)]
    frames[0].save(add("webp_lossless_animated.webp"), save_all=True, append_images=frames[1:], lossless=True)
    # Alpha planes PIL decodes (and refuses the file when it cannot): many levels, which libwebp decodes as ARGB...
    yy, xx = np.mgrid[0:45, 0:61]
    rgba = crop(61, 45).convert("RGBA")
    rgba.putalpha(Image.fromarray((128 + 100 * np.sin(xx / 7.0) * np.cos(yy / 5.0)).astype(np.uint8)))
    cwebp("cwebp_alpha_smooth.webp", rgba, "-q", "50", "-alpha_filter", "best")
    # ...and two levels a byte per pixel, where libwebp takes data that runs out with the last pixel: this plane's
    # lossless data cut by a byte still decodes there (its reader's wrapped bits past the end make the last copy fit).
    yy, xx = np.mgrid[0:71, 0:97]
    rgba = crop(97, 71).convert("RGBA")
    rgba.putalpha(Image.fromarray(((xx * 3 + yy * 5) % 37 < 20).astype(np.uint8) * 255))
    buf = io.BytesIO()
    rgba.save(buf, "WEBP", quality=50)
    riff = buf.getvalue()
    assert riff[12:16] == b"VP8X" and riff[30:34] == b"ALPH", "PIL wrote no ALPH chunk"
    size = struct.unpack("<I", riff[34:38])[0]
    alph, rest = riff[38:38 + size], riff[38 + size + (size & 1):]

    def cut(n):
        body = b"WEBP" + riff[12:30] + chunk(b"ALPH", alph[:size - n]) + rest
        return b"RIFF" + struct.pack("<I", len(body)) + body

    Image.open(io.BytesIO(cut(1))).convert("RGB")  # libwebp takes it...
    try:
        Image.open(io.BytesIO(cut(2))).convert("RGB")  # ...but not a byte shorter (WebpTests)
        raise AssertionError("PIL decoded the alpha plane cut by two bytes")
    except OSError:
        pass
    with open(add("webp_alpha_ends_early.webp"), "wb") as f:
        f.write(cut(1))
    return names


def scan_data(jpeg):
    """(start, end) of the last scan's entropy-coded data: from its header's end to the next marker that is not RSTn."""
    sos = jpeg.rindex(b"\xff\xda")
    start = end = sos + 2 + struct.unpack(">H", jpeg[sos + 2:sos + 4])[0]
    while end + 1 < len(jpeg) and not (jpeg[end] == 0xFF and jpeg[end + 1] not in (0x00, *range(0xD0, 0xD8))):
        end += 1
    return start, end


def damaged_jpeg_fixtures(out):
    """
    JPEGs with damaged entropy-coded data, which libjpeg decodes with warnings that PIL ignores (so they decode):
    each fixture's pixels are libjpeg's answer to one kind of damage.
    """
    names = []
    add = adder(out, names)
    base = open(f"{out}/baseline.jpg", "rb").read()
    start, end = scan_data(base)
    # The data stops at the end-of-image marker a quarter of the way: the rest of the image is mid-gray.
    with open(add("damaged_cut_short.jpg"), "wb") as f:
        f.write(base[:start + (end - start) // 4] + b"\xff\xd9")
    # A run of one bits (stuffed 0xFF bytes) is no Huffman code: libjpeg reads 17 bits and takes a zero symbol.
    with open(add("damaged_bad_huffman_code.jpg"), "wb") as f:
        at = start + (end - start) // 3
        f.write(base[:at] + b"\xff\x00" * 3 + base[at + 6:])
    # One flipped bit that makes coefficients so large that libjpeg-turbo's 16-bit SIMD IDCT saturates and wraps.
    flipped = bytearray(base)
    flipped[7288] ^= 0x04
    with open(add("damaged_huge_coefficients.jpg"), "wb") as f:
        f.write(bytes(flipped))
    # Fill bytes before a data 0xFF (0xFF 0xFF 0x00): libjpeg-turbo's fast path takes them for a marker and reads
    # zeros, then its slow path decodes the MCU again over what the fast one wrote.
    with open(add("damaged_fill_bytes.jpg"), "wb") as f:
        f.write(base[:3008] + b"\xff\xff\x00" + base[3008:])
    # A restart marker in a scan without restart intervals stops the data there (gray to the end).
    with open(add("damaged_marker_in_data.jpg"), "wb") as f:
        at = start + (end - start) // 2
        f.write(base[:at] + b"\xff\xd3" + base[at:])
    # Restart markers out of order, which libjpeg resynchronizes: RST0 written as RST5 (too far off to be another
    # interval's: taken as this one's), as RST1 (the next interval's: this one is decoded from no data), or missing.
    rst = open(f"{out}/restart_3mcu.jpg", "rb").read()
    first = rst.index(b"\xff\xd0", scan_data(rst)[0])
    for name, data in [("damaged_restart_renumbered.jpg", rst[:first + 1] + b"\xd5" + rst[first + 2:]),
                       ("damaged_restart_early.jpg", rst[:first + 1] + b"\xd1" + rst[first + 2:]),
                       ("damaged_restart_missing.jpg", rst[:first] + rst[first + 2:])]:
        with open(add(name), "wb") as f:
            f.write(data)
    # A marker below SOF0 where RST0 should be: libjpeg's resynchronization skips it to the next restart marker.
    with open(add("damaged_restart_low_marker.jpg"), "wb") as f:
        f.write(rst[:first + 1] + b"\x05" + rst[first + 2:])
    # Damage in a progressive refinement scan: the data runs into a marker, its blocks keep the earlier scans' bits.
    prog = open(f"{out}/progressive.jpg", "rb").read()
    start, end = scan_data(prog)
    with open(add("damaged_progressive_cut.jpg"), "wb") as f:
        f.write(prog[:start + (end - start) // 3] + prog[end:])
    # A progressive file that ends early (an end-of-image marker in damaged data) leaves coefficients inexact, which
    # libjpeg's block smoothing estimates: after the first scan (the DC terms alone), and within an AC scan.
    sos = [i for i in range(len(prog) - 1) if prog[i:i + 2] == b"\xff\xda"]
    with open(add("damaged_progressive_dc_only.jpg"), "wb") as f:
        f.write(prog[:sos[1]] + b"\xff\xd9")
    with open(add("damaged_progressive_early_end.jpg"), "wb") as f:
        start, end = scan_data(prog[:sos[3]] + b"\xff\xd9")
        f.write(prog[:start + (end - start) // 2] + b"\xff\xd9")
    # Three scans of one component each, the end-of-image marker before the third: that component is mid-gray.
    scans = open(f"{out}/separate_scans.jpg", "rb").read()
    with open(add("damaged_scan_missing.jpg"), "wb") as f:
        f.write(scans[:scans.rindex(b"\xff\xda")] + b"\xff\xd9")
    # Junk between segments and after the scan (both readers skip it), and after the one scan of every component
    # a segment cut off by the end of the file, with no end-of-image marker: PIL has every row by then.
    dqt = base.index(b"\xff\xdb")
    with open(add("junk_and_cut_segment.jpg"), "wb") as f:
        f.write(base[:dqt] + b"junk\xff\x00" + base[dqt:-2] + b"more junk\xff\xe1\x00\x40Exif\x00\x00abc")
    # Motion JPEG frames leave out the Huffman tables when they are the standard ones, which libjpeg then supplies.
    out_tables, pos = bytearray(base[:2]), 2
    while base[pos + 1] != 0xDA:
        length = struct.unpack(">H", base[pos + 2:pos + 4])[0]
        if base[pos + 1] != 0xC4:
            out_tables += base[pos:pos + 2 + length]
        pos += 2 + length
    with open(add("mjpeg_no_huffman_tables.jpg"), "wb") as f:
        f.write(bytes(out_tables) + base[pos:])
    for name in names:  # each is one libjpeg decodes, warnings and all
        Image.open(f"{out}/{name}").convert("RGB")
    return names


def noise(rng, h, w, c, maxv):
    # Smooth gradients plus noise: photo-like enough to exercise rounding everywhere.
    y, x = np.mgrid[0:h, 0:w]
    base = (np.sin(x[..., None] / (3 + np.arange(c))) + np.cos(y[..., None] / 5.0)) * 0.25 + 0.5
    v = base * maxv + rng.normal(0, maxv * 0.15, (h, w, c))
    return np.clip(np.round(v), 0, maxv).astype(np.int64)


def cjpeg_variants(out, rng, count):
    """Random crops of a photo through cjpeg with random sampling factors (1 to 4, mixed), sizes down to 1×1,
    quality, progressive, restart intervals, optimized tables, gray and RGB: the decoder must match PIL exactly."""
    photo = np.asarray(Image.open("/usr/share/darknet/data/dog.jpg").convert("RGB"))
    samplings = ["1x1", "2x1", "1x2", "2x2", "4x1", "1x4", "4x2", "2x4", "3x1", "1x3", "3x2",
                 "2x2,1x1,2x1", "2x2,2x1,1x2", "2x1,1x1,1x1", "1x2,1x1,1x1", "4x1,2x1,1x1"]
    sizes = [(1, 1), (1, 17), (17, 1), (2, 2), (3, 5), (9, 9), (15, 16), (16, 15), (31, 33), (64, 48), (101, 77), (250, 13)]
    names = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(count):
            h, w = sizes[rng.integers(len(sizes))]
            y0, x0 = rng.integers(photo.shape[0] - h), rng.integers(photo.shape[1] - w)
            img = Image.fromarray(photo[y0:y0 + h, x0:x0 + w])
            gray = rng.random() < 0.15
            src = f"{tmp}/src.pgm" if gray else f"{tmp}/src.ppm"
            (img.convert("L") if gray else img).save(src)
            opts = ["-quality", str(rng.choice([30, 75, 90, 100]))]
            if not gray:
                opts += ["-sample", samplings[rng.integers(len(samplings))]]
            if rng.random() < 0.5:
                opts.append("-progressive")
            if rng.random() < 0.3:
                opts += ["-restart", str(rng.choice(["1", "2B", "5B"]))]
            if rng.random() < 0.3:
                opts.append("-optimize")
            if not gray and rng.random() < 0.1:
                opts.append("-rgb")
            name = f"cjpeg_{i:02d}_{w}x{h}.jpg"
            subprocess.run(["cjpeg", *opts, "-outfile", f"{out}/{name}", src], check=True)
            names.append(name)
    return names


def main():
    warnings.filterwarnings("ignore", message="Palette images with Transparency")
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--large", action="store_true")
    ap.add_argument("--tensors", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(5)
    made = []

    def add(name):
        made.append(name)

    sizes = [(45, 61), (7, 5), (300, 257)] if not args.large else [(1000, 37), (513, 769), (256, 256), (224, 300), (1200, 900)]
    for i, (h, w) in enumerate(sizes):
        png(f"{args.out}/rgb8_{w}x{h}.png", noise(rng, h, w, 3, 255), 2, 8); add(f"rgb8_{w}x{h}.png")
    if not args.large:
        h, w = 33, 50
        png(f"{args.out}/gray8.png", noise(rng, h, w, 1, 255), 0, 8); add("gray8.png")
        png(f"{args.out}/gray16.png", noise(rng, h, w, 1, 400), 0, 16); add("gray16.png")
        for d in (1, 2, 4):
            png(f"{args.out}/gray{d}.png", noise(rng, h, w, 1, 2 ** d - 1), 0, d); add(f"gray{d}.png")
        png(f"{args.out}/graya8.png", noise(rng, h, w, 2, 255), 4, 8); add("graya8.png")
        png(f"{args.out}/graya16.png", noise(rng, h, w, 2, 65535), 4, 16); add("graya16.png")
        png(f"{args.out}/rgb16.png", noise(rng, h, w, 3, 65535), 2, 16); add("rgb16.png")
        png(f"{args.out}/rgba8.png", noise(rng, h, w, 4, 255), 6, 8); add("rgba8.png")
        png(f"{args.out}/rgba16.png", noise(rng, h, w, 4, 65535), 6, 16); add("rgba16.png")
        for d in (1, 2, 4, 8):
            n = 2 ** d
            pal = rng.integers(0, 256, (n, 3))
            png(f"{args.out}/palette{d}.png", noise(rng, h, w, 1, n - 1), 3, d, palette=pal,
                trns=bytes(rng.integers(0, 256, n // 2 + 1).astype(np.uint8))); add(f"palette{d}.png")
        png(f"{args.out}/rgb8_interlaced.png", noise(rng, 37, 41, 3, 255), 2, 8, interlace=True); add("rgb8_interlaced.png")
        png(f"{args.out}/palette4_interlaced.png", noise(rng, 19, 23, 1, 15), 3, 4, palette=rng.integers(0, 256, (16, 3)),
            interlace=True); add("palette4_interlaced.png")
        png(f"{args.out}/gray16_interlaced.png", noise(rng, 11, 13, 1, 300), 0, 16, interlace=True); add("gray16_interlaced.png")
        src = Image.fromarray(noise(rng, 90, 120, 3, 255).astype(np.uint8))
        src.save(f"{args.out}/baseline.jpg", quality=90); add("baseline.jpg")
        src.save(f"{args.out}/progressive.jpg", quality=85, progressive=True); add("progressive.jpg")
        src.save(f"{args.out}/q95_444.jpg", quality=95, subsampling=0); add("q95_444.jpg")
        src.convert("L").save(f"{args.out}/gray.jpg", quality=90); add("gray.jpg")
        src.save(f"{args.out}/q80_422_progressive.jpg", quality=80, subsampling=1, progressive=True); add("q80_422_progressive.jpg")
        src.convert("CMYK").save(f"{args.out}/cmyk.jpg", quality=90); add("cmyk.jpg")
        # No encoder here writes YCCK; the same data with the Adobe marker's transform set to 2 is read as YCCK by
        # libjpeg (and by our decoder), so both convert the same samples through YCC -> RGB and inversion.
        data = bytearray(open(f"{args.out}/cmyk.jpg", "rb").read())
        data[data.index(b"Adobe") + 11] = 2
        open(f"{args.out}/ycck.jpg", "wb").write(bytes(data)); add("ycck.jpg")
        odd = Image.fromarray(noise(rng, 3, 3, 3, 255).astype(np.uint8))  # chroma 2 samples wide: box upsampling
        odd.save(f"{args.out}/tiny_420.jpg", quality=90, subsampling=2); add("tiny_420.jpg")
        with tempfile.TemporaryDirectory() as tmp:
            ppm = f"{tmp}/src.ppm"
            Image.fromarray(noise(rng, 53, 67, 3, 255).astype(np.uint8)).save(ppm)
            with open(f"{tmp}/separate.scans", "w") as f:
                f.write("0;\n1;\n2;\n")
            # A valid progressive script that never refines the luma's AC terms' last bit: libjpeg smooths its blocks.
            with open(f"{tmp}/unrefined.scans", "w") as f:
                f.write("0,1,2: 0-0, 0, 0;\n0: 1-63, 0, 1;\n1: 1-63, 0, 0;\n2: 1-63, 0, 0;\n")
            for name, opts in [("h1v2_440.jpg", ["-sample", "1x2"]), ("h4v1_411.jpg", ["-sample", "4x1"]),
                               ("h3v1.jpg", ["-sample", "3x1"]), ("mixed_2x2_1x1_2x1.jpg", ["-sample", "2x2,1x1,2x1"]),
                               ("restart_3mcu.jpg", ["-restart", "3B"]),
                               ("restart_progressive.jpg", ["-restart", "1", "-progressive", "-sample", "2x2"]),
                               ("rgb_components.jpg", ["-rgb"]), ("separate_scans.jpg", ["-scans", f"{tmp}/separate.scans"]),
                               ("progressive_unrefined.jpg", ["-scans", f"{tmp}/unrefined.scans"])]:
                subprocess.run(["cjpeg", "-quality", "85", *opts, "-outfile", f"{args.out}/{name}", ppm], check=True)
                add(name)
        made.extend(damaged_jpeg_fixtures(args.out))
    else:
        made.extend(cjpeg_variants(args.out, rng, 60))
        for photo in sorted(glob.glob("/usr/share/darknet/data/*.jpg")):
            name = os.path.basename(photo)
            Image.open(photo).save(f"{args.out}/{name}")  # a copy re-encoded by libjpeg: baseline
            add(name)
            shutil.copyfile(photo, f"{args.out}/original_{name}")  # as the camera wrote it (some are 4:4:0)
            add(f"original_{name}")
            Image.open(photo).save(f"{args.out}/progressive_{name}", quality=92, progressive=True); add(f"progressive_{name}")
            Image.open(photo).save(f"{args.out}/{name[:-4]}.png"); add(f"{name[:-4]}.png")

    made.extend(bmp_fixtures(args.out, np.random.default_rng(7), args.large))
    made.extend(gif_fixtures(args.out, np.random.default_rng(8), args.large))
    if not args.large:
        made.extend(netpbm_fixtures(args.out, np.random.default_rng(9)))
    made.extend(tiff_fixtures(args.out, np.random.default_rng(10), args.large))
    made.extend(webp_fixtures(args.out, np.random.default_rng(12), args.large))

    meta = []
    for name in made:
        img = Image.open(f"{args.out}/{name}").convert("RGB")
        crop = np.ascontiguousarray(np.asarray(RESIZE_CROP(img), dtype=np.uint8))
        tensor = np.ascontiguousarray(FULL(img).numpy().astype(np.float32))
        if args.tensors:
            np.save(f"{args.out}/{name}.tensor.npy", tensor)
        meta.append({"file": name, "size": list(img.size),
                     "rgb_sha256": hashlib.sha256(np.ascontiguousarray(np.asarray(img, dtype=np.uint8)).tobytes()).hexdigest(),
                     "crop_sha256": hashlib.sha256(crop.tobytes()).hexdigest(),
                     "tensor_sha256": hashlib.sha256(tensor.tobytes()).hexdigest()})
    with open(f"{args.out}/images.json", "w") as f:
        json.dump(meta, f, indent=1)


if __name__ == "__main__":
    main()
