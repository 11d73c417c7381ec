//! Demo clips: small, real, playable MP4 files generated in pure Rust.
//!
//! `marquee up` seeds a few demo movies that must actually stream, but the repository carries no binary media
//! and the machine may not have ffmpeg. So this module writes the video itself: an H.264 constrained-baseline
//! stream (the profile every browser, phone and ffmpeg decodes) in a plain, non-fragmented "faststart" MP4
//! (moov before mdat, so a `<video>` element can start playing while it downloads; AVCC, i.e. 4-byte
//! length-prefixed NAL units, with the SPS/PPS in the avcC box).
//!
//! The picture is a test pattern (75% colour bars, a reverse-bar strip, a dark band) with the title and a
//! running clock ("00:07 / 00:20") drawn in a built-in 5x7 font. The encoder needs no transform, quantiser or
//! entropy-coding tables, because it only ever codes pictures losslessly:
//! - every second starts with an IDR picture (the clock changes once a second, and a keyframe per second keeps
//!   seeking and HLS segmenting trivial). A macroblock that merely repeats the row above it or the column left
//!   of it (most of the bars and the band) is an Intra 4x4 macroblock with vertical/horizontal prediction and no
//!   residual, a few bits; every other macroblock is I_PCM, its 384 raw samples;
//! - the other 9 frames of the second are P pictures whose macroblocks are all skipped (a repeat, a few bytes);
//! - deblocking is disabled in every slice, so decoded pictures are bit-exact copies of what was drawn.
//!
//! 320x180 is coded as 320x192 (12 macroblock rows) with the bottom 12 lines cropped in the SPS. Colours are
//! BT.601 limited range (signalled in the VUI), chroma 4:2:0 by averaging 2x2 pixels.

use std::io::{self, Cursor, Read, Seek, SeekFrom};

const W: usize = 320;
const H: usize = 180;
const MBS_X: usize = W / 16;
const MBS_Y: usize = H.div_ceil(16);
const CODED_H: usize = MBS_Y * 16;
const FPS: u32 = 10;
const TIMESCALE: u32 = 1000;
const LEVEL_IDC: u8 = 13; // 1.3: 396 macroblocks a frame, 768 kbit/s; even an all-I_PCM second is ~740 kbit
const LOG2_MAX_FRAME_NUM: u32 = 4;
// Intra 4x4 prediction modes; an I_PCM macroblock counts as "not Intra 4x4", i.e. mode 2 (DC), for neighbours.
const VERTICAL: u8 = 0;
const HORIZONTAL: u8 = 1;
const PCM: u8 = 2;

/// A playable MP4 (H.264 constrained baseline, 320x180, 10 fps, no audio) showing a test pattern, `title` and
/// a running clock, `seconds` long (clamped to 1..=600).
pub fn mp4(title: &str, seconds: u32) -> Vec<u8> {
    let seconds = seconds.clamp(1, 600);
    let base = Canvas::with_title(title);
    let skips: Vec<Vec<u8>> = (1..FPS).map(|frame_num| nal(0x41, &p_skip_slice(frame_num))).collect();
    let (mut mdat, mut sizes) = (Vec::new(), Vec::new());
    for second in 0..seconds {
        let idr = nal(0x65, &idr_slice(&base.at(second, seconds).to_yuv(), second));
        for unit in std::iter::once(&idr).chain(&skips) {
            sizes.push(len32(unit.len() + 4));
            mdat.extend_from_slice(&len32(unit.len()).to_be_bytes());
            mdat.extend_from_slice(unit);
        }
    }
    mux(&sizes, &mdat, seconds)
}

/// The duration in seconds (possibly fractional) an MP4 declares in its moov/mvhd, or None when the bytes are
/// not an MP4 we can read. Works on the whole file or just its start (when moov comes first); never panics.
pub fn mp4_duration_seconds(bytes_of_the_start_or_whole_file: &[u8]) -> Option<f64> {
    mp4_duration_from_reader(&mut Cursor::new(bytes_of_the_start_or_whole_file)).ok().flatten()
}

/// Like [`mp4_duration_seconds`], but walks the top-level boxes by seeking, so only box headers and the mvhd
/// are read (a 4 GB file with moov at the end costs a few small reads). Ok(None): not a readable MP4.
pub fn mp4_duration_from_reader<R: Read + Seek>(r: &mut R) -> io::Result<Option<f64>> {
    let len = r.seek(SeekFrom::End(0))?;
    let mut pos = 0;
    for _ in 0..100_000 {
        let Some((kind, body, end)) = box_header(r, pos, len)? else { return Ok(None) };
        if &kind == b"moov" {
            // A truncated moov is fine (we may have only the start of the file) as long as mvhd is there.
            return moov_duration(r, body, end.min(len));
        }
        pos = end;
    }
    Ok(None)
}

fn moov_duration<R: Read + Seek>(r: &mut R, mut pos: u64, end: u64) -> io::Result<Option<f64>> {
    while let Some((kind, body, box_end)) = box_header(r, pos, end)? {
        if &kind != b"mvhd" {
            pos = box_end;
            continue;
        }
        let avail = box_end.min(end) - body;
        let mut b = [0u8; 32];
        let need = match read_at(r, body, &mut b[..4])? {
            true if b[0] == 0 => 20,
            true if b[0] == 1 => 32,
            _ => return Ok(None),
        };
        if avail < need || !read_at(r, body, &mut b[..need as usize])? {
            return Ok(None);
        }
        let be = |at: usize, n: usize| b[at..at + n].iter().fold(0u64, |acc, &x| acc << 8 | u64::from(x));
        let (timescale, duration, unknown) = if b[0] == 0 {
            (be(12, 4), be(16, 4), u64::from(u32::MAX))
        } else {
            (be(20, 4), be(24, 8), u64::MAX)
        };
        return Ok((timescale != 0 && duration != unknown).then(|| duration as f64 / timescale as f64));
    }
    Ok(None)
}

