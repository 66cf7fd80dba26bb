//! The dashboard's charts, drawn on the server as SVG with `plotters` and put inline in the page:
//! bars (tonnes per family, shares of distance) and the map of the flows across borders.
//!
//! Charts know nothing of figures or languages: the page hands over labels already written
//! (numbers formatted, words translated) and values to scale by. Text is drawn as SVG `<text>`
//! elements with plotters' own estimate of its width (no font feature, so no system font
//! library): the browser sets the type, in the page's font.

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Width of every chart, in pixels (the SVG scales down to the screen: it has a `viewBox`).
pub const CHART_WIDTH_PX: u32 = 640;
/// Most bars a chart draws; a table always has every row.
pub const BARS_MAX: usize = 32;
/// Most flows the map draws, the largest first (withheld ones last); the tables list them all.
pub const MAP_FLOWS_MAX: usize = 48;
/// Most places the map marks.
pub const MAP_PLACES_MAX: usize = 256;
/// Fewest degrees of latitude and longitude the map spans, so that a flow between neighbours
/// across the Rhine is still a line one can see.
const MAP_SPAN_DEG_MIN: f64 = 1.2;
/// Margin of the map around what it shows, in degrees.
const MAP_PADDING_DEG: f64 = 0.15;
const BAR_HEIGHT_PX: u32 = 34;
const BAR_LABEL_AREA_PX: u32 = 190;
const FLOW_WIDTH_PX_MIN: f64 = 2.0;
const FLOW_WIDTH_PX_MAX: f64 = 12.0;
const FONT: &str = "sans-serif";

const BAR_COLOUR: RGBColor = RGBColor(21, 101, 192);
const FLOW_COLOUR: RGBColor = RGBColor(21, 101, 192);
const WITHHELD_COLOUR: RGBColor = RGBColor(128, 128, 128);
const TOWN_COLOUR: RGBColor = RGBColor(150, 150, 150);
const TEXT_COLOUR: RGBColor = RGBColor(27, 27, 27);

/// A chart that could not be drawn (a programmer's error: the inputs are bounded and finite).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("drawing a chart: {0}")]
pub struct ChartError(String);

fn failed(error: impl std::fmt::Display) -> ChartError {
    ChartError(error.to_string())
}

/// One bar: its label on the axis, its value, and the label drawn at its end (the value with
/// its unit, or the word for withheld, when it is withheld and has no bar).
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub value_label: String,
    pub withheld: bool,
}

/// A horizontal bar chart of `bars` (the first on top), titled `caption`, values along an axis
/// named `axis` whose numbers `axis_number` writes, as an SVG document.
pub fn bars(
    caption: &str,
    axis: &str,
    axis_number: &dyn Fn(f64) -> String,
    bars: &[Bar],
) -> Result<String, ChartError> {
    let bars = &bars[..bars.len().min(BARS_MAX)];
    let count = bars.len().max(1);
    let height = 80 + BAR_HEIGHT_PX * count as u32;
    // Room at the right of the longest bar for its label.
    let largest = bars.iter().filter(|bar| !bar.withheld).map(|bar| bar.value).fold(0.0, f64::max);
    let x_max = if largest > 0.0 && largest.is_finite() { largest * 1.3 } else { 1.0 };
    // Bar `index` fills the band `[row, row + 1)` of the y axis, the first on top.
    let row = |index: usize| (count - 1 - index) as f64;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (CHART_WIDTH_PX, height)).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, (FONT, 18).into_font().color(&TEXT_COLOUR))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(BAR_LABEL_AREA_PX)
            .build_cartesian_2d(0.0..x_max, 0.0..count as f64)
            .map_err(failed)?;
        // The bars' names are drawn beside them below, not as the axis' numbers.
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_desc(axis)
            .x_labels(5)
            .x_label_formatter(&|value| axis_number(*value))
            .label_style((FONT, 13).into_font().color(&TEXT_COLOUR))
            .axis_desc_style((FONT, 13).into_font().color(&TEXT_COLOUR))
            .draw()
            .map_err(failed)?;
        chart
            .draw_series(bars.iter().enumerate().filter(|(_, bar)| !bar.withheld).map(|(index, bar)| {
                Rectangle::new([(0.0, row(index) + 0.2), (bar.value, row(index) + 0.8)], BAR_COLOUR.filled())
            }))
            .map_err(failed)?;
        let text = |anchor: HPos| {
            TextStyle::from((FONT, 13).into_font()).color(&TEXT_COLOUR).pos(Pos::new(anchor, VPos::Center))
        };
        for (index, bar) in bars.iter().enumerate() {
            let middle = row(index) + 0.5;
            let (x, y) = chart.backend_coord(&(0.0, middle));
            root.draw(&Text::new(bar.label.clone(), (x - 8, y), text(HPos::Right))).map_err(failed)?;
            let end = if bar.withheld { 0.0 } else { bar.value };
            let (x, y) = chart.backend_coord(&(end, middle));
            root.draw(&Text::new(bar.value_label.clone(), (x + 6, y), text(HPos::Left))).map_err(failed)?;
        }
        root.present().map_err(failed)?;
    }
    Ok(svg)
}

