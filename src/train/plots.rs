//! The PNG plots a run and an evaluation leave behind: training curves, confusion matrix, ROC.
//! Drawn with plotters into a pixel buffer and written with `image`; the font is embedded
//! (DejaVu Sans), so they look the same on a machine without fonts.

use super::history::EpochRecord;
use crate::calibration::ReliabilityBin;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontStyle;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;
use std::sync::Once;

const FONT: &str = "sans-serif";

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are a known-good TTF shipped by the crate.
        plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).ok();
    });
}

/// Renders `draw` onto a white `width`×`height` canvas and saves it as PNG.
fn render(
    path: &Path,
    (width, height): (u32, u32),
    draw: impl FnOnce(DrawingArea<BitMapBackend, plotters::coord::Shift>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    register_font();
    let mut rgb = vec![255u8; (width * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        draw(root.clone())?;
        root.present()
            .map_err(|e| anyhow::anyhow!("drawing {}: {e}", path.display()))?;
    }
    let image =
        image::RgbImage::from_raw(width, height, rgb).expect("buffer has width×height×3 bytes");
    image
        .save(path)
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))
}

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("plot: {e}")
}

/// A named per-epoch quantity drawn as one line.
type Line = (&'static str, fn(&EpochRecord) -> f64, RGBColor);

/// One panel of the training curves: `lines` against the epoch, y in `y`, legend at `legend`.
fn epoch_panel(
    area: &DrawingArea<BitMapBackend, plotters::coord::Shift>,
    title: &str,
    history: &[EpochRecord],
    y: std::ops::Range<f64>,
    lines: [Line; 2],
    legend: SeriesLabelPosition,
) -> anyhow::Result<()> {
    let last = history.last().map_or(1, |r| r.epoch).max(2) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 22))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(52)
        .build_cartesian_2d(1.0..last, y)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .x_labels((last as usize).min(15))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .label_style((FONT, 14))
        .draw()
        .map_err(err)?;
    for (name, value, colour) in lines {
        let points: Vec<(f64, f64)> = history.iter().map(|r| (r.epoch as f64, value(r))).collect();
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(2)).point_size(3))
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(legend)
        .label_font((FONT, 14))
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()
        .map_err(err)?;
    Ok(())
}

/// Two panels: loss (train and validation) and validation ROC AUC / accuracy, per epoch.
pub fn training_curves(history: &[EpochRecord], path: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(!history.is_empty(), "no epochs to plot");
    render(path, (1100, 450), |root| {
        let panels = root.split_evenly((1, 2));
        let max_loss = history
            .iter()
            .flat_map(|r| [r.train_loss, r.val_loss])
            .fold(0.0, f64::max)
            .max(1e-3)
            * 1.1;
        let loss: [Line; 2] = [
            ("train", |r| r.train_loss, BLUE),
            ("validation", |r| r.val_loss, RED),
        ];
        epoch_panel(
            &panels[0],
            "Loss",
            history,
            0.0..max_loss,
            loss,
            SeriesLabelPosition::UpperRight,
        )?;
        let low = history
            .iter()
            .flat_map(|r| [r.val_auc, r.val_accuracy])
            .fold(1.0, f64::min)
            .min(0.9)
            - 0.05;
        let quality: [Line; 2] = [
            ("ROC AUC", |r| r.val_auc, GREEN),
            ("accuracy (p ≥ 0.5)", |r| r.val_accuracy, MAGENTA),
        ];
        epoch_panel(
            &panels[1],
            "Validation",
            history,
            low.max(0.0)..1.0,
            quality,
            SeriesLabelPosition::LowerRight,
        )
    })
}