/// The box at `pos` (which must fit its header before `limit`): (type, body start, end). The end may lie past
/// `limit` (truncated input); None when there is no valid header.
fn box_header<R: Read + Seek>(r: &mut R, pos: u64, limit: u64) -> io::Result<Option<([u8; 4], u64, u64)>> {
    let mut h = [0u8; 16];
    if limit.saturating_sub(pos) < 8 || !read_at(r, pos, &mut h[..8])? {
        return Ok(None);
    }
    let kind = [h[4], h[5], h[6], h[7]];
    let (header, size) = match u32::from_be_bytes([h[0], h[1], h[2], h[3]]) {
        0 => (8, limit - pos), // extends to the end of the file
        1 if limit - pos >= 16 && read_at(r, pos + 8, &mut h[8..16])? => {
            (16, u64::from_be_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]]))
        }
        1 => return Ok(None),
        n => (8, u64::from(n)),
    };
    Ok(match pos.checked_add(size) {
        Some(end) if size >= header => Some((kind, pos + header, end)),
        _ => None,
    })
}

/// Reads exactly `buf.len()` bytes at `pos`; false when the input ends first.
fn read_at<R: Read + Seek>(r: &mut R, pos: u64, buf: &mut [u8]) -> io::Result<bool> {
    r.seek(SeekFrom::Start(pos))?;
    match r.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX) // a 600 s clip is ~20 MB
}

// ---- drawing ----

/// An RGB picture of the coded size (320x192; the bottom 12 lines are cropped away).
#[derive(Clone)]
struct Canvas(Vec<[u8; 3]>);

struct Yuv {
    y: Vec<u8>,
    cb: Vec<u8>,
    cr: Vec<u8>,
}

const TEXT: [u8; 3] = [255, 255, 255];
const BAND: [u8; 3] = [24, 24, 24];

impl Canvas {
    fn with_title(title: &str) -> Canvas {
        const BARS: [[u8; 3]; 7] = [
            [191, 191, 191],
            [191, 191, 0],
            [0, 191, 191],
            [0, 191, 0],
            [191, 0, 191],
            [191, 0, 0],
            [0, 0, 191],
        ];
        const STRIP: [[u8; 3]; 7] = [
            [0, 0, 191],
            [16, 16, 16],
            [191, 0, 191],
            [16, 16, 16],
            [0, 191, 191],
            [16, 16, 16],
            [191, 191, 191],
        ];
        let mut c = Canvas(vec![BAND; W * CODED_H]);
        for i in 0..7 {
            let (x0, x1) = (i * W / 7, (i + 1) * W / 7);
            c.rect(x0, 0, x1 - x0, 112, BARS[i]);
            c.rect(x0, 112, x1 - x0, 8, STRIP[i]);
        }
        let mut text: Vec<char> =
            title.split_whitespace().collect::<Vec<_>>().join(" ").chars().map(fold).collect();
        let scale = if text.len() <= 17 { 3 } else { 2 }; // 18 or 12 px a character, 8 px margins
        if text.len() > 25 {
            text.truncate(24);
            while text.last() == Some(&' ') {
                text.pop();
            }
            text.push('…');
        }
        c.text(&text, 141 - 7 * scale / 2, scale, TEXT);
        c
    }

    /// The picture at `second`: the titled pattern plus the clock.
    fn at(&self, second: u32, total: u32) -> Canvas {
        let clock = format!("{:02}:{:02} / {:02}:{:02}", second / 60, second % 60, total / 60, total % 60);
        let mut c = self.clone();
        c.text(&clock.chars().collect::<Vec<_>>(), 161, 2, [200, 200, 200]); // within macroblock row 10
        c
    }

    fn rect(&mut self, x0: usize, y0: usize, w: usize, h: usize, rgb: [u8; 3]) {
        for y in y0..(y0 + h).min(CODED_H) {
            for x in x0..(x0 + w).min(W) {
                self.0[y * W + x] = rgb;
            }
        }
    }

    /// Draws `text` centred horizontally, its top at `y0`, each font pixel `scale`x`scale`.
    fn text(&mut self, text: &[char], y0: usize, scale: usize, rgb: [u8; 3]) {
        let x0 = W.saturating_sub((text.len() * 6).saturating_sub(1) * scale) / 2;
        for (i, &ch) in text.iter().enumerate() {
            for (row, bits) in glyph(ch).iter().enumerate() {
                for col in 0..5 {
                    if bits >> (4 - col) & 1 == 1 {
                        self.rect(x0 + (i * 6 + col) * scale, y0 + row * scale, scale, scale, rgb);
                    }
                }
            }
        }
    }

