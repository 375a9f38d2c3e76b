//! The AVX-512 drivers: a job's run of weight rows against every activation row, as
//! tiles of four weight rows by up to four activation rows ([`super::avx512`] for one
//! activation row and for Q4_0/Q4_1, [`super::vnni`] for Q8_0 against several), swept so
//! that weights and activations stay in L1.

use super::blocks::BlockQ8_0;
use super::{avx512, vnni};

/// Bytes of weight rows one sweep keeps in L1 while activation rows pass by.
const PANEL_BYTES: usize = 24 * 1024;

/// Visit `rows × 0..m` as tiles of four weight rows by up to four activation rows
/// (`tile(r, c, cols)`), the leftover weight rows cell by cell (`one(r, c)`). Weight rows
/// go in panels of about [`PANEL_BYTES`]; within a panel each group of activation rows
/// meets every weight row before the next group comes, so both stay in L1.
fn sweep(
    rows: std::ops::Range<usize>,
    m: usize,
    row_bytes: usize,
    mut tile: impl FnMut(usize, usize, usize),
    mut one: impl FnMut(usize, usize),
) {
    let full = rows.start + rows.len() / 4 * 4;
    let panel = (PANEL_BYTES / row_bytes.max(1) / 4 * 4).max(4);
    let mut p = rows.start;
    while p < full {
        let pe = (p + panel).min(full);
        let mut c = 0;
        while c < m {
            let cols = (m - c).min(4);
            for r in (p..pe).step_by(4) {
                tile(r, c, cols);
            }
            c += cols;
        }
        p = pe;
    }
    for r in full..rows.end {
        for c in 0..m {
            one(r, c);
        }
    }
}

/// Copy a tile's `out[c][r]` to `dst (m, n)` at rows `r..r+4`, activation rows `c..`.
///
/// # Safety
/// `dst` must hold those cells.
unsafe fn put(out: &[[f32; 4]], dst: *mut f32, n: usize, r: usize, c: usize) {
    for (i, o) in out.iter().enumerate() {
        std::ptr::copy_nonoverlapping(o.as_ptr(), dst.add((c + i) * n + r), 4);
    }
}

/// Weight rows `rows` × every activation row with the AVX-512 tiles of [`avx512`] (four
/// rows by up to four activation rows), leftovers by the single-row dots.
///
/// # Safety
/// As [`super::rows_dot`]; the CPU must have the AVX-512 features ([`avx512::available`]).
pub(super) unsafe fn rows_tiled(
    w: avx512::W<'_>,
    a: avx512::A<'_>,
    (m, n, nb): (usize, usize, usize),
    rows: std::ops::Range<usize>,
    dst: *mut f32,
    dot1: impl Fn(usize, usize) -> f32,
) {
    let row_bytes = nb * w.block_bytes();
    let tile = |r: usize, c: usize, cols: usize| match cols {
        4 => {
            let mut out = [[0f32; 4]; 4];
            avx512::tile::<4>(w, a, nb, r, c, &mut out);
            put(&out, dst, n, r, c);
        }
        3 => {
            let mut out = [[0f32; 4]; 3];
            avx512::tile::<3>(w, a, nb, r, c, &mut out);
            put(&out, dst, n, r, c);
        }
        2 => {
            let mut out = [[0f32; 4]; 2];
            avx512::tile::<2>(w, a, nb, r, c, &mut out);
            put(&out, dst, n, r, c);
        }
        _ => {
            let mut out = [[0f32; 4]; 1];
            avx512::tile::<1>(w, a, nb, r, c, &mut out);
            put(&out, dst, n, r, c);
        }
    };
    sweep(rows, m, row_bytes, tile, |r, c| {
        *dst.add(c * n + r) = dot1(r, c)
    });
}

/// Q8_0 weight rows `rows` × every activation row with the [`vnni`] tiles: four rows by up
/// to four activation rows, leftover rows by the single-row dots. The rows go in panels
/// of about [`PANEL_BYTES`], [`vnni::pack`]ed into this thread's buffer (which only grows),
/// each group of activation rows meeting the whole panel before the next.
///
/// # Safety
/// As [`super::rows_dot`]; the CPU must have the AVX-512 features ([`avx512::available`]).
pub(super) unsafe fn rows_cells(
    w: &[BlockQ8_0],
    a: vnni::Acts<'_>,
    (m, n, nb): (usize, usize, usize),
    rows: std::ops::Range<usize>,
    dst: *mut f32,
    dot1: impl Fn(usize, usize) -> f32,
) {
    thread_local! {
        static PANEL: std::cell::RefCell<Vec<vnni::Packed>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let full = rows.start + rows.len() / 4 * 4;
    let groups = (PANEL_BYTES / (nb * std::mem::size_of::<vnni::Packed>())).max(1);
    PANEL.with_borrow_mut(|buf| {
        if buf.len() < groups * nb {
            buf.resize(groups * nb, vnni::Packed::default());
        }
        let mut p = rows.start;
        while p < full {
            let g = ((full - p) / 4).min(groups);
            for i in 0..g {
                vnni::pack(w, nb, p + 4 * i, &mut buf[i * nb..(i + 1) * nb]);
            }
            let mut c = 0;
            while c < m {
                let cols = (m - c).min(4);
                for i in 0..g {
                    let (pw, r) = (&buf[i * nb..(i + 1) * nb], p + 4 * i);
                    match cols {
                        4 => {
                            let mut out = [[0f32; 4]; 4];
                            vnni::tile::<4>(pw, a, nb, c, &mut out);
                            put(&out, dst, n, r, c);
                        }
                        3 => {
                            let mut out = [[0f32; 4]; 3];
                            vnni::tile::<3>(pw, a, nb, c, &mut out);
                            put(&out, dst, n, r, c);
                        }
                        2 => {
                            let mut out = [[0f32; 4]; 2];
                            vnni::tile::<2>(pw, a, nb, c, &mut out);
                            put(&out, dst, n, r, c);
                        }
                        _ => {
                            let mut out = [[0f32; 4]; 1];
                            vnni::tile::<1>(pw, a, nb, c, &mut out);
                            put(&out, dst, n, r, c);
                        }
                    }
                }
                c += cols;
            }
            p += 4 * g;
        }
    });
    for r in full..rows.end {
        for c in 0..m {
            *dst.add(c * n + r) = dot1(r, c);
        }
    }
}
