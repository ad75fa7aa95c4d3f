//! Charts as SVG strings (plotters' SVG backend). Drawing takes plain series prepared by
//! `report`; it computes no statistics. Colours are the Okabe–Ito palette, safe for
//! colour-blind readers; every chart has a title and labelled axes, and the report adds
//! a caption saying what it shows and how many episodes it rests on.

use plotters::prelude::*;
/// The colour type of chart specifications.
pub use plotters::style::RGBColor;

/// Okabe & Ito (2008) colours.
pub const BLUE: RGBColor = RGBColor(0, 114, 178);
pub const ORANGE: RGBColor = RGBColor(230, 159, 0);
pub const GREEN: RGBColor = RGBColor(0, 158, 115);
pub const VERMILLION: RGBColor = RGBColor(213, 94, 0);
pub const SKY: RGBColor = RGBColor(86, 180, 233);
pub const PURPLE: RGBColor = RGBColor(204, 121, 167);
pub const YELLOW: RGBColor = RGBColor(240, 228, 66);
pub const GREY: RGBColor = RGBColor(120, 120, 120);
pub const INK: RGBColor = RGBColor(40, 44, 52);

const SIZE: (u32, u32) = (820, 400);
/// Width of the plot; the rest of the chart holds the legend.
const PLOT_WIDTH: i32 = 610;

/// A legend entry: its swatch and its text.
enum Swatch {
    Line(RGBColor, bool),
    Fill(RGBColor, f64),
    Marker(RGBColor, bool),
}

/// Draws the legend in its own panel, beside the plot, so it never covers data.
fn legend(area: &DrawingArea<SVGBackend, plotters::coord::Shift>, entries: &[(String, Swatch)]) -> Result<(), String> {
    for (k, (name, swatch)) in entries.iter().enumerate() {
        let y = 60 + 24 * k as i32;
        match swatch {
            Swatch::Line(c, dashed) => {
                let style = ShapeStyle::from(c).stroke_width(2);
                if *dashed {
                    area.draw(&PathElement::new(vec![(8, y), (14, y)], style)).map_err(err)?;
                    area.draw(&PathElement::new(vec![(18, y), (24, y)], style)).map_err(err)?;
                    area.draw(&PathElement::new(vec![(28, y), (32, y)], style)).map_err(err)?;
                } else {
                    area.draw(&PathElement::new(vec![(8, y), (32, y)], style)).map_err(err)?;
                }
            }
            Swatch::Fill(c, o) => {
                area.draw(&Rectangle::new([(8, y - 6), (32, y + 6)], c.mix(*o).filled())).map_err(err)?
            }
            Swatch::Marker(c, filled) => {
                let style = if *filled { c.mix(0.85).filled() } else { ShapeStyle::from(c).stroke_width(2) };
                area.draw(&Circle::new((20, y), 5, style)).map_err(err)?
            }
        }
        area.draw(&Text::new(name.clone(), (40, y - 7), (FONT, 13).into_font().color(&INK))).map_err(err)?;
    }
    Ok(())
}
const FONT: &str = "sans-serif";

/// A line through points; dashed for limits and references.
pub struct Line {
    pub name: Option<String>,
    pub color: RGBColor,
    pub points: Vec<(f64, f64)>,
    pub dashed: bool,
}

/// A shaded area between an upper and a lower boundary at the same x values.
pub struct Band {
    pub name: Option<String>,
    pub color: RGBColor,
    pub opacity: f64,
    pub x: Vec<f64>,
    pub lower: Vec<f64>,
    pub upper: Vec<f64>,
}

/// Markers; the third value scales the marker (1 = normal).
pub struct Markers {
    pub name: Option<String>,
    pub color: RGBColor,
    pub points: Vec<(f64, f64, f64)>,
    pub filled: bool,
}

/// An x–y chart.
pub struct XyChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x_range: (f64, f64),
    pub y_range: (f64, f64),
    pub bands: Vec<Band>,
    pub lines: Vec<Line>,
    pub markers: Vec<Markers>,
    /// Show y tick labels as percentages of 1.
    pub y_percent: bool,
    /// Names for the whole-number x positions 0, 1, 2, … (empty: numbers).
    pub x_names: Vec<String>,
}

/// Stacked bars: one bar per category, one segment per series.
pub struct BarChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub categories: Vec<String>,
    pub series: Vec<(String, RGBColor, Vec<f64>)>,
    pub y_percent: bool,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn pad((lo, hi): (f64, f64)) -> (f64, f64) {
    if (hi - lo).abs() < 1e-12 {
        (lo - 1.0, hi + 1.0)
    } else {
        (lo, hi)
    }
}