/// A confusion matrix as a grid of counts (rows: true class, columns: predicted), shaded by the
/// share of its row.
pub fn confusion_matrix(
    confusion: &[Vec<usize>],
    labels: &[String],
    path: &Path,
) -> anyhow::Result<()> {
    let n = labels.len();
    anyhow::ensure!(
        n > 0 && confusion.len() == n && confusion.iter().all(|r| r.len() == n),
        "confusion matrix is not {n}×{n}"
    );
    render(path, (560, 520), |root| {
        let mut chart = ChartBuilder::on(&root)
            .caption("Confusion matrix", (FONT, 22))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(110)
            .build_cartesian_2d(0..n as i32, n as i32..0)
            .map_err(err)?;
        // Class names go under and beside the cells' centres, not on the grid lines.
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(0)
            .y_labels(0)
            .x_label_formatter(&|_| String::new())
            .y_label_formatter(&|_| String::new())
            .x_desc("predicted")
            .y_desc("true")
            .label_style((FONT, 15))
            .draw()
            .map_err(err)?;
        let centred = |size| {
            TextStyle::from((FONT, size).into_font())
                .color(&BLACK)
                .pos(Pos::new(HPos::Center, VPos::Center))
        };
        for (i, label) in labels.iter().enumerate() {
            let (left, bottom) = chart.backend_coord(&(i as i32, n as i32));
            let (right, _) = chart.backend_coord(&(i as i32 + 1, n as i32));
            root.draw(&Text::new(
                label.clone(),
                ((left + right) / 2, bottom + 14),
                centred(15),
            ))
            .map_err(err)?;
            let (x0, top) = chart.backend_coord(&(0, i as i32));
            let (_, low) = chart.backend_coord(&(0, i as i32 + 1));
            root.draw(&Text::new(
                label.clone(),
                (x0 - 50, (top + low) / 2),
                centred(15),
            ))
            .map_err(err)?;
        }
        for (row, counts) in confusion.iter().enumerate() {
            let total = counts.iter().sum::<usize>().max(1) as f64;
            for (col, &count) in counts.iter().enumerate() {
                let share = count as f64 / total;
                let shade = RGBColor(
                    (255.0 - 200.0 * share) as u8,
                    (255.0 - 140.0 * share) as u8,
                    255,
                );
                let (x, y) = (col as i32, row as i32);
                chart
                    .draw_series([Rectangle::new([(x, y), (x + 1, y + 1)], shade.filled())])
                    .map_err(err)?;
                chart
                    .draw_series([Rectangle::new(
                        [(x, y), (x + 1, y + 1)],
                        BLACK.stroke_width(1),
                    )])
                    .map_err(err)?;
                let text = format!("{count} ({:.0} %)", share * 100.0);
                let (px, py) = chart.backend_coord(&(x, y));
                let (qx, qy) = chart.backend_coord(&(x + 1, y + 1));
                root.draw(&Text::new(
                    text,
                    ((px + qx) / 2, (py + qy) / 2),
                    centred(20),
                ))
                .map_err(err)?;
            }
        }
        Ok(())
    })
}

/// A chart over [0, 1]² with its caption, labelled axes and the grey diagonal (chance for an
/// ROC curve, perfect calibration for a reliability diagram).
fn unit_square<'a, 'b>(
    root: &'a DrawingArea<BitMapBackend<'b>, plotters::coord::Shift>,
    caption: &str,
    x_desc: &str,
    y_desc: &str,
) -> anyhow::Result<ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>>
{
    let mut chart = ChartBuilder::on(root)
        .caption(caption, (FONT, 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(52)
        .build_cartesian_2d(0.0..1.0, 0.0..1.0)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style((FONT, 14))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.3)))
        .map_err(err)?;
    Ok(chart)
}

