//! Charts drawn on the server as SVG: axes with round ticks, labels, a legend, and each bar's
//! value in a `<title>` that browsers show on hover. Colours come from the stylesheet
//! (`.s0`…`.s9`), so a chart needs no script and no inline style.

use maud::{Markup, html};

use crate::format;

/// One stacked series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    /// Legend name.
    pub name: String,
    /// One value per bucket (or row).
    pub values: Vec<u64>,
}

impl Series {
    /// The series' colour (`.s0`…`.s9`): fixed per verb and per response class, so a verb
    /// reads the same on every page and chart whatever its rank.
    pub fn colour(&self) -> usize {
        colour_of(&self.name)
    }
}

/// The colour of a series name: verbs (`delete` red, `create` green, `get` blue...), response
/// classes (`2xx` green, `3xx` teal, `4xx` amber, `5xx` red), and grey for the rest.
pub fn colour_of(name: &str) -> usize {
    match name {
        "get" | "1xx" => 0,
        "patch" => 1,
        "create" | "2xx" => 2,
        "delete" | "5xx" => 3,
        "list" | "3xx" => 4,
        "watch" | "4xx" => 5,
        "update" => 6,
        "deletecollection" => 8,
        "proxy" | "connect" | "post" | "put" | "head" | "options" => 7,
        _ => 9,
    }
}

/// Colours available in the stylesheet.
const COLOURS: usize = 10;

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 30.0;

/// Round tick values from 0 covering `max`: steps of 1, 2 or 5 × 10ⁿ, about four of them.
pub fn ticks(max: u64) -> Vec<u64> {
    if max == 0 {
        return vec![0, 1];
    }
    let rough = (max as f64 / 4.0).max(1.0);
    let magnitude = 10f64.powi(rough.log10().floor() as i32);
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * magnitude)
        .max(1.0) as u64;
    let top = max.div_ceil(step) * step;
    (0..=top / step).map(|i| i * step).collect()
}

/// How a bucket's start is labelled on the x axis, by bucket width.
fn time_label(start_micros: i64, bucket_micros: i64) -> String {
    let day = 86_400_000_000;
    if bucket_micros >= day {
        format::time_as(start_micros, "%m-%d")
    } else if start_micros.rem_euclid(day) == 0 || bucket_micros >= 3_600_000_000 {
        format::time_as(start_micros, "%m-%d %H:%M")
    } else {
        format::time_as(start_micros, "%H:%M")
    }
}

fn legend(series: &[Series]) -> Markup {
    html! {
        ul.legend {
            @for s in series {
                li {
                    svg width="10" height="10" aria-hidden="true" { rect class=(format!("s{}", s.colour() % COLOURS)) width="10" height="10" {} }
                    " " (s.name) " " span.muted { (format::count(s.values.iter().sum())) }
                }
            }
        }
    }
}

/// Row labels longer than this are shortened (the whole label is in the tooltip).
const LABEL_CHARS: usize = 40;

fn short(label: &str) -> String {
    if label.chars().count() <= LABEL_CHARS {
        return label.to_string();
    }
    let head: String = label.chars().take(LABEL_CHARS - 1).collect();
    format!("{head}…")
}

/// The non-empty segments of bar `i`: (series, what lies below, value).
fn stack(series: &[Series], i: usize) -> Vec<(usize, u64, u64)> {
    let mut base = 0;
    let mut out = Vec::new();
    for (s, values) in series.iter().enumerate() {
        let v = values.values.get(i).copied().unwrap_or(0);
        if v > 0 {
            out.push((s, base, v));
            base += v;
        }
    }
    out
}

/// Each of the first `n` bars' total over all series.
fn totals(series: &[Series], n: usize) -> Vec<u64> {
    (0..n)
        .map(|i| {
            series
                .iter()
                .map(|s| s.values.get(i).copied().unwrap_or(0))
                .sum()
        })
        .collect()
}