/// Renders an x–y chart.
pub fn xy(c: &XyChart) -> Result<String, String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (root, side) = root.split_horizontally(PLOT_WIDTH);
        let mut entries: Vec<(String, Swatch)> = Vec::new();
        let (x0, x1) = pad(c.x_range);
        let (y0, y1) = pad(c.y_range);
        let mut chart = ChartBuilder::on(&root)
            .caption(&c.title, (FONT, 20).into_font().color(&INK))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(58)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(err)?;
        let pct = |v: &f64| format!("{:.0}%", v * 100.0);
        let plain = |v: &f64| if v.fract().abs() < 1e-9 { format!("{v:.0}") } else { format!("{v:.1}") };
        let names = |v: &f64| {
            let i = v.round();
            if (v - i).abs() < 1e-9 && i >= 0.0 {
                c.x_names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        let mut mesh = chart.configure_mesh();
        if !c.x_names.is_empty() {
            mesh.x_labels(c.x_names.len().min(13)).x_label_formatter(&names);
        } else {
            mesh.x_label_formatter(&plain);
        }
        mesh.x_desc(&c.x_label)
            .y_desc(&c.y_label)
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 14))
            .light_line_style(RGBColor(238, 238, 238))
            .bold_line_style(RGBColor(215, 215, 215));
        if c.y_percent {
            mesh.y_label_formatter(&pct);
        } else {
            mesh.y_label_formatter(&plain);
        }
        mesh.draw().map_err(err)?;
        for b in &c.bands {
            let mut poly: Vec<(f64, f64)> = b.x.iter().copied().zip(b.upper.iter().copied()).collect();
            poly.extend(b.x.iter().copied().zip(b.lower.iter().copied()).rev());
            let style = b.color.mix(b.opacity).filled();
            chart.draw_series(std::iter::once(Polygon::new(poly, style))).map_err(err)?;
            if let Some(n) = &b.name {
                entries.push((n.clone(), Swatch::Fill(b.color, b.opacity)));
            }
        }
        for l in &c.lines {
            let style = ShapeStyle::from(&l.color).stroke_width(2);
            if l.dashed {
                chart.draw_series(DashedLineSeries::new(l.points.clone(), 6, 4, style)).map_err(err)?;
            } else {
                chart.draw_series(LineSeries::new(l.points.clone(), style)).map_err(err)?;
            }
            if let Some(n) = &l.name {
                entries.push((n.clone(), Swatch::Line(l.color, l.dashed)));
            }
        }
        for m in &c.markers {
            let style = if m.filled { m.color.mix(0.85).filled() } else { ShapeStyle::from(&m.color).stroke_width(2) };
            chart
                .draw_series(
                    m.points.iter().map(|&(x, y, size)| Circle::new((x, y), (4.0 * size).round() as i32, style)),
                )
                .map_err(err)?;
            if let Some(n) = &m.name {
                entries.push((n.clone(), Swatch::Marker(m.color, m.filled)));
            }
        }
        legend(&side, &entries)?;
        root.present().map_err(err)?;
    }
    Ok(buf)
}

/// Renders stacked bars.
pub fn bars(c: &BarChart) -> Result<String, String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (root, side) = root.split_horizontally(PLOT_WIDTH);
        let mut entries: Vec<(String, Swatch)> = Vec::new();
        let n = c.categories.len().max(1);
        let top = (0..n)
            .map(|i| c.series.iter().map(|s| s.2.get(i).copied().unwrap_or(0.0)).sum::<f64>())
            .fold(0.0f64, f64::max)
            .max(1.0);
        let mut chart = ChartBuilder::on(&root)
            .caption(&c.title, (FONT, 20).into_font().color(&INK))
            .margin(14)
            .x_label_area_size(58)
            .y_label_area_size(58)
            .build_cartesian_2d(0f64..n as f64, 0f64..top * 1.02)
            .map_err(err)?;
        let cats = c.categories.clone();
        let label = move |v: &f64| {
            let i = v.floor() as usize;
            if (v - v.floor() - 0.5).abs() < 0.01 {
                cats.get(i).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        let pct = |v: &f64| format!("{:.0}%", v * 100.0);
        let plain = |v: &f64| format!("{v:.0}");
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(&c.x_label)
            .y_desc(&c.y_label)
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 14))
            .disable_x_mesh()
            .light_line_style(RGBColor(238, 238, 238))
            .x_labels(n * 2 + 1)
            .x_label_formatter(&label);
        if c.y_percent {
            mesh.y_label_formatter(&pct);
        } else {
            mesh.y_label_formatter(&plain);
        }
        mesh.draw().map_err(err)?;
        let mut base = vec![0.0; n];
        for (name, color, values) in &c.series {
            let style = color.filled();
            let rects: Vec<Rectangle<(f64, f64)>> = (0..n)
                .map(|i| {
                    let v = values.get(i).copied().unwrap_or(0.0);
                    let r = Rectangle::new([(i as f64 + 0.15, base[i]), (i as f64 + 0.85, base[i] + v)], style);
                    base[i] += v;
                    r
                })
                .collect();
            chart.draw_series(rects).map_err(err)?;
            entries.push((name.clone(), Swatch::Fill(*color, 1.0)));
        }
        legend(&side, &entries)?;
        root.present().map_err(err)?;
    }
    Ok(buf)
}

