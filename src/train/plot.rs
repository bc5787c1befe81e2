//! curves.png: loss (left) and accuracy (right) per epoch, drawn with the `image` crate and
//! a 3x5 pixel font of the few characters the labels need. Train is blue, test is orange;
//! each panel's y axis runs from 0 to the value written at its top.

use super::run_dir::EpochRow;
use anyhow::{Context, Result};
use image::{Rgb, RgbImage};
use std::path::Path;

const PANEL: (u32, u32) = (400, 260);
const MARGIN: u32 = 40;
const TRAIN: Rgb<u8> = Rgb([31, 119, 180]);
const TEST: Rgb<u8> = Rgb([255, 127, 14]);
const GRID: Rgb<u8> = Rgb([225, 225, 225]);
const AXIS: Rgb<u8> = Rgb([90, 90, 90]);

/// Draws the curves of `rows` (nothing to draw for no rows: no file).
pub fn write_curves(path: &Path, rows: &[EpochRow]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut img = RgbImage::from_pixel(2 * PANEL.0, PANEL.1, Rgb([255, 255, 255]));
    let loss: Vec<[f64; 2]> = rows.iter().map(|r| [r.train_loss, r.test_loss]).collect();
    let acc: Vec<[f64; 2]> = rows.iter().map(|r| [r.train_accuracy, r.test_accuracy]).collect();
    let loss_top = panel(&mut img, 0, &loss, None);
    panel(&mut img, PANEL.0, &acc, Some(1.0));
    text(&mut img, (MARGIN + 8, 8), "loss", AXIS);
    text(&mut img, (PANEL.0 + MARGIN + 8, 8), "accuracy", AXIS);
    // The value of the top gridline, beside it.
    text(&mut img, (4, MARGIN - 5), &format!("{loss_top:.2}"), AXIS);
    text(&mut img, (PANEL.0 + 4, MARGIN - 5), "100%", AXIS);
    for x0 in [0, PANEL.0] {
        let label = format!("epoch {}", rows.last().map_or(0, |r| r.epoch));
        text(&mut img, (x0 + PANEL.0 - MARGIN - 8 * label.len() as u32, PANEL.1 - 18), &label, AXIS);
        text(&mut img, (x0 + PANEL.0 - 150, 8), "train", TRAIN);
        text(&mut img, (x0 + PANEL.0 - 100, 8), "test", TEST);
    }
    // Encoded in memory and written atomically: a full disk leaves the previous plot whole.
    let mut png = std::io::Cursor::new(vec![]);
    img.write_to(&mut png, image::ImageFormat::Png)
        .with_context(|| format!("encoding {}", path.display()))?;
    crate::files::write_atomically(path, png.get_ref())
}

/// 3x5 glyphs, a row of 3 bits a byte (top row first), of the characters the labels use.
fn glyph(c: char) -> [u8; 5] {
    match c {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 1, 1, 1],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        '.' => [0, 0, 0, 0, 2],
        '%' => [5, 1, 2, 4, 5],
        'a' => [0, 3, 5, 5, 3],
        'c' => [0, 3, 4, 4, 3],
        'e' => [2, 5, 7, 4, 3],
        'h' => [4, 4, 7, 5, 5],
        'i' => [2, 0, 2, 2, 2],
        'l' => [6, 2, 2, 2, 7],
        'n' => [0, 6, 5, 5, 5],
        'o' => [0, 2, 5, 5, 2],
        'p' => [0, 6, 5, 6, 4],
        'r' => [0, 3, 4, 4, 4],
        's' => [0, 3, 6, 1, 6],
        't' => [2, 7, 2, 2, 3],
        'u' => [0, 5, 5, 5, 3],
        'y' => [5, 5, 3, 1, 6],
        _ => [0; 5],
    }
}

/// Text at `at` (top left), each font pixel drawn 2x2, 8 pixels a character.
fn text(img: &mut RgbImage, at: (u32, u32), s: &str, color: Rgb<u8>) {
    for (i, c) in s.chars().enumerate() {
        for (row, bits) in glyph(c).iter().enumerate() {
            for col in 0..3 {
                if bits >> (2 - col) & 1 == 1 {
                    for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                        let (x, y) = (at.0 + i as u32 * 8 + col * 2 + dx, at.1 + row as u32 * 2 + dy);
                        if x < img.width() && y < img.height() {
                            img.put_pixel(x, y, color);
                        }
                    }
                }
            }
        }
    }
}

/// One panel at x offset `x0`: gridlines at tenths of the range, the two series. Returns the
/// value at the top of the axis.
fn panel(img: &mut RgbImage, x0: u32, series: &[[f64; 2]], top: Option<f64>) -> f64 {
    let finite = series.iter().flatten().filter(|v| v.is_finite());
    let top = top.unwrap_or_else(|| finite.fold(1e-9, |m: f64, v| m.max(*v)) * 1.05);
    let (w, h) = (PANEL.0 - 2 * MARGIN, PANEL.1 - 2 * MARGIN);
    for i in 0..=10 {
        let y = MARGIN + h - h * i / 10;
        for x in 0..=w {
            img.put_pixel(x0 + MARGIN + x, y, if i == 0 { AXIS } else { GRID });
        }
    }
    for y in 0..=h {
        img.put_pixel(x0 + MARGIN, MARGIN + y, AXIS);
    }
    let point = |i: usize, v: f64| {
        let x =
            if series.len() > 1 { w as f64 * i as f64 / (series.len() - 1) as f64 } else { w as f64 / 2.0 };
        let y = h as f64 * (1.0 - (v / top).clamp(0.0, 1.0));
        (x0 as f64 + MARGIN as f64 + x, MARGIN as f64 + y)
    };
    for (k, color) in [(0, TRAIN), (1, TEST)] {
        let pts: Vec<(f64, f64)> = series
            .iter()
            .enumerate()
            .filter(|(_, v)| v[k].is_finite())
            .map(|(i, v)| point(i, v[k]))
            .collect();
        for pair in pts.windows(2) {
            line(img, pair[0], pair[1], color);
        }
        for p in &pts {
            dot(img, *p, color);
        }
    }
    top
}

fn line(img: &mut RgbImage, a: (f64, f64), b: (f64, f64), color: Rgb<u8>) {
    let steps = ((b.0 - a.0).abs().max((b.1 - a.1).abs()) * 2.0).ceil().max(1.0) as usize;
    for s in 0..=steps {
        let t = s as f64 / steps as f64;
        dot(img, (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t), color);
    }
}

fn dot(img: &mut RgbImage, p: (f64, f64), color: Rgb<u8>) {
    for dx in -1..=1 {
        for dy in -1..=1 {
            let (x, y) = (p.0 as i64 + dx, p.1 as i64 + dy);
            if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
                img.put_pixel(x as u32, y as u32, color);
            }
        }
    }
}