/// Events over time: one stacked bar per bucket. `starts` are the buckets' start times.
/// With `link`, each bar with requests links to `link(bucket start)`: the events it counts.
pub fn time_bars(
    title: &str,
    starts: &[i64],
    bucket_micros: i64,
    series: &[Series],
    link: Option<&dyn Fn(i64) -> String>,
) -> Markup {
    let n = starts.len().max(1);
    let totals = totals(series, starts.len());
    let max = totals.iter().copied().max().unwrap_or(0);
    let ticks = ticks(max);
    let top = *ticks.last().unwrap_or(&1) as f64;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = plot_w / n as f64;
    let bar = (slot * 0.8).max(1.0);
    let y = |v: f64| TOP + plot_h - v / top * plot_h;
    let label_every = n.div_ceil(8).max(1);
    html! {
        figure.chart {
            svg viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" aria-label=(title) {
                title { (title) }
                @for t in &ticks {
                    line.grid x1=(LEFT) x2=(WIDTH - RIGHT) y1=(y(*t as f64)) y2=(y(*t as f64)) {}
                    text.tick x=(LEFT - 6.0) y=(y(*t as f64) + 4.0) text-anchor="end" { (format::count(*t)) }
                }
                line.axis x1=(LEFT) x2=(LEFT) y1=(TOP) y2=(TOP + plot_h) {}
                line.axis x1=(LEFT) x2=(WIDTH - RIGHT) y1=(TOP + plot_h) y2=(TOP + plot_h) {}
                @for (i, start) in starts.iter().enumerate() {
                    @let x = LEFT + i as f64 * slot + (slot - bar) / 2.0;
                    @let bars = html! {
                        g.bucket data-start=(start) data-total=(totals[i]) {
                            title { (format::time(*start)) " UTC · " (format::count(totals[i])) " requests" }
                            @for (s, base, v) in stack(series, i) {
                                rect class=(format!("s{}", series[s].colour() % COLOURS)) x=(format!("{x:.2}")) width=(format!("{bar:.2}"))
                                    y=(format!("{:.2}", y((base + v) as f64))) height=(format!("{:.2}", (v as f64) / top * plot_h)) {
                                    title { (format::time(*start)) " UTC · " (series[s].name) ": " (format::count(v)) }
                                }
                            }
                        }
                    };
                    @match link {
                        Some(link) if totals[i] > 0 => { a.bar href=(link(*start)) { (bars) } }
                        _ => { (bars) }
                    }
                    @if i % label_every == 0 {
                        @let centre = x + bar / 2.0;
                        @let anchor = if centre > WIDTH - RIGHT - 40.0 { "end" } else { "middle" };
                        text.tick x=(format!("{centre:.2}")) y=(HEIGHT - 10.0) text-anchor=(anchor) { (time_label(*start, bucket_micros)) }
                    }
                }
            }
            figcaption { (legend(series)) }
        }
    }
}