/// A place on the map: a town, or where a region's flows start and end.
#[derive(Debug, Clone, PartialEq)]
pub struct Place {
    pub name: String,
    pub latitude: f64,
    pub longitude: f64,
}

/// A flow drawn on the map, from one place to another: `tonnes` scales its width; a withheld
/// flow is dashed and carries no label.
#[derive(Debug, Clone, PartialEq)]
pub struct MapFlow {
    pub from: Place,
    pub to: Place,
    pub tonnes: f64,
    /// The text beside the line (its tonnes); ignored when withheld.
    pub label: String,
    pub withheld: bool,
}

/// The words of the map, in the page's language.
#[derive(Debug, Clone, PartialEq)]
pub struct MapWords {
    pub caption: String,
    pub public_flow: String,
    pub withheld_flow: String,
    pub no_flow: String,
}

/// An equirectangular projection of a box of longitudes and latitudes onto pixels, the
/// longitudes shrunk by the cosine of the box's middle latitude so that shapes are right.
struct Projection {
    west: f64,
    north: f64,
    scale_px_per_deg: f64,
    shrink: f64,
    offset_px: (f64, f64),
}

impl Projection {
    fn around(places: &[&Place], size_px: (u32, u32), top_px: u32) -> Projection {
        let mut south = places.iter().map(|place| place.latitude).fold(f64::INFINITY, f64::min);
        let mut north = places.iter().map(|place| place.latitude).fold(f64::NEG_INFINITY, f64::max);
        let mut west = places.iter().map(|place| place.longitude).fold(f64::INFINITY, f64::min);
        let mut east = places.iter().map(|place| place.longitude).fold(f64::NEG_INFINITY, f64::max);
        if !(south.is_finite() && north.is_finite() && west.is_finite() && east.is_finite()) {
            // Nothing to show: the Upper Rhine.
            (south, north, west, east) = (47.5, 49.0, 7.0, 8.5);
        }
        let widen = |low: &mut f64, high: &mut f64| {
            let middle = (*low + *high) / 2.0;
            let half = ((*high - *low) / 2.0 + MAP_PADDING_DEG).max(MAP_SPAN_DEG_MIN / 2.0);
            (*low, *high) = (middle - half, middle + half);
        };
        widen(&mut south, &mut north);
        widen(&mut west, &mut east);
        let shrink = ((south + north) / 2.0).to_radians().cos();
        let (width, height) = (f64::from(size_px.0), f64::from(size_px.1 - top_px));
        let scale_px_per_deg = (width / ((east - west) * shrink)).min(height / (north - south));
        let offset_px = (
            (width - (east - west) * shrink * scale_px_per_deg) / 2.0,
            f64::from(top_px) + (height - (north - south) * scale_px_per_deg) / 2.0,
        );
        Projection { west, north, scale_px_per_deg, shrink, offset_px }
    }