/// The system's fonts, with the generic sans-serif family mapped to one that is installed
/// (the charts ask for "sans-serif").
pub fn system_fonts() -> std::sync::Arc<resvg::usvg::fontdb::Database> {
    let mut db = resvg::usvg::fontdb::Database::new();
    db.load_system_fonts();
    let installed = |name: &str| db.faces().any(|f| f.families.iter().any(|(n, _)| n == name));
    if let Some(name) =
        ["DejaVu Sans", "Liberation Sans", "Arial", "Helvetica", "Noto Sans"].into_iter().find(|n| installed(n))
    {
        db.set_sans_serif_family(name);
    }
    std::sync::Arc::new(db)
}

/// Rasterises a chart to PNG at twice its size (for slides and documents). Text needs a
/// system font; without one the PNG has the drawing but no labels.
pub fn png(svg: &str, fonts: &std::sync::Arc<resvg::usvg::fontdb::Database>) -> Result<Vec<u8>, String> {
    use resvg::tiny_skia::{Color, Pixmap, Transform};
    let opt = resvg::usvg::Options { fontdb: fonts.clone(), ..Default::default() };
    let tree = resvg::usvg::Tree::from_str(svg, &opt).map_err(err)?;
    let size = tree.size();
    let (w, h) = ((size.width() * 2.0).ceil() as u32, (size.height() * 2.0).ceil() as u32);
    let mut pixmap = Pixmap::new(w, h).ok_or("the chart has no size")?;
    pixmap.fill(Color::WHITE);
    resvg::render(&tree, Transform::from_scale(2.0, 2.0), &mut pixmap.as_mut());
    pixmap.encode_png().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_xy_chart_has_its_title_axes_and_drawing() {
        let c = XyChart {
            title: "Title <&>".into(),
            x_label: "Sessions".into(),
            y_label: "Score".into(),
            x_range: (0.0, 10.0),
            y_range: (0.0, 27.0),
            bands: vec![Band {
                name: Some("band".into()),
                color: SKY,
                opacity: 0.3,
                x: vec![0.0, 10.0],
                lower: vec![5.0, 5.0],
                upper: vec![8.0, 8.0],
            }],
            lines: vec![Line {
                name: Some("line".into()),
                color: BLUE,
                points: vec![(0.0, 20.0), (10.0, 6.0)],
                dashed: false,
            }],
            markers: vec![Markers { name: None, color: ORANGE, points: vec![(3.0, 12.0, 1.0)], filled: true }],
            y_percent: false,
            x_names: vec![],
        };
        let svg = xy(&c).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("Title &lt;&amp;&gt;") && svg.contains("Sessions"));
        assert!(svg.contains("<polyline") || svg.contains("<path") || svg.contains("<line"));
        assert!(svg.contains("<circle"));
    }

    #[test]
    fn stacked_bars_render_every_segment() {
        let c = BarChart {
            title: "Outcomes".into(),
            x_label: "Measure".into(),
            y_label: "Share".into(),
            categories: vec!["PHQ9".into(), "GAD7".into()],
            series: vec![("recovered".into(), GREEN, vec![0.5, 0.4]), ("other".into(), GREY, vec![0.5, 0.6])],
            y_percent: true,
        };
        let svg = bars(&c).unwrap();
        assert!(svg.matches("<rect").count() >= 4);
        assert!(svg.contains("PHQ9") && svg.contains("recovered"));
    }
}