    /// BT.601 limited range; chroma is the average of each 2x2 block.
    fn to_yuv(&self) -> Yuv {
        let px = |x: usize, y: usize| self.0[y * W + x].map(i32::from);
        let y = self.0.iter().map(|&[r, g, b]| {
            let (r, g, b) = (i32::from(r), i32::from(g), i32::from(b));
            (((66 * r + 129 * g + 25 * b + 128) >> 8) + 16).clamp(16, 235) as u8
        });
        let (mut cb, mut cr) = (Vec::with_capacity(W * CODED_H / 4), Vec::with_capacity(W * CODED_H / 4));
        for cy in 0..CODED_H / 2 {
            for cx in 0..W / 2 {
                let (mut u, mut v) = (0, 0);
                for [r, g, b] in [
                    px(2 * cx, 2 * cy),
                    px(2 * cx + 1, 2 * cy),
                    px(2 * cx, 2 * cy + 1),
                    px(2 * cx + 1, 2 * cy + 1),
                ] {
                    u += -38 * r - 74 * g + 112 * b;
                    v += 112 * r - 94 * g - 18 * b;
                }
                cb.push((((u + 512) >> 10) + 128).clamp(16, 240) as u8);
                cr.push((((v + 512) >> 10) + 128).clamp(16, 240) as u8);
            }
        }
        Yuv { y: y.collect(), cb, cr }
    }
}

/// What the font can draw: ASCII letters (as capitals), digits, some punctuation, Latin-1 letters without
/// their accents, typographic quotes and dashes; anything else becomes '?'.
fn fold(c: char) -> char {
    match c {
        'À'..='Å' | 'à'..='å' => 'A',
        'Ç' | 'ç' => 'C',
        'È'..='Ë' | 'è'..='ë' => 'E',
        'Ì'..='Ï' | 'ì'..='ï' => 'I',
        'Ñ' | 'ñ' => 'N',
        'Ò'..='Ö' | 'Ø' | 'ò'..='ö' | 'ø' => 'O',
        'Ù'..='Ü' | 'ù'..='ü' => 'U',
        'Ý' | 'ý' | 'ÿ' => 'Y',
        '‘' | '’' | '`' => '\'',
        '“' | '”' => '"',
        '–' | '—' => '-',
        c => c.to_ascii_uppercase(),
    }
}