    fn pixel(&self, place: &Place) -> (f64, f64) {
        (
            self.offset_px.0 + (place.longitude - self.west) * self.shrink * self.scale_px_per_deg,
            self.offset_px.1 + (self.north - place.latitude) * self.scale_px_per_deg,
        )
    }
}

fn round((x, y): (f64, f64)) -> (i32, i32) {
    (x.round() as i32, y.round() as i32)
}

/// The map of `flows` over `towns` (marked and named where they fit), as an SVG document: each
/// flow a line from its origin to its destination with an arrowhead, as wide as its tonnes
/// (the largest [`FLOW_WIDTH_PX_MAX`] pixels), labelled; a withheld flow dashed, grey, with no
/// number. The map frames the flows and `focus` (the territory's towns).
pub fn flow_map(
    words: &MapWords,
    towns: &[Place],
    focus: &[Place],
    flows: &[MapFlow],
) -> Result<String, ChartError> {
    let towns = &towns[..towns.len().min(MAP_PLACES_MAX)];
    let focus = &focus[..focus.len().min(MAP_PLACES_MAX)];
    let mut flows: Vec<&MapFlow> = flows.iter().collect();
    // Public flows first, the largest first: those are the ones kept when there are too many.
    flows.sort_by(|a, b| a.withheld.cmp(&b.withheld).then(b.tonnes.total_cmp(&a.tonnes)));
    flows.truncate(MAP_FLOWS_MAX);
    let size = (CHART_WIDTH_PX, 560);
    let (top_px, legend_px) = (36, 56);
    let framed: Vec<&Place> =
        focus.iter().chain(flows.iter().flat_map(|flow| [&flow.from, &flow.to])).collect();
    let projection = Projection::around(&framed, (size.0, size.1 - legend_px), top_px);
    let tonnes_max = flows.iter().filter(|flow| !flow.withheld).map(|flow| flow.tonnes).fold(0.0, f64::max);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        let text = |size: u32| TextStyle::from((FONT, size).into_font()).color(&TEXT_COLOUR);
        root.draw(&Text::new(
            words.caption.clone(),
            (size.0 as i32 / 2, 8),
            text(18).pos(Pos::new(HPos::Center, VPos::Top)),
        ))
        .map_err(failed)?;
        let inside = |(x, y): (f64, f64)| {
            x >= 0.0 && y >= f64::from(top_px) && x <= f64::from(size.0) && y <= f64::from(size.1 - legend_px)
        };
        for town in towns {
            let at = projection.pixel(town);
            if !inside(at) {
                continue;
            }
            let at = round(at);
            root.draw(&Circle::new(at, 3, TOWN_COLOUR.filled())).map_err(failed)?;
            root.draw(&Text::new(
                town.name.clone(),
                (at.0 + 5, at.1),
                TextStyle::from((FONT, 11).into_font())
                    .color(&TOWN_COLOUR)
                    .pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(failed)?;
        }
        for flow in &flows {
            draw_flow(&root, &projection, flow, tonnes_max)?;
        }
        if flows.is_empty() {
            root.draw(&Text::new(
                words.no_flow.clone(),
                (size.0 as i32 / 2, size.1 as i32 / 2),
                text(14).pos(Pos::new(HPos::Center, VPos::Center)),
            ))
            .map_err(failed)?;
        }
        // The legend: a solid bar for a public flow (a rectangle, so that every polyline of the
        // map is a flow), a dashed line for a withheld one.
        let legend_y = (size.1 - legend_px + 18) as i32;
        root.draw(&Rectangle::new([(16, legend_y - 2), (56, legend_y + 2)], FLOW_COLOUR.filled()))
            .map_err(failed)?;
        root.draw(&Text::new(
            words.public_flow.clone(),
            (64, legend_y),
            text(13).pos(Pos::new(HPos::Left, VPos::Center)),
        ))
        .map_err(failed)?;
        let dashed_y = legend_y + 22;
        root.draw(&DashedPathElement::new(
            [(16, dashed_y), (56, dashed_y)],
            6,
            4,
            WITHHELD_COLOUR.stroke_width(2),
        ))
        .map_err(failed)?;
        root.draw(&Text::new(
            words.withheld_flow.clone(),
            (64, dashed_y),
            text(13).pos(Pos::new(HPos::Left, VPos::Center)),
        ))
        .map_err(failed)?;
        root.present().map_err(failed)?;
    }
    Ok(svg)
}

/// One flow: its line (offset to its right, so that flows both ways stay apart), its
/// arrowhead, its label and the names of its ends.
fn draw_flow(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    projection: &Projection,
    flow: &MapFlow,
    tonnes_max: f64,
) -> Result<(), ChartError> {
    let (from, to) = (projection.pixel(&flow.from), projection.pixel(&flow.to));
    let (dx, dy) = (to.0 - from.0, to.1 - from.1);
    let length = dx.hypot(dy);
    if length < 1.0 {
        return Ok(());
    }
    let (ux, uy) = (dx / length, dy / length);
    // The right-hand normal (y grows downwards).
    let (nx, ny) = (-uy, ux);
    let width = if flow.withheld || tonnes_max <= 0.0 {
        FLOW_WIDTH_PX_MIN
    } else {
        FLOW_WIDTH_PX_MIN
            + (FLOW_WIDTH_PX_MAX - FLOW_WIDTH_PX_MIN) * (flow.tonnes / tonnes_max).clamp(0.0, 1.0)
    };
    let offset = width / 2.0 + 2.0;
    let head = (width * 1.5 + 6.0).min(length / 2.0);
    // The line starts and stops short of the towns' marks, the arrowhead at the end.
    let start = (from.0 + ux * 5.0 + nx * offset, from.1 + uy * 5.0 + ny * offset);
    let tip = (to.0 - ux * 5.0 + nx * offset, to.1 - uy * 5.0 + ny * offset);
    let neck = (tip.0 - ux * head, tip.1 - uy * head);
    let colour = if flow.withheld { WITHHELD_COLOUR } else { FLOW_COLOUR };
    let style = colour.stroke_width(width.round() as u32);
    if flow.withheld {
        root.draw(&DashedPathElement::new([round(start), round(neck)], 8, 6, style)).map_err(failed)?;
    } else {
        root.draw(&PathElement::new(vec![round(start), round(neck)], style)).map_err(failed)?;
    }
    let wing = head * 0.6;
    let arrowhead = vec![
        round(tip),
        round((neck.0 + nx * wing, neck.1 + ny * wing)),
        round((neck.0 - nx * wing, neck.1 - ny * wing)),
    ];
    root.draw(&Polygon::new(arrowhead, colour.filled())).map_err(failed)?;
    let ends = TextStyle::from((FONT, 12).into_font()).color(&TEXT_COLOUR);
    for (place, at, along) in [(&flow.from, from, -1.0), (&flow.to, to, 1.0)] {
        let anchor = if (along * ux) >= 0.0 { HPos::Left } else { HPos::Right };
        root.draw(&Text::new(
            place.name.clone(),
            round((at.0 + along * ux * 8.0, at.1 + along * uy * 8.0 - 10.0)),
            ends.clone().pos(Pos::new(anchor, VPos::Center)),
        ))
        .map_err(failed)?;
    }
    if !flow.withheld {
        let middle =
            ((start.0 + neck.0) / 2.0 + nx * (width + 8.0), (start.1 + neck.1) / 2.0 + ny * (width + 8.0));
        let anchor = if nx >= 0.0 { HPos::Left } else { HPos::Right };
        root.draw(&Text::new(
            flow.label.clone(),
            round(middle),
            TextStyle::from((FONT, 14).into_font().style(FontStyle::Bold))
                .color(&TEXT_COLOUR)
                .pos(Pos::new(anchor, VPos::Center)),
        ))
        .map_err(failed)?;
    }
    Ok(())
}

/// How many public flows, and dashes of withheld ones, an SVG map of [`flow_map`] draws: the
/// lines of the flows' colour, and the dashes (plotters draws each as a line) of grey.
#[cfg(test)]
pub(crate) fn drawn_flows(svg: &str) -> (usize, usize) {
    let lines_of = |colour: RGBColor| {
        let stroke = format!("stroke=\"#{:02X}{:02X}{:02X}\"", colour.0, colour.1, colour.2);
        svg.lines().filter(|line| line.starts_with("<polyline") && line.contains(&stroke)).count()
    };
    // The legend's dashed sample is 4 dashes.
    (lines_of(FLOW_COLOUR), lines_of(WITHHELD_COLOUR).saturating_sub(4))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(name: &str, latitude: f64, longitude: f64) -> Place {
        Place { name: name.to_owned(), latitude, longitude }
    }

    fn words() -> MapWords {
        MapWords {
            caption: "Flows".to_owned(),
            public_flow: "public".to_owned(),
            withheld_flow: "withheld".to_owned(),
            no_flow: "no flow".to_owned(),
        }
    }

    #[test]
    fn bars_carry_their_labels_and_a_withheld_bar_its_word_only() {
        let svg = bars(
            "Accepted",
            "t",
            &|value| format!("{value:.1}"),
            &[
                Bar {
                    label: "Plastics".to_owned(),
                    value: 6.0,
                    value_label: "6 t".to_owned(),
                    withheld: false,
                },
                Bar {
                    label: "Metals".to_owned(),
                    value: 0.0,
                    value_label: "withheld".to_owned(),
                    withheld: true,
                },
            ],
        )
        .unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"), "{svg}");
        for text in ["Plastics", "Metals", "6 t", "withheld"] {
            assert!(svg.contains(text), "{text} missing: {svg}");
        }
        // A name per bar, none empty.
        assert_eq!(svg.matches("text-anchor=\"end\"").count(), 2, "{svg}");
        assert_eq!(svg.matches("<rect").count(), 2, "the background and one bar: {svg}");
        let one = bars(
            "One",
            "t",
            &|value| format!("{value:.1}"),
            &[Bar { label: "Wood".to_owned(), value: 1.0, value_label: "1 t".to_owned(), withheld: false }],
        )
        .unwrap();
        assert!(one.contains("Wood") && one.contains("<rect"), "{one}");
    }

    #[test]
    fn the_map_draws_a_line_per_public_flow_and_dashes_for_a_withheld_one() {
        let strasbourg = place("Bas-Rhin", 48.57, 7.75);
        let kehl = place("Ortenaukreis", 48.52, 7.88);
        let basel = place("Basel-Stadt", 47.56, 7.59);
        let flows = [
            MapFlow {
                from: strasbourg.clone(),
                to: kehl.clone(),
                tonnes: 6.0,
                label: "6 t".to_owned(),
                withheld: false,
            },
            MapFlow {
                from: kehl.clone(),
                to: strasbourg.clone(),
                tonnes: 1.0,
                label: "1 t".to_owned(),
                withheld: false,
            },
            MapFlow {
                from: strasbourg.clone(),
                to: basel,
                tonnes: 0.0,
                label: "2 t".to_owned(),
                withheld: true,
            },
        ];
        let svg = flow_map(&words(), std::slice::from_ref(&kehl), &[strasbourg], &flows).unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        let (solid, dashes) = drawn_flows(&svg);
        assert_eq!(solid, 2, "{svg}");
        assert!(dashes > 2, "{svg}");
        assert_eq!(svg.matches("<polygon").count(), 3, "an arrowhead per flow: {svg}");
        assert!(svg.contains("6 t") && svg.contains("1 t"), "{svg}");
        assert!(!svg.contains("2 t"), "a withheld flow carries no number: {svg}");
        assert!(svg.contains("Basel-Stadt"), "{svg}");
    }

    #[test]
    fn an_empty_map_says_so() {
        let svg = flow_map(&words(), &[], &[], &[]).unwrap();
        assert!(svg.contains("no flow"), "{svg}");
        assert_eq!(drawn_flows(&svg), (0, 0), "{svg}");
    }
}