/// The ROC curve (false-positive rate, true-positive rate) with its AUC, the chance diagonal and
/// the operating point at the model's threshold.
pub fn roc(
    points: &[(f64, f64)],
    auc: f64,
    operating_point: (f64, f64),
    threshold: f32,
    path: &Path,
) -> anyhow::Result<()> {
    anyhow::ensure!(points.len() >= 2, "an ROC curve needs both classes");
    render(path, (560, 540), |root| {
        let mut chart = unit_square(
            &root,
            &format!("ROC curve (AUC {auc:.3})"),
            "false-positive rate (1 − specificity)",
            "true-positive rate (sensitivity)",
        )?;
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                BLUE.stroke_width(2),
            ))
            .map_err(err)?
            .label("model")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLUE.stroke_width(2)));
        chart
            .draw_series([Circle::new(operating_point, 6, RED.filled())])
            .map_err(err)?
            .label(format!("threshold {threshold:.3}"))
            .legend(|(x, y)| Circle::new((x + 9, y), 5, RED.filled()));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .label_font((FONT, 14))
            .border_style(BLACK)
            .background_style(WHITE)
            .draw()
            .map_err(err)?;
        Ok(())
    })
}

/// A reliability diagram: per bin of the predicted probability, the observed share of
/// positives (class-balanced, see [`crate::calibration::reliability`]) against the diagonal of
/// a perfectly calibrated model; the caption gives the expected calibration error.
pub fn reliability(bins: &[ReliabilityBin], ece: f64, path: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(
        !bins.is_empty(),
        "a reliability diagram needs scored images"
    );
    render(path, (560, 540), |root| {
        let mut chart = unit_square(
            &root,
            &format!("Reliability (ECE {ece:.3})"),
            "predicted probability (bin mean)",
            "observed share of positives (class-balanced)",
        )?;
        chart
            .draw_series(bins.iter().map(|bin| {
                Rectangle::new(
                    [(bin.low as f64, 0.0), (bin.high as f64, bin.observed)],
                    BLUE.mix(0.25).filled(),
                )
            }))
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(
                bins.iter().map(|bin| (bin.predicted, bin.observed)),
                BLUE.stroke_width(2),
            ))
            .map_err(err)?;
        chart
            .draw_series(
                bins.iter()
                    .map(|bin| Circle::new((bin.predicted, bin.observed), 4, BLUE.filled())),
            )
            .map_err(err)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(path: &Path) -> image::RgbImage {
        image::open(path).unwrap().to_rgb8()
    }

    /// Not blank: the plot drew lines and text in more than one colour.
    fn colours(image: &image::RgbImage) -> usize {
        let mut seen = std::collections::HashSet::new();
        for p in image.pixels() {
            seen.insert(p.0);
        }
        seen.len()
    }

    #[test]
    fn plots_are_written_as_non_blank_pngs() {
        let dir = std::env::temp_dir().join(format!("pneumoscope-plots-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let row = |epoch, loss| EpochRecord {
            epoch,
            train_loss: loss,
            val_loss: loss * 1.2,
            val_auc: 0.9,
            val_accuracy: 0.85,
            val_sensitivity: 0.9,
            val_specificity: 0.8,
            learning_rate: 1e-3,
            images_per_second: 4.0,
        };
        training_curves(
            &[row(1, 0.6), row(2, 0.4), row(3, 0.3)],
            &dir.join("curves.png"),
        )
        .unwrap();
        let labels = vec!["NORMAL".to_string(), "PNEUMONIA".to_string()];
        confusion_matrix(
            &[vec![127, 107], vec![7, 383]],
            &labels,
            &dir.join("confusion.png"),
        )
        .unwrap();
        roc(
            &[(0.0, 0.0), (0.2, 0.8), (1.0, 1.0)],
            0.8,
            (0.2, 0.8),
            0.5,
            &dir.join("roc.png"),
        )
        .unwrap();
        for (name, size) in [
            ("curves.png", (1100, 450)),
            ("confusion.png", (560, 520)),
            ("roc.png", (560, 540)),
        ] {
            let image = decoded(&dir.join(name));
            assert_eq!(image.dimensions(), size, "{name}");
            assert!(colours(&image) > 20, "{name} looks blank");
        }
        assert!(confusion_matrix(&[vec![1, 2]], &labels, &dir.join("bad.png")).is_err());
        assert!(training_curves(&[], &dir.join("none.png")).is_err());
    }
}