/// 5x7 glyphs, one byte a row, bit 4 the leftmost pixel.
fn glyph(c: char) -> [u8; 7] {
    match c {
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        ' ' => [0; 7],
        '.' => [0, 0, 0, 0, 0, 0x0C, 0x0C],
        ',' => [0, 0, 0, 0, 0x0C, 0x04, 0x08],
        ':' => [0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0],
        ';' => [0, 0x0C, 0x0C, 0, 0x0C, 0x04, 0x08],
        '!' => [0x04, 0x04, 0x04, 0x04, 0x04, 0, 0x04],
        '\'' => [0x0C, 0x04, 0x08, 0, 0, 0, 0],
        '"' => [0x0A, 0x0A, 0x0A, 0, 0, 0, 0],
        '-' => [0, 0, 0, 0x1F, 0, 0, 0],
        '+' => [0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0],
        '&' => [0x0C, 0x12, 0x14, 0x08, 0x15, 0x12, 0x0D],
        '(' => [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        ')' => [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        '/' => [0, 0x01, 0x02, 0x04, 0x08, 0x10, 0],
        '#' => [0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A],
        '…' => [0, 0, 0, 0, 0, 0, 0x15],
        _ => [0x0E, 0x11, 0x01, 0x02, 0x04, 0, 0x04], // '?'
    }
}

// ---- H.264 ----

/// An RBSP bit writer (Exp-Golomb codes as in H.264 clause 9.1).
#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    cur: u8,
    n: u32,
}

impl Bits {
    fn u(&mut self, bits: u32, value: u64) {
        for i in (0..bits).rev() {
            self.cur = self.cur << 1 | (value >> i & 1) as u8;
            self.n += 1;
            if self.n == 8 {
                self.out.push(self.cur);
                (self.cur, self.n) = (0, 0);
            }
        }
    }
    fn ue(&mut self, v: u32) {
        let x = u64::from(v) + 1;
        let len = 64 - x.leading_zeros();
        self.u(len - 1, 0);
        self.u(len, x);
    }
    fn se(&mut self, v: i32) {
        self.ue(if v > 0 { 2 * v.unsigned_abs() - 1 } else { 2 * v.unsigned_abs() });
    }
    fn align(&mut self) {
        while self.n != 0 {
            self.u(1, 0);
        }
    }
    fn trailing(mut self) -> Vec<u8> {
        self.u(1, 1);
        self.align();
        self.out
    }
}

/// A NAL unit: header byte, then the RBSP with emulation prevention (0x000003) applied.
fn nal(header: u8, rbsp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rbsp.len() + rbsp.len() / 64 + 1);
    out.push(header);
    let mut zeros = 0;
    for &b in rbsp {
        if zeros == 2 && b <= 3 {
            out.push(3);
            zeros = 0;
        }
        out.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    out
}

fn sps() -> Vec<u8> {
    let mut b = Bits::default();
    b.u(8, 66); // profile_idc: Baseline
    b.u(8, 0xC0); // constraint_set0 + constraint_set1: constrained baseline
    b.u(8, LEVEL_IDC.into());
    b.ue(0); // seq_parameter_set_id
    b.ue(LOG2_MAX_FRAME_NUM - 4);
    b.ue(2); // pic_order_cnt_type 2: output order = decoding order
    b.ue(1); // max_num_ref_frames
    b.u(1, 0); // gaps_in_frame_num_value_allowed_flag
    b.ue(MBS_X as u32 - 1);
    b.ue(MBS_Y as u32 - 1);
    b.u(2, 0b11); // frame_mbs_only_flag, direct_8x8_inference_flag
    b.u(1, 1); // frame_cropping_flag: left, right, top, bottom in 2-line units
    for offset in [0, 0, 0, (CODED_H - H) / 2] {
        b.ue(offset as u32);
    }
    b.u(1, 1); // vui_parameters_present_flag
    b.u(9, 0x101); // aspect_ratio_info_present_flag, aspect_ratio_idc 1 (square pixels)
    b.u(1, 0); // overscan_info_present_flag
    b.u(1, 1); // video_signal_type_present_flag
    b.u(3, 5); // video_format: unspecified
    b.u(2, 0b01); // video_full_range_flag 0 (limited), colour_description_present_flag
    b.u(24, 0x06_06_06); // primaries, transfer, matrix: SMPTE 170M (BT.601)
    b.u(1, 0); // chroma_loc_info_present_flag
    b.u(1, 1); // timing_info_present_flag: 1/20 s ticks, 2 a frame
    b.u(32, 1);
    b.u(32, 2 * u64::from(FPS));
    b.u(1, 1); // fixed_frame_rate_flag
    b.u(3, 0); // nal_hrd, vcl_hrd, pic_struct_present
    b.u(2, 0b11); // bitstream_restriction_flag, motion_vectors_over_pic_boundaries_flag
    for v in [0, 0, 10, 10, 0, 1] {
        b.ue(v); // max bytes/pic, bits/mb denoms, log2 max mv lengths, max_num_reorder_frames, max_dec_frame_buffering
    }
    b.trailing()
}

fn pps() -> Vec<u8> {
    let mut b = Bits::default();
    b.ue(0); // pic_parameter_set_id
    b.ue(0); // seq_parameter_set_id
    b.u(2, 0); // entropy_coding_mode_flag (CAVLC), bottom_field_pic_order_in_frame_present_flag
    b.ue(0); // num_slice_groups_minus1
    b.ue(0); // num_ref_idx_l0_default_active_minus1
    b.ue(0); // num_ref_idx_l1_default_active_minus1
    b.u(3, 0); // weighted_pred_flag, weighted_bipred_idc
    b.se(0); // pic_init_qp_minus26
    b.se(0); // pic_init_qs_minus26
    b.se(0); // chroma_qp_index_offset
    b.u(3, 0b100); // deblocking_filter_control_present, constrained_intra_pred, redundant_pic_cnt_present
    b.trailing()
}

/// An IDR picture as one I slice; each macroblock is either predicted exactly (vertical or horizontal Intra
/// 4x4, no residual) or I_PCM.
fn idr_slice(p: &Yuv, idr_pic_id: u32) -> Vec<u8> {
    let mut b = Bits::default();
    b.ue(0); // first_mb_in_slice
    b.ue(7); // slice_type: I (all slices of the picture)
    b.ue(0); // pic_parameter_set_id
    b.u(LOG2_MAX_FRAME_NUM, 0); // frame_num
    b.ue(idr_pic_id % 65536); // consecutive IDR pictures must differ
    b.u(2, 0); // no_output_of_prior_pics_flag, long_term_reference_flag
    b.se(0); // slice_qp_delta
    b.ue(1); // disable_deblocking_filter_idc: off
    let mut modes = [PCM; MBS_X * MBS_Y];
    for my in 0..MBS_Y {
        for mx in 0..MBS_X {
            let i = my * MBS_X + mx;
            let mode = p.exact_prediction(mx, my);
            modes[i] = mode;
            if mode == PCM {
                b.ue(25); // mb_type I_PCM
                b.align(); // pcm_alignment_zero_bits
                for y in my * 16..my * 16 + 16 {
                    b.out.extend_from_slice(&p.y[y * W + mx * 16..][..16]);
                }
                for plane in [&p.cb, &p.cr] {
                    for y in my * 8..my * 8 + 8 {
                        b.out.extend_from_slice(&plane[y * W / 2 + mx * 8..][..8]);
                    }
                }
                continue;
            }
            b.ue(0); // mb_type I_NxN; then the 16 prediction modes, in 4x4 block scan order (clause 8.3.1.1)
            let left = (mx > 0).then(|| modes[i - 1]);
            let above = (my > 0).then(|| modes[i - MBS_X]);
            for blk in 0..16 {
                let (bx, by) = ((blk / 4 % 2) * 2 + blk % 2, (blk / 8) * 2 + blk % 4 / 2);
                let a = if bx > 0 { Some(mode) } else { left };
                let up = if by > 0 { Some(mode) } else { above };
                let predicted = if let (Some(a), Some(up)) = (a, up) { a.min(up) } else { 2 };
                if predicted == mode {
                    b.u(1, 1); // prev_intra4x4_pred_mode_flag
                } else {
                    b.u(4, u64::from(if mode < predicted { mode } else { mode - 1 })); // flag 0, rem_intra4x4_pred_mode
                }
            }
            b.ue(if mode == VERTICAL { 2 } else { 1 }); // intra_chroma_pred_mode, same direction
            b.ue(3); // coded_block_pattern 0 (code number 3 for intra): no residual, no mb_qp_delta
        }
    }
    b.trailing()
}

/// A P picture repeating the previous one: every macroblock skipped.
fn p_skip_slice(frame_num: u32) -> Vec<u8> {
    let mut b = Bits::default();
    b.ue(0); // first_mb_in_slice
    b.ue(5); // slice_type: P (all slices of the picture)
    b.ue(0); // pic_parameter_set_id
    b.u(LOG2_MAX_FRAME_NUM, u64::from(frame_num % (1 << LOG2_MAX_FRAME_NUM)));
    b.u(3, 0); // num_ref_idx_active_override, ref_pic_list_modification_flag_l0, adaptive_ref_pic_marking_mode
    b.se(0); // slice_qp_delta
    b.ue(1); // disable_deblocking_filter_idc
    b.ue((MBS_X * MBS_Y) as u32); // mb_skip_run: all of them
    b.trailing()
}

impl Yuv {
    /// VERTICAL / HORIZONTAL when the macroblock (all three planes) repeats the row above / column to the left
    /// of it exactly, otherwise PCM.
    fn exact_prediction(&self, mx: usize, my: usize) -> u8 {
        let planes = [(&self.y, W, 16), (&self.cb, W / 2, 8), (&self.cr, W / 2, 8)];
        let vertical = my > 0
            && planes.iter().all(|&(p, stride, n)| {
                let above = &p[(my * n - 1) * stride + mx * n..][..n];
                (my * n..my * n + n).all(|y| &p[y * stride + mx * n..][..n] == above)
            });
        let horizontal = mx > 0
            && planes.iter().all(|&(p, stride, n)| {
                (my * n..my * n + n).all(|y| {
                    let row = &p[y * stride + mx * n - 1..][..n + 1];
                    row.iter().all(|&v| v == row[0])
                })
            });
        if vertical {
            VERTICAL
        } else if horizontal {
            HORIZONTAL
        } else {
            PCM
        }
    }
}

// ---- MP4 ----

/// Big-endian payload builder.
#[derive(Default)]
struct B(Vec<u8>);

impl B {
    fn raw(mut self, bytes: &[u8]) -> B {
        self.0.extend_from_slice(bytes);
        self
    }
    fn u16(self, v: u16) -> B {
        self.raw(&v.to_be_bytes())
    }
    fn u32(self, v: u32) -> B {
        self.raw(&v.to_be_bytes())
    }
    fn u32s(self, vs: impl IntoIterator<Item = u32>) -> B {
        vs.into_iter().fold(self, B::u32)
    }
}

fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    B::default().u32(len32(body.len() + 8)).raw(kind).raw(body).0
}