/// Horizontal stacked bars, one row per label, each with a link.
pub fn row_bars(title: &str, rows: &[(String, String)], series: &[Series]) -> Markup {
    let row_h = 22.0;
    let label_w = 300.0;
    let right = 36.0;
    let height = TOP + rows.len() as f64 * row_h + BOTTOM;
    let totals = totals(series, rows.len());
    let ticks = ticks(totals.iter().copied().max().unwrap_or(0));
    let top = *ticks.last().unwrap_or(&1) as f64;
    let plot_w = WIDTH - label_w - right;
    let x = |v: f64| label_w + v / top * plot_w;
    let bottom = TOP + rows.len() as f64 * row_h;
    html! {
        figure.chart {
            svg viewBox=(format!("0 0 {WIDTH} {height}")) role="img" aria-label=(title) {
                title { (title) }
                @for t in &ticks {
                    line.grid x1=(x(*t as f64)) x2=(x(*t as f64)) y1=(TOP) y2=(bottom) {}
                    text.tick x=(x(*t as f64)) y=(bottom + 16.0) text-anchor="middle" { (format::count(*t)) }
                }
                line.axis x1=(label_w) x2=(label_w) y1=(TOP) y2=(bottom) {}
                @for (i, (label, href)) in rows.iter().enumerate() {
                    @let y = TOP + i as f64 * row_h;
                    a href=(href) {
                        text.rowlabel x=(label_w - 8.0) y=(y + row_h / 2.0 + 4.0) text-anchor="end" {
                            title { (label) }
                            (short(label))
                        }
                    }
                    @for (s, base, v) in stack(series, i) {
                        rect class=(format!("s{}", series[s].colour() % COLOURS)) x=(format!("{:.2}", x(base as f64))) y=(format!("{:.2}", y + 3.0))
                            width=(format!("{:.2}", v as f64 / top * plot_w)) height=(row_h - 6.0) {
                            title { (label) " · " (series[s].name) ": " (format::count(v)) }
                        }
                    }
                }
            }
            figcaption { (legend(series)) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_maximum() {
        assert_eq!(ticks(0), [0, 1]);
        assert_eq!(ticks(3), [0, 1, 2, 3]);
        assert_eq!(ticks(9), [0, 5, 10]);
        assert_eq!(ticks(1234), [0, 500, 1000, 1500]);
        assert_eq!(ticks(100_000), [0, 50_000, 100_000]);
        for max in [1, 7, 42, 999, 12_345, 9_876_543] {
            let t = ticks(max);
            assert!(*t.last().unwrap() >= max && t.len() <= 6, "{max}: {t:?}");
        }
    }

    #[test]
    fn colours_follow_the_name_not_the_rank() {
        let series = |names: &[&str]| -> Vec<Series> {
            names
                .iter()
                .map(|n| Series {
                    name: n.to_string(),
                    values: vec![1],
                })
                .collect()
        };
        let a = time_bars("a", &[0], 60_000_000, &series(&["delete", "get"]), None).into_string();
        let b = time_bars(
            "b",
            &[0],
            60_000_000,
            &series(&["get", "create", "delete"]),
            None,
        )
        .into_string();
        for svg in [&a, &b] {
            assert!(
                svg.contains(r#"<rect class="s3" x="#) && svg.contains(r#"<rect class="s0" x="#),
                "{svg}"
            );
        }
        assert_eq!(
            (colour_of("2xx"), colour_of("4xx"), colour_of("5xx")),
            (2, 5, 3)
        );
        assert_eq!(colour_of("create"), colour_of("2xx"));
        assert_eq!(colour_of("anything else"), 9);
    }

    #[test]
    fn bars_carry_their_values_and_labels_are_escaped() {
        let svg = time_bars(
            "<b>events</b>",
            &[0, 60_000_000],
            60_000_000,
            &[
                Series {
                    name: "<script>x</script>".into(),
                    values: vec![3, 0],
                },
                Series {
                    name: "get".into(),
                    values: vec![1, 2],
                },
            ],
            None,
        )
        .into_string();
        assert!(svg.contains("data-total=\"4\""), "{svg}");
        assert!(svg.contains("data-total=\"2\""));
        assert!(svg.contains("&lt;script&gt;x&lt;/script&gt;: 3"));
        assert!(!svg.contains("<script>"));
        assert!(!svg.contains("<b>"));
        // Linked, each bucket with requests opens its own events; an empty one links nowhere.
        let linked = time_bars(
            "t",
            &[0, 60_000_000],
            60_000_000,
            &[Series {
                name: "get".into(),
                values: vec![0, 2],
            }],
            Some(&|start| format!("/search?from={start}&x=<&")),
        )
        .into_string();
        assert_eq!(linked.matches("<a class=\"bar\"").count(), 1, "{linked}");
        assert!(
            linked.contains("href=\"/search?from=60000000&amp;x=&lt;&amp;\""),
            "{linked}"
        );
        // Two bars in the first bucket, one in the second (a zero draws nothing).
        assert_eq!(svg.matches("<rect class=\"s").count(), 3 + 2, "{svg}");
        // SVG elements in HTML must be closed, or the parser nests what follows inside them.
        for tag in ["line", "rect"] {
            let open = svg.matches(&format!("<{tag} ")).count();
            assert_eq!(
                open,
                svg.matches(&format!("</{tag}>")).count(),
                "{tag}: {svg}"
            );
            assert!(open > 0);
        }
    }
}
