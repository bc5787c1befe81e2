//! curves.png: what a run looks like, drawn with `plotters` in an embedded font (DejaVu Sans,
//! so it looks the same on every machine and needs no system fonts): loss, test accuracy
//! (with the paper's result as a dashed line when the run is one of the paper's networks)
//! and the learning rate, per epoch, with labelled axes and ticks. Encoded in memory and
//! written atomically, so a full disk leaves the previous plot whole.

use super::run_dir::EpochRow;
use crate::model::ModelConfig;
use anyhow::{Context, Result, anyhow};
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

const SIZE: (u32, u32) = (1500, 480);
const FONT: &str = "DejaVu Sans";
const TRAIN: RGBColor = RGBColor(31, 119, 180);
const TEST: RGBColor = RGBColor(255, 127, 14);
const PAPER: RGBColor = RGBColor(44, 160, 44);

/// The paper's CIFAR-10 test error (%) of Shake-Shake-Image at depth 26, by width.
fn paper_error(config: &ModelConfig) -> Option<f64> {
    if config.depth != 26 || config.variant_name() != "shake-shake-image" {
        return None;
    }
    match config.width {
        32 => Some(3.55),
        64 => Some(2.98),
        96 => Some(2.86),
        _ => None,
    }
}

/// Draw the curves of `rows` (nothing to draw for no rows: no file).
pub fn write_curves(path: &Path, config: &ModelConfig, rows: &[EpochRow]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    static FONTS: Once = Once::new();
    FONTS.call_once(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular())
            .unwrap_or_else(|_| panic!("the embedded DejaVu Sans is a valid font"));
    });
    let mut pixels = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
    draw(&mut pixels, config, rows).map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
    let image = image::RgbImage::from_raw(SIZE.0, SIZE.1, pixels).expect("the buffer is the image's size");
    let mut png = std::io::Cursor::new(vec![]);
    image
        .write_to(&mut png, image::ImageFormat::Png)
        .with_context(|| format!("encoding {}", path.display()))?;
    crate::files::write_atomically(path, png.get_ref())
}

type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// A named, coloured series of (epoch, value) points.
type Series<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);

fn draw(pixels: &mut [u8], config: &ModelConfig, rows: &[EpochRow]) -> DrawResult {
    let root = BitMapBackend::with_buffer(pixels, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let title =
        format!("Shake-Shake {} ({}), {} epochs", config.paper_name(), config.variant_name(), rows.len());
    let root = root.titled(&title, (FONT, 22))?;
    let panels = root.split_evenly((1, 3));
    let epochs = rows.last().map_or(1, |r| r.epoch).max(2) as f64;
    let first = rows.first().map_or(1, |r| r.epoch) as f64;

    let loss = |r: &EpochRow| [r.train_loss, r.test_loss];
    let top = rows.iter().flat_map(loss).filter(|v| v.is_finite()).fold(0.0, f64::max) * 1.05;
    let series = [
        ("train", TRAIN, rows.iter().map(|r| (r.epoch as f64, r.train_loss)).collect::<Vec<_>>()),
        ("test", TEST, rows.iter().map(|r| (r.epoch as f64, r.test_loss)).collect()),
    ];
    let legend = SeriesLabelPosition::UpperRight;
    panel(
        &panels[0],
        ("loss", "cross-entropy", legend),
        (first, epochs),
        (0.0, top.max(1e-3)),
        &series,
        None,
    )?;

    let accuracy = [
        ("train", TRAIN, rows.iter().map(|r| (r.epoch as f64, 100.0 * r.train_accuracy)).collect::<Vec<_>>()),
        ("test", TEST, rows.iter().map(|r| (r.epoch as f64, 100.0 * r.test_accuracy)).collect()),
    ];
    let paper = paper_error(config).map(|e| (format!("paper: {:.2}% ({e}% error)", 100.0 - e), 100.0 - e));
    let labels = ("accuracy", "accuracy %", SeriesLabelPosition::LowerRight);
    panel(&panels[1], labels, (first, epochs), (0.0, 100.0), &accuracy, paper)?;

    let lr = [("learning rate", TRAIN, rows.iter().map(|r| (r.epoch as f64, r.lr)).collect::<Vec<_>>())];
    let lr_top = rows.iter().map(|r| r.lr).fold(0.0, f64::max) * 1.05;
    let labels = ("learning rate (at each epoch's end)", "lr", SeriesLabelPosition::UpperRight);
    panel(&panels[2], labels, (first, epochs), (0.0, lr_top.max(1e-9)), &lr, None)?;
    root.present()?;
    Ok(())
}

/// One chart (caption, y axis label, where the legend goes): each series as a line with
/// points, and an optional dashed reference line (label, value).
fn panel(
    area: &DrawingArea<BitMapBackend, plotters::coord::Shift>,
    (caption, y_label, legend): (&str, &str, SeriesLabelPosition),
    x: (f64, f64),
    y: (f64, f64),
    series: &[Series],
    reference: Option<(String, f64)>,
) -> DrawResult {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x.0..x.1, y.0..y.1)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        // Whole epochs only.
        .x_labels(((x.1 - x.0) as usize + 1).min(10))
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_desc(y_label)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    for (name, color, points) in series {
        let finite: Vec<(f64, f64)> = points.iter().copied().filter(|(_, v)| v.is_finite()).collect();
        chart
            .draw_series(LineSeries::new(finite.clone(), color.stroke_width(2)))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(finite.iter().map(|p| Circle::new(*p, 3, color.filled())))?;
    }
    if let Some((label, value)) = reference {
        let dashes = (0..40).map(|i| {
            let x0 = x.0 + (x.1 - x.0) * i as f64 / 40.0;
            PathElement::new([(x0, value), (x0 + (x.1 - x.0) / 80.0, value)], PAPER.stroke_width(2))
        });
        chart
            .draw_series(dashes)?
            .label(label)
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], PAPER.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(legend)
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize) -> Vec<EpochRow> {
        (1..=n)
            .map(|e| EpochRow {
                epoch: e,
                train_loss: 2.0 / e as f64,
                train_accuracy: 1.0 - 0.8 / e as f64,
                test_loss: if e == 2 { f64::NAN } else { 2.2 / e as f64 },
                test_accuracy: 1.0 - 0.9 / e as f64,
                lr: 0.2 * (1.0 - e as f64 / n as f64),
                seconds: 1.0,
                images_per_second: 100.0,
                loss_scale: 1.0,
                skipped_steps: 0,
            })
            .collect()
    }

    #[test]
    fn draws_every_panel_into_a_png_of_the_right_size() {
        let dir = std::env::temp_dir().join(format!("shakeshake-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("curves.png");
        let paper = ModelConfig::new(26, 32).unwrap();
        for n in [1, 2, 12] {
            write_curves(&path, &paper, &rows(n)).unwrap();
            let image = image::open(&path).unwrap().to_rgb8();
            assert_eq!(image.dimensions(), SIZE);
            let colored = |c: RGBColor| image.pixels().filter(|p| p.0 == [c.0, c.1, c.2]).count();
            assert!(colored(TRAIN) > 100 && colored(TEST) > 100, "both series are drawn ({n} epochs)");
            assert!(colored(PAPER) > 100, "the paper's line is drawn for 26 2x32d");
        }
        let small = ModelConfig::new(8, 16).unwrap();
        write_curves(&path, &small, &rows(5)).unwrap();
        let image = image::open(&path).unwrap().to_rgb8();
        assert_eq!(image.pixels().filter(|p| p.0 == [PAPER.0, PAPER.1, PAPER.2]).count(), 0, "no paper line");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