fn full(kind: &[u8; 4], version_and_flags: u32, body: B) -> Vec<u8> {
    bx(kind, &B::default().u32(version_and_flags).raw(&body.0).0)
}

const MATRIX: [u32; 9] = [0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x4000_0000];

fn mux(sizes: &[u32], mdat: &[u8], seconds: u32) -> Vec<u8> {
    let mut out = bx(b"ftyp", b"isom\0\0\x02\0isomiso2avc1mp41");
    let first_sample = out.len() + moov(sizes, seconds, 0).len() + 8;
    out.extend(moov(sizes, seconds, len32(first_sample)));
    out.extend(bx(b"mdat", mdat));
    out
}

/// The moov box; `first_sample` is the file offset of the mdat payload. One chunk a second.
fn moov(sizes: &[u32], seconds: u32, first_sample: u32) -> Vec<u8> {
    let duration = seconds * TIMESCALE;
    let per_chunk = FPS as usize;
    let mut offsets = Vec::new();
    let mut offset = first_sample;
    for chunk in sizes.chunks(per_chunk) {
        offsets.push(offset);
        offset = offset.saturating_add(chunk.iter().sum());
    }
    let (sps, pps) = (nal(0x67, &sps()), nal(0x68, &pps()));
    let avcc = B::default()
        .raw(&[1, 66, 0xC0, LEVEL_IDC, 0xFF, 0xE1]) // version, profile, compat, level, 4-byte lengths, 1 SPS
        .u16(sps.len() as u16)
        .raw(&sps)
        .raw(&[1])
        .u16(pps.len() as u16)
        .raw(&pps);
    let avc1 = B::default()
        .raw(&[0; 6])
        .u16(1) // data_reference_index
        .raw(&[0; 16])
        .u16(W as u16)
        .u16(H as u16)
        .u32s([0x48_0000, 0x48_0000, 0]) // 72 dpi
        .u16(1) // frame_count
        .raw(&[0; 32]) // compressorname
        .u16(0x18) // depth
        .u16(0xFFFF) // pre_defined -1
        .raw(&bx(b"avcC", &avcc.0));
    let stbl = [
        full(b"stsd", 0, B::default().u32(1).raw(&bx(b"avc1", &avc1.0))),
        full(b"stts", 0, B::default().u32s([1, len32(sizes.len()), TIMESCALE / FPS])),
        full(
            b"stss",
            0,
            B::default().u32(len32(offsets.len())).u32s((0..offsets.len()).map(|i| len32(i * per_chunk + 1))),
        ),
        full(b"stsc", 0, B::default().u32s([1, 1, FPS, 1])),
        full(b"stsz", 0, B::default().u32s([0, len32(sizes.len())]).u32s(sizes.iter().copied())),
        full(b"stco", 0, B::default().u32(len32(offsets.len())).u32s(offsets)),
    ]
    .concat();
    let dinf = bx(b"dinf", &full(b"dref", 0, B::default().u32(1).raw(&full(b"url ", 1, B::default()))));
    let minf = [full(b"vmhd", 1, B::default().raw(&[0; 8])), dinf, bx(b"stbl", &stbl)].concat();
    let mdia = [
        full(b"mdhd", 0, B::default().u32s([0, 0, TIMESCALE, duration]).u16(0x55C4).u16(0)), // language "und"
        full(b"hdlr", 0, B::default().u32(0).raw(b"vide").u32s([0; 3]).raw(b"VideoHandler\0")),
        bx(b"minf", &minf),
    ]
    .concat();
    let tkhd = B::default()
        .u32s([0, 0, 1, 0, duration, 0, 0]) // times, track_ID 1, duration
        .u32s([0, 0]) // layer, alternate_group, volume, reserved
        .u32s(MATRIX)
        .u32s([(W as u32) << 16, (H as u32) << 16]);
    let trak = [full(b"tkhd", 3, tkhd), bx(b"mdia", &mdia)].concat(); // enabled, in movie
    let mvhd = B::default()
        .u32s([0, 0, TIMESCALE, duration, 0x10000]) // times, timescale, duration, rate 1.0
        .u16(0x100) // volume 1.0
        .raw(&[0; 10])
        .u32s(MATRIX)
        .u32s([0; 6])
        .u32(2); // next_track_ID
    bx(b"moov", &[full(b"mvhd", 0, mvhd), bx(b"trak", &trak)].concat())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;
    use std::time::Instant;

    type R = Result<(), Box<dyn std::error::Error>>;

    fn be32(b: &[u8], at: usize) -> Result<usize, String> {
        let s = b.get(at..at + 4).ok_or_else(|| format!("short read at {at}"))?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize)
    }

    /// Every box in buf[start..end] (recursing into containers) as (path, box start, body start, end); fails
    /// unless the sizes tile each parent exactly.
    fn walk(
        buf: &[u8],
        path: &str,
        start: usize,
        end: usize,
        out: &mut Vec<(String, usize, usize, usize)>,
    ) -> R {
        let mut pos = start;
        while pos < end {
            let size = be32(buf, pos)?;
            let kind = String::from_utf8_lossy(buf.get(pos + 4..pos + 8).ok_or("short")?).into_owned();
            if size < 8 || pos + size > end {
                return Err(format!("{path}/{kind} at {pos}: bad size {size}").into());
            }
            let name = if path.is_empty() { kind.clone() } else { format!("{path}/{kind}") };
            out.push((name.clone(), pos, pos + 8, pos + size));
            let skip = match kind.as_str() {
                "moov" | "trak" | "mdia" | "minf" | "stbl" | "dinf" => Some(0),
                "dref" | "stsd" => Some(8), // full box header + entry count
                "avc1" => Some(78),         // visual sample entry fields
                _ => None,
            };
            if let Some(skip) = skip {
                walk(buf, &name, pos + 8 + skip, pos + size, out)?;
            }
            pos += size;
        }
        Ok(())
    }

    fn find<'a>(
        boxes: &'a [(String, usize, usize, usize)],
        path: &str,
    ) -> Result<&'a (String, usize, usize, usize), String> {
        boxes.iter().find(|b| b.0 == path).ok_or_else(|| format!("no {path}"))
    }

    #[test]
    fn box_tree_is_well_formed_and_chunks_point_at_samples() -> R {
        let seconds = 5;
        let clip = mp4("Box tree", seconds);
        let mut boxes = Vec::new();
        walk(&clip, "", 0, clip.len(), &mut boxes)?;
        let top: Vec<&str> = boxes.iter().filter(|b| !b.0.contains('/')).map(|b| b.0.as_str()).collect();
        assert_eq!(top, ["ftyp", "moov", "mdat"]);
        for path in ["moov/mvhd", "moov/trak/tkhd", "moov/trak/mdia/hdlr", "moov/trak/mdia/minf/vmhd"] {
            find(&boxes, path)?;
        }
        find(&boxes, "moov/trak/mdia/minf/dinf/dref/url ")?;
        let avcc = find(&boxes, "moov/trak/mdia/minf/stbl/stsd/avc1/avcC")?;
        let sps_nal = nal(0x67, &sps());
        assert_eq!(&clip[avcc.2..avcc.2 + 8], &[1, 66, 0xC0, LEVEL_IDC, 0xFF, 0xE1, 0, sps_nal.len() as u8]);
        assert_eq!(&clip[avcc.2 + 8..avcc.2 + 8 + sps_nal.len()], &sps_nal[..]);

        let stbl = "moov/trak/mdia/minf/stbl";
        let stsz = find(&boxes, &format!("{stbl}/stsz"))?;
        let stco = find(&boxes, &format!("{stbl}/stco"))?;
        let stss = find(&boxes, &format!("{stbl}/stss"))?;
        let mdat = find(&boxes, "mdat")?;
        let count = be32(&clip, stsz.2 + 8)?;
        assert_eq!(count, (seconds * FPS) as usize);
        assert_eq!(be32(&clip, stco.2 + 4)?, seconds as usize);
        assert_eq!(be32(&clip, stss.2 + 4)?, seconds as usize);
        let mut pos = mdat.2;
        for i in 0..count {
            let size = be32(&clip, stsz.2 + 12 + 4 * i)?;
            if i % FPS as usize == 0 {
                let k = i / FPS as usize;
                assert_eq!(be32(&clip, stco.2 + 8 + 4 * k)?, pos, "chunk {k}");
                assert_eq!(be32(&clip, stss.2 + 8 + 4 * k)?, i + 1, "sync sample {k}");
            }
            assert_eq!(be32(&clip, pos)? + 4, size, "sample {i} length prefix");
            assert_eq!(clip[pos + 4], if i % FPS as usize == 0 { 0x65 } else { 0x41 }, "sample {i} NAL type");
            pos += size;
        }
        assert_eq!(pos, mdat.3, "samples fill mdat exactly");
        Ok(())
    }

    #[test]
    fn duration_is_read_back() {
        let clip = mp4("X", 7);
        assert_eq!(mp4_duration_seconds(&clip), Some(7.0));
        assert_eq!(mp4_duration_seconds(&clip[..200]), Some(7.0), "the start of the file is enough");
        assert_eq!(mp4_duration_seconds(&mp4("X", 0)), Some(1.0));
        assert_eq!(mp4_duration_seconds(&mp4("X", 601)), Some(600.0));
        // moov after mdat, and an mvhd of version 1
        let mvhd1 = full(
            b"mvhd",
            1 << 24,
            B::default().raw(&[0; 16]).u32(90_000).raw(&(90_000u64 * 5 / 2).to_be_bytes()),
        );
        let file =
            [bx(b"ftyp", b"isom"), bx(b"mdat", &[7; 1000]), bx(b"moov", &[bx(b"free", &[]), mvhd1].concat())];
        assert_eq!(mp4_duration_seconds(&file.concat()), Some(2.5));
    }

    #[test]
    fn hostile_input_is_rejected_without_panicking() {
        let none = |b: &[u8]| assert_eq!(mp4_duration_seconds(b), None, "{b:?}");
        none(b"");
        none(b"\0\0\0");
        none(b"\0\0\0\x10moo");
        none(&[&[0x80, 0, 0, 0][..], b"moov"].concat()); // truncated moov, no mvhd
        none(&[&[0, 0, 0, 1][..], b"free", &(1u64 << 63).to_be_bytes()].concat()); // 2^63-byte box
        none(&[&[0, 0, 0, 1][..], b"free", &u64::MAX.to_be_bytes(), &[0; 64]].concat());
        none(&[&[0, 0, 0, 1][..], b"free", &8u64.to_be_bytes(), &[0; 64]].concat()); // largesize < header
        none(&[&[0, 0, 0, 1][..], b"moov", &[0, 0, 0]].concat()); // truncated largesize
        none(&[&[0, 0, 0, 0][..], b"free", &[0; 64]].concat()); // size 0: to the end, no moov
        none(&[&[0, 0, 0, 4][..], b"free", &[0; 64]].concat()); // size < 8
        none(&bx(b"moov", &full(b"mvhd", 0, B::default().u32s([0, 0, 0, 1000])))); // timescale 0
        none(&bx(b"moov", &full(b"mvhd", 0, B::default().u32s([0, 0, 1000, u32::MAX])))); // unknown duration
        none(&bx(b"moov", &full(b"mvhd", 2 << 24, B::default().u32s([0; 8])))); // unknown version
        none(&bx(b"moov", &bx(b"mvhd", &[0, 0, 0, 0, 1]))); // short mvhd
        let moov0 =
            [&[0, 0, 0, 0][..], b"moov", &full(b"mvhd", 0, B::default().u32s([0, 0, 10, 25]))].concat();
        assert_eq!(mp4_duration_seconds(&moov0), Some(2.5), "size 0 moov runs to the end");
        // every prefix of a real file, and pseudo-random garbage
        let clip = mp4("X", 3);
        for n in 0..400 {
            let d = mp4_duration_seconds(&clip[..n]);
            assert!(d.is_none() || d == Some(3.0));
        }
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for round in 0..2000 {
            let mut junk: Vec<u8> = (0..round % 97)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 32) as u8
                })
                .collect();
            if round % 3 == 0 && junk.len() >= 8 {
                junk[4..8].copy_from_slice(if round % 2 == 0 { b"moov" } else { b"mvhd" });
            }
            let _ = mp4_duration_seconds(&junk);
        }
    }

    #[test]
    fn emulation_prevention() {
        assert_eq!(nal(0x65, &[0, 0, 0]), [0x65, 0, 0, 3, 0]);
        assert_eq!(nal(0x65, &[0, 0, 1, 0, 0, 2, 0, 0, 3]), [0x65, 0, 0, 3, 1, 0, 0, 3, 2, 0, 0, 3, 3]);
        assert_eq!(nal(0x65, &[0, 0, 0, 0, 0]), [0x65, 0, 0, 3, 0, 0, 3, 0]);
        assert_eq!(nal(0x65, &[0, 0, 4, 0, 1, 0, 0]), [0x65, 0, 0, 4, 0, 1, 0, 0]);
        // No 00 00 0x (x < 3) left anywhere in our NAL units.
        let idr = nal(0x65, &idr_slice(&Canvas::with_title("").to_yuv(), 0));
        for unit in [nal(0x67, &sps()), nal(0x68, &pps()), idr, nal(0x41, &p_skip_slice(3))] {
            assert!(!unit.windows(3).any(|w| w[0] == 0 && w[1] == 0 && w[2] < 3));
        }
    }

    #[test]
    fn exp_golomb() {
        let mut b = Bits::default();
        for v in [0, 1, 2, 3, 25] {
            b.ue(v);
        }
        b.se(-1);
        b.se(1);
        // 1 010 011 00100 000011010 011 010
        assert_eq!(b.trailing(), [0b1010_0110, 0b0100_0000, 0b1101_0011, 0b0101_0000]);
    }

    #[test]
    fn titles_are_truncated_to_fit() {
        let long = Canvas::with_title(&"Long title ".repeat(10)).to_yuv();
        let short = Canvas::with_title("Short").to_yuv();
        // The title band is rows 128..=151; text never touches the 8 px side margins.
        for yuv in [long, short] {
            for y in 128..152 {
                for x in (0..8).chain(W - 8..W) {
                    assert_eq!(yuv.y[y * W + x], yuv.y[120 * W], "({x},{y})");
                }
            }
        }
    }

    #[test]
    fn sizes_and_timing() {
        for seconds in [10, 20, 60, 600] {
            let t = Instant::now();
            let clip = mp4("The Grand Budapest Hotel", seconds);
            println!("{seconds:3} s: {:9} bytes, generated in {:?}", clip.len(), t.elapsed());
            if seconds == 20 {
                assert!(clip.len() < 1_500_000);
            }
        }
    }

    fn tools() -> bool {
        let ok = |tool| Command::new(tool).arg("-version").output().is_ok_and(|o| o.status.success());
        ok("ffmpeg") && ok("ffprobe")
    }

    fn run(cmd: &mut Command) -> Result<Vec<u8>, String> {
        let out = cmd.output().map_err(|e| e.to_string())?;
        let err = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() || !err.is_empty() {
            return Err(format!("{cmd:?}: {} {err}", out.status));
        }
        Ok(out.stdout)
    }

    fn scratch(name: &str) -> Result<std::path::PathBuf, std::io::Error> {
        let dir = std::env::temp_dir().join(format!("democlip-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    #[test]
    fn ffmpeg_plays_the_clip() -> R {
        if !tools() {
            println!("skipped: no ffmpeg");
            return Ok(());
        }
        let seconds = 20;
        let dir = scratch("play")?;
        let clip = dir.join("clip.mp4");
        std::fs::write(&clip, mp4("The Grand Budapest Hotel", seconds))?;
        let probe =
            run(Command::new("ffprobe").args(["-v", "error", "-show_streams", "-count_frames"]).arg(&clip))?;
        let probe = String::from_utf8_lossy(&probe);
        println!("{probe}");
        let frames = format!("nb_read_frames={}", seconds * FPS);
        for want in ["codec_name=h264", "profile=Constrained Baseline", "width=320", "height=180", &frames] {
            assert!(probe.lines().any(|l| l == want), "ffprobe lacks {want}");
        }
        for level in ["error", "warning"] {
            run(Command::new("ffmpeg").args(["-v", level, "-i"]).arg(&clip).args(["-f", "null", "-"]))?;
        }
        let png = Path::new(env!("CARGO_MANIFEST_DIR")).join("frame.png");
        let _ = std::fs::remove_file(&png);
        run(Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-ss", "2.5", "-i"])
            .arg(&clip)
            .args(["-frames:v", "1"])
            .arg(&png))?;
        assert!(std::fs::metadata(&png)?.len() > 1000);
        let hls = dir.join("hls");
        std::fs::create_dir_all(&hls)?;
        run(Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(&clip)
            .args(["-c", "copy", "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod"])
            .arg(hls.join("index.m3u8")))?;
        let playlist = std::fs::read_to_string(hls.join("index.m3u8"))?;
        let segments: Vec<&str> = playlist.lines().filter(|l| l.ends_with(".ts")).collect();
        println!("{playlist}");
        assert_eq!(segments.len(), (seconds / 2) as usize);
        for s in &segments {
            assert!(std::fs::metadata(hls.join(s))?.len() > 1000);
        }
        run(Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(hls.join("index.m3u8"))
            .args(["-f", "null", "-"]))?;
        // ffmpeg's own MP4 output has moov at the end: read it by seeking.
        let remuxed = dir.join("remuxed.mp4");
        run(Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(&clip)
            .args(["-c", "copy"])
            .arg(&remuxed))?;
        let duration = mp4_duration_from_reader(&mut std::fs::File::open(&remuxed)?)?;
        assert!(duration.is_some_and(|d| (d - f64::from(seconds)).abs() < 0.05), "{duration:?}");
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn ffmpeg_decodes_exactly_what_was_drawn() -> R {
        if !tools() {
            println!("skipped: no ffmpeg");
            return Ok(());
        }
        let (seconds, title) = (3, "Amélie & (Co.): 1,2;3! \"Why?\" - a/b'");
        let dir = scratch("exact")?;
        let clip = dir.join("clip.mp4");
        std::fs::write(&clip, mp4(title, seconds))?;
        let raw = run(Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(&clip)
            .args(["-f", "rawvideo", "-pix_fmt", "yuv420p", "-"]))?;
        std::fs::remove_dir_all(&dir)?;
        let frame = W * H * 3 / 2;
        assert_eq!(raw.len(), frame * (seconds * FPS) as usize);
        let base = Canvas::with_title(title);
        for n in 0..(seconds * FPS) as usize {
            let want = base.at(n as u32 / FPS, seconds).to_yuv();
            let want = [&want.y[..W * H], &want.cb[..W * H / 4], &want.cr[..W * H / 4]].concat();
            assert!(raw[n * frame..][..frame] == want[..], "frame {n} differs");
        }
        Ok(())
    }
}
