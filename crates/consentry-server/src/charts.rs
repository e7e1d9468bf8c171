//! The dashboard's charts, drawn here as SVG text: consent coverage over time (a line per purpose), rows excluded
//! by reason per dataset (horizontal stacked bars) and unlearning time-to-removal against the deadline (grouped
//! horizontal bars). Pure functions of their data: the same data gives the same bytes.
//!
//! Hand-written rather than `plotters` (or a chart library in the page) because what the dashboard needs from a chart
//! is what those do not give: markup a screen reader can use (`role="img"`, a `<title>` and a `<desc>` that says the
//! latest value of every series in words, `aria-labelledby`/`aria-describedby` pointing at them, the full name of a
//! cut label in its own `<title>`); styling the page's stylesheet can theme (every element has a `cs-*` class, colours
//! are presentation attributes, which CSS overrides); nothing the page's Content-Security-Policy forbids (no `style`
//! attribute, no `<script>`, no external reference — the only `url(#…)` points at a pattern in the same chart); text
//! escaped for XML, characters XML cannot carry included (purpose names and jurisdictions come from the policy file:
//! data, not markup); and a few kilobytes of output with no crate the tree did not have. `plotters`' SVG backend
//! writes a fixed `width`/`height`, anonymous shapes only (its element set has no `<title>`, `<desc>`, `<g>`,
//! `<defs>` or pattern, and no `role`, `aria-*` or `class` attributes) and passes control characters through into
//! the XML; a JavaScript library would add page weight and a second renderer for the browser tests to trust.
//!
//! Colours are the Okabe–Ito palette (safe for the common colour-vision deficiencies), restricted to its members
//! with at least 3:1 contrast on white (WCAG 2.2 non-text contrast); text is at least 4.5:1. Colour is never the
//! only cue: lines also differ by dash pattern and marker shape, bars by fill pattern, and a legend names each.
//! Sized by `viewBox` (400 units wide, no fixed width), so a chart scales to its container down to 360 px.
//!
//! Element ids are prefixed by the chart's kind (`cs-coverage-…`), so the three charts can sit in one page (one copy of
//! each: the same chart inlined twice repeats its ids).

use consentry_app::dashboard::thousands;
use std::fmt::Write as _;

/// Width of every chart in `viewBox` units.
const W: f64 = 400.0;
/// Okabe–Ito colours with ≥ 3:1 contrast on white: blue, vermillion, bluish green, reddish purple, black.
pub const PALETTE: [&str; 5] = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#000000"];
/// Text colour (≥ 4.5:1 on white).
pub const TEXT: &str = "#1F1F1F";
/// Axis lines and tick labels (≥ 4.5:1 on white).
pub const AXIS: &str = "#595959";
/// Grid lines: decoration only, so lighter.
const GRID: &str = "#D9D9D9";
/// Dash patterns of the lines, cycled with the colours (3 × 5 × 4 markers: 60 distinct series).
const DASHES: [Option<&str>; 3] = [None, Some("6 3"), Some("2 3")];
/// Characters a label keeps before it is cut (the full text is in its `<title>`): a bar's label has the width
/// of the chart (a purpose key and a short id fit), a legend entry's a little less and a value after it.
const LABEL_CHARS: usize = 52;
/// The same for a line's legend entry.
const LEGEND_CHARS: usize = 38;
/// Series with more points than this get a marker on their last point only.
const MARKERS_UP_TO: usize = 31;

/// One line: a name and (Unix seconds, share 0–1) points; non-finite values are skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct LineSeries {
    /// The series' name (a purpose's name).
    pub name: String,
    /// Its points, in any order.
    pub points: Vec<(i64, f64)>,
}

/// One bar of a stacked bar chart: a label and (segment name, count) parts.
#[derive(Debug, Clone, PartialEq)]
pub struct StackedBar {
    /// What the bar is (a dataset).
    pub label: String,
    /// Its parts, by segment name.
    pub parts: Vec<(String, u64)>,
    /// Said after the bar instead of its total (e.g. why there are no parts).
    pub note: Option<String>,
}

/// One group of the unlearning chart: a model version's removal times and its deadline (seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct DurationGroup {
    /// The model version.
    pub label: String,
    /// Median seconds from withdrawal to removal.
    pub median: Option<f64>,
    /// 95th percentile of the same.
    pub p95: Option<f64>,
    /// Seconds the oldest open request has waited.
    pub oldest_open: Option<f64>,
    /// The deadline (seconds from withdrawal).
    pub deadline: Option<f64>,
}

/// XML-escaped text; characters XML 1.0 cannot carry at all (most control characters) become U+FFFD.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 || matches!(c, '\u{FFFE}' | '\u{FFFF}') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// A coordinate with one decimal; never `NaN` or `inf` (a non-finite value is 0), never `-0.0`.
fn num(v: f64) -> String {
    let v = if v.is_finite() { v } else { 0.0 };
    let s = format!("{v:.1}");
    if s == "-0.0" { "0.0".into() } else { s }
}

/// The first `max` characters of a label, with `…` when cut.
fn cut(s: &str, max: usize) -> (String, bool) {
    let mut chars = s.chars();
    let head: String = chars.by_ref().take(max).collect();
    if chars.next().is_some() { (format!("{}…", head.trim_end()), true) } else { (head, false) }
}

/// `41.2 %` for a share 0–1.
fn percent(share: f64) -> String {
    format!("{:.1} %", share * 100.0)
}

/// A duration for people: `45 s`, `12 min`, `3.5 h`, `2.0 d`.
pub fn duration(secs: f64) -> String {
    let s = if secs.is_finite() { secs.max(0.0) } else { 0.0 };
    if s < 120.0 {
        format!("{s:.0} s")
    } else if s < 7200.0 {
        format!("{:.0} min", s / 60.0)
    } else if s < 172_800.0 {
        format!("{:.1} h", s / 3600.0)
    } else {
        format!("{:.1} d", s / 86_400.0)
    }
}

/// An instant (UTC) as precisely as a range of `span` seconds needs: a date (`2026-12-02`) over two days or more,
/// date and minute (`12-02 14:05`) under that, the time to the second (`14:05:09`) under ten minutes; the number
/// itself outside the calendar's range. A `span` of 0 asks for the whole instant, for the description.
fn date(t: i64, span: f64) -> String {
    let format = if span <= 0.0 {
        "%Y-%m-%d %H:%M:%S UTC"
    } else if span >= 172_800.0 {
        "%Y-%m-%d"
    } else if span >= 600.0 {
        "%m-%d %H:%M"
    } else {
        "%H:%M:%S"
    };
    chrono::DateTime::from_timestamp(t, 0).map_or_else(|| t.to_string(), |d| d.format(format).to_string())
}

/// An SVG being written.
struct Svg {
    out: String,
    id: &'static str,
}

impl Svg {
    /// The root element, its title and description.
    fn start(id: &'static str, kind: &str, height: f64, title: &str, desc: &str) -> Svg {
        let mut out = String::with_capacity(4096);
        let _ = write!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" role="img" aria-labelledby="{id}-title" aria-describedby="{id}-desc" class="cs-chart cs-{kind}" font-family="system-ui, sans-serif" font-size="12" fill="{TEXT}"><title id="{id}-title">{t}</title><desc id="{id}-desc">{d}</desc>"#,
            w = W as i64,
            h = height.ceil() as i64,
            t = escape(title),
            d = escape(desc),
        );
        Svg { out, id }
    }

    fn raw(&mut self, s: &str) {
        self.out.push_str(s);
    }

    /// A text element (escaped) with extra attributes (trusted, written here).
    fn text(&mut self, x: f64, y: f64, attrs: &str, text: &str) {
        let _ = write!(self.out, r#"<text x="{}" y="{}"{attrs}>{}</text>"#, num(x), num(y), escape(text));
    }

    /// A label cut to [`LABEL_CHARS`], its full text in a `<title>` when cut.
    fn label(&mut self, x: f64, y: f64, class: &str, text: &str) {
        self.label_with(x, y, class, (text, LABEL_CHARS), "");
    }

    /// [`Svg::label`] cut to `max` characters, with `suffix` after the (possibly cut) text.
    fn label_with(&mut self, x: f64, y: f64, class: &str, (text, max): (&str, usize), suffix: &str) {
        let (shown, was_cut) = cut(text, max);
        let _ = write!(self.out, r#"<g class="{class}">"#);
        if was_cut {
            let _ = write!(self.out, "<title>{}</title>", escape(text));
        }
        self.text(x, y, "", &format!("{shown}{suffix}"));
        self.raw("</g>");
    }

    fn finish(mut self) -> String {
        self.out.push_str("</svg>\n");
        self.out
    }

    /// The chart that says there is nothing to draw yet.
    fn empty(id: &'static str, kind: &str, title: &str, what: &str) -> String {
        let mut s = Svg::start(id, kind, 80.0, title, &format!("No data yet: {what}"));
        s.text(W / 2.0, 45.0, r#" class="cs-empty" text-anchor="middle""#, "No data yet");
        s.finish()
    }
}

/// The line style of series `i`: colour, dash pattern, marker shape (0–3).
fn line_style(i: usize) -> (&'static str, Option<&'static str>, usize) {
    (PALETTE[i % PALETTE.len()], DASHES[i % DASHES.len()], i % 4)
}

/// A marker of `shape` centred on (x, y).
fn marker(out: &mut String, shape: usize, x: f64, y: f64, colour: &str) {
    let _ = match shape {
        0 => write!(out, r#"<circle cx="{}" cy="{}" r="3.5" fill="{colour}"/>"#, num(x), num(y)),
        1 => write!(out, r#"<rect x="{}" y="{}" width="6" height="6" fill="{colour}"/>"#, num(x - 3.0), num(y - 3.0)),
        2 => write!(
            out,
            r#"<path d="M{} {}L{} {}L{} {}Z" fill="{colour}"/>"#,
            num(x),
            num(y - 4.0),
            num(x + 4.0),
            num(y + 3.0),
            num(x - 4.0),
            num(y + 3.0)
        ),
        _ => write!(
            out,
            r##"<path d="M{} {}L{} {}L{} {}L{} {}Z" fill="#FFFFFF" stroke="{colour}" stroke-width="1.5"/>"##,
            num(x),
            num(y - 4.0),
            num(x + 4.0),
            num(y),
            num(x),
            num(y + 4.0),
            num(x - 4.0),
            num(y)
        ),
    };
}

/// Coverage over time: one line per series, share 0–100 % on the vertical axis, time on the horizontal one.
/// `scope` names what is covered (`all jurisdictions`, `EEA`).
pub fn coverage_chart(series: &[LineSeries], scope: &str) -> String {
    share_lines(("cs-coverage", "coverage"), &format!("Consent coverage over time, {scope}"), series, scope, &[])
}

/// A vertical mark on a time axis: a notice version taking effect.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeMarker {
    /// When (Unix seconds).
    pub at: i64,
    /// What (`Job recommendations notice v2, material`).
    pub label: String,
    /// Drawn solid (a material change) rather than dotted.
    pub strong: bool,
}

/// [`coverage_chart`] with time markers, under its own element ids (`id` names the chart, `kind` its class), so
/// several sit in one page (the report: by purpose, by jurisdiction).
pub fn coverage_chart_marked(
    id: &'static str,
    kind: &str,
    title: &str,
    series: &[LineSeries],
    scope: &str,
    markers: &[TimeMarker],
) -> String {
    share_lines((id, kind), title, series, scope, markers)
}

/// The line chart of shares 0–100 % over time behind [`coverage_chart`] and [`coverage_chart_marked`].
fn share_lines(
    (id, kind): (&'static str, &str),
    title: &str,
    series: &[LineSeries],
    scope: &str,
    markers: &[TimeMarker],
) -> String {
    const MARKER_COLOUR: &str = AXIS;
    let title = title.to_string();
    // Finite points only, sorted by time (ties keep their order: deterministic).
    let clean: Vec<(&str, Vec<(i64, f64)>)> = series
        .iter()
        .map(|s| {
            let mut p: Vec<(i64, f64)> =
                s.points.iter().filter(|(_, y)| y.is_finite()).map(|&(x, y)| (x, y.clamp(0.0, 1.0))).collect();
            p.sort_by_key(|&(x, _)| x);
            (s.name.as_str(), p)
        })
        .collect();
    let all_x = clean.iter().flat_map(|(_, p)| p.iter().map(|&(x, _)| x));
    let (Some(min_x), Some(max_x)) = (all_x.clone().min(), all_x.max()) else {
        return Svg::empty(id, kind, &title, "no member has been recorded in the ledger for this range.");
    };
    let (left, right, top, plot_h) = (44.0, 14.0, 12.0, 170.0);
    let plot_w = W - left - right;
    let legend_top = top + plot_h + 40.0;
    let height = legend_top + 18.0 * clean.len() as f64 + 6.0;
    let span = max_x as f64 - min_x as f64;
    let sx = |x: i64| if span > 0.0 { left + (x as f64 - min_x as f64) / span * plot_w } else { left + plot_w / 2.0 };
    let sy = |y: f64| top + (1.0 - y) * plot_h;

    let mut desc = format!(
        "Share of members whose consent allows each purpose, {}, from {} to {}. Latest values: ",
        scope,
        date(min_x, 0.0),
        date(max_x, 0.0)
    );
    let latest: Vec<String> = clean
        .iter()
        .map(|(name, p)| match p.last() {
            Some(&(x, y)) => format!("{name} {} at {}", percent(y), date(x, 0.0)),
            None => format!("{name} no data"),
        })
        .collect();
    desc.push_str(&latest.join("; "));
    desc.push('.');
    if !markers.is_empty() {
        let said: Vec<String> = markers.iter().map(|m| format!("{} ({})", m.label, date(m.at, 0.0))).collect();
        desc.push_str(&format!(" Marked on the time axis: {}.", said.join("; ")));
    }
    let mut s = Svg::start(id, kind, height, &title, &desc);

    // Grid and vertical axis labels every 25 %.
    s.raw(&format!(r#"<g class="cs-grid" stroke="{GRID}" stroke-width="1">"#));
    for k in 0..=4 {
        let y = sy(f64::from(k) / 4.0);
        s.raw(&format!(r#"<line x1="{}" y1="{}" x2="{}" y2="{}"/>"#, num(left), num(y), num(W - right), num(y)));
    }
    s.raw("</g>");
    s.raw(&format!(r#"<g class="cs-axis" fill="{AXIS}" font-size="11">"#));
    for k in 0..=4 {
        let y = sy(f64::from(k) / 4.0);
        s.text(left - 6.0, y + 4.0, r#" text-anchor="end""#, &format!("{} %", k * 25));
    }
    let ticks: Vec<(i64, &str)> = if span > 0.0 {
        let mid = min_x + ((max_x as i128 - min_x as i128) / 2) as i64;
        vec![(min_x, "start"), (mid, "middle"), (max_x, "end")]
    } else {
        vec![(min_x, "middle")]
    };
    for (x, anchor) in ticks {
        s.text(sx(x), top + plot_h + 16.0, &format!(r#" text-anchor="{anchor}""#), &date(x, span));
    }
    s.raw(&format!(
        r#"<line x1="{l}" y1="{b}" x2="{r}" y2="{b}" stroke="{AXIS}" stroke-width="1"/></g>"#,
        l = num(left),
        r = num(W - right),
        b = num(top + plot_h)
    ));

    // Time markers inside the range: a vertical line each (solid when strong, dotted otherwise), numbered at the
    // top, the full label in its <title>.
    let inside: Vec<&TimeMarker> = markers.iter().filter(|m| m.at >= min_x && m.at <= max_x && span > 0.0).collect();
    if !inside.is_empty() {
        s.raw(r#"<g class="cs-markers">"#);
        for (k, m) in inside.iter().enumerate() {
            let x = sx(m.at);
            let dash = if m.strong { "" } else { r#" stroke-dasharray="1 3""# };
            let _ = write!(
                s.out,
                r#"<g class="cs-marker"><title>{}</title><line x1="{x}" y1="{}" x2="{x}" y2="{}" stroke="{MARKER_COLOUR}" stroke-width="1.5"{dash}/>"#,
                escape(&format!("{} — {}", m.label, date(m.at, 0.0))),
                num(top),
                num(top + plot_h),
                x = num(x)
            );
            s.text(x + 2.0, top + 9.0 + 10.0 * (k % 3) as f64, r#" font-size="9""#, &format!("{}", k + 1));
            s.raw("</g>");
        }
        s.raw("</g>");
    }

    // The lines.
    for (i, (_, points)) in clean.iter().enumerate() {
        let (colour, dash, shape) = line_style(i);
        s.raw(&format!(r#"<g class="cs-series cs-s{i}">"#));
        if points.len() > 1 {
            let coords: Vec<String> = points.iter().map(|&(x, y)| format!("{},{}", num(sx(x)), num(sy(y)))).collect();
            let dash = dash.map_or(String::new(), |d| format!(r#" stroke-dasharray="{d}""#));
            s.raw(&format!(
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2" stroke-linejoin="round"{dash}/>"#,
                coords.join(" ")
            ));
        }
        let marked = if points.len() <= MARKERS_UP_TO { &points[..] } else { &points[points.len() - 1..] };
        for &(x, y) in marked {
            marker(&mut s.out, shape, sx(x), sy(y), colour);
        }
        s.raw("</g>");
    }

    // The legend: a sample of each line, its name and its latest value.
    s.raw(r#"<g class="cs-legend">"#);
    for (i, (name, points)) in clean.iter().enumerate() {
        let (colour, dash, shape) = line_style(i);
        let y = legend_top + 18.0 * i as f64;
        let dash = dash.map_or(String::new(), |d| format!(r#" stroke-dasharray="{d}""#));
        s.raw(&format!(
            r#"<g class="cs-s{i}"><line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{colour}" stroke-width="2"{dash}/>"#,
            num(left),
            num(y - 4.0),
            num(left + 24.0),
            num(y - 4.0)
        ));
        marker(&mut s.out, shape, left + 12.0, y - 4.0, colour);
        s.raw("</g>");
        let value = points.last().map_or("no data".to_string(), |&(_, v)| percent(v));
        s.label_with(left + 32.0, y, "cs-legend-label", (name, LEGEND_CHARS), &format!(" ({value})"));
    }
    s.raw("</g>");
    s.finish()
}

/// The fill pattern of segment or series `i`: solid, hatched or dotted over its colour.
fn pattern_def(id: &str, i: usize, colour: &str) -> String {
    match i / PALETTE.len() % 3 {
        0 => String::new(),
        1 => format!(
            r##"<pattern id="{id}-p{i}" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="{colour}"/><line x1="0" y1="0" x2="0" y2="6" stroke="#FFFFFF" stroke-width="2"/></pattern>"##
        ),
        _ => format!(
            r##"<pattern id="{id}-p{i}" width="5" height="5" patternUnits="userSpaceOnUse"><rect width="5" height="5" fill="{colour}"/><circle cx="2.5" cy="2.5" r="1" fill="#FFFFFF"/></pattern>"##
        ),
    }
}

/// The `fill` of segment `i`: its colour, or its pattern.
fn fill(id: &str, i: usize) -> String {
    let colour = PALETTE[i % PALETTE.len()];
    if (i / PALETTE.len()).is_multiple_of(3) { colour.to_string() } else { format!("url(#{id}-p{i})") }
}

/// A legend row per name, with a swatch of its fill, from `top`.
fn swatch_legend(s: &mut Svg, names: &[String], top: f64) {
    s.raw(r#"<g class="cs-legend">"#);
    for (i, name) in names.iter().enumerate() {
        let y = top + 18.0 * i as f64;
        s.raw(&format!(
            r##"<rect class="cs-k{i}" x="12" y="{}" width="14" height="12" fill="{}" stroke="{}" stroke-width="1"/>"##,
            num(y - 10.0),
            fill(s.id, i),
            PALETTE[i % PALETTE.len()]
        ));
        s.label(32.0, y, "cs-legend-label", name);
    }
    s.raw("</g>");
}

/// Rows excluded by reason per dataset: one horizontal bar per dataset, one segment per reason.
pub fn exclusions_chart(bars: &[StackedBar]) -> String {
    const ID: &str = "cs-exclusions";
    let title = "Rows excluded by reason, per dataset";
    let mut reasons: Vec<String> = bars.iter().flat_map(|b| b.parts.iter().map(|(r, _)| r.clone())).collect();
    reasons.sort();
    reasons.dedup();
    if bars.is_empty() {
        return Svg::empty(ID, "exclusions", title, "no dataset has been registered.");
    }
    let total = |b: &StackedBar| b.parts.iter().map(|(_, n)| *n).fold(0u64, u64::saturating_add);
    let max = bars.iter().map(total).max().unwrap_or(0);
    let (left, right, top, row) = (12.0, 70.0, 24.0, 38.0);
    let plot_w = W - left - right;
    let legend_top = top + row * bars.len() as f64 + 16.0;
    let height = legend_top + 18.0 * reasons.len() as f64 + 4.0;
    let sx = |n: u64| if max == 0 { 0.0 } else { n as f64 / max as f64 * plot_w };

    let described: Vec<String> = bars
        .iter()
        .map(|b| {
            let parts: Vec<String> = b.parts.iter().map(|(r, n)| format!("{r} {}", thousands(*n))).collect();
            let parts = if parts.is_empty() { "none".to_string() } else { parts.join(", ") };
            match &b.note {
                Some(note) => format!("{}: {note}", b.label),
                None => format!("{}: {} rows excluded ({parts})", b.label, thousands(total(b))),
            }
        })
        .collect();
    let desc = format!("Rows the consent gate left out of each dataset, by reason. {}.", described.join("; "));
    let mut s = Svg::start(ID, "exclusions", height, title, &desc);
    let defs: String = (0..reasons.len()).map(|i| pattern_def(ID, i, PALETTE[i % PALETTE.len()])).collect();
    if !defs.is_empty() {
        s.raw(&format!("<defs>{defs}</defs>"));
    }
    s.text(left, 14.0, &format!(r#" class="cs-axis" fill="{AXIS}" font-size="11""#), "Rows excluded");
    for (j, b) in bars.iter().enumerate() {
        let y = top + row * j as f64;
        s.label(left, y + 10.0, "cs-bar-label", &b.label);
        s.raw(r#"<g class="cs-bar">"#);
        let mut x = left;
        for (r, n) in &b.parts {
            let i = reasons.binary_search(r).unwrap_or(0);
            let w = sx(*n);
            let _ = write!(
                s.out,
                r##"<rect class="cs-k{i}" x="{}" y="{}" width="{}" height="14" fill="{}" stroke="#FFFFFF" stroke-width="0.5"><title>{}: {} rows</title></rect>"##,
                num(x),
                num(y + 15.0),
                num(w),
                fill(ID, i),
                escape(r),
                thousands(*n)
            );
            x += w;
        }
        s.raw("</g>");
        let value = b.note.clone().unwrap_or_else(|| thousands(total(b)));
        s.text(x + 4.0, y + 26.0, r#" class="cs-value""#, &value);
    }
    s.raw(&format!(
        r#"<line class="cs-axis" x1="{l}" y1="{t}" x2="{l}" y2="{b}" stroke="{AXIS}" stroke-width="1"/>"#,
        l = num(left),
        t = num(top + 12.0),
        b = num(top + row * bars.len() as f64)
    ));
    swatch_legend(&mut s, &reasons, legend_top);
    s.finish()
}

/// Unlearning time-to-removal per model version against its deadline: median, 95th percentile and the oldest open
/// request's wait as bars, the deadline as a dashed mark across them.
pub fn unlearning_chart(groups: &[DurationGroup]) -> String {
    const ID: &str = "cs-unlearning";
    let title = "Unlearning: time from withdrawal to removal, against the deadline";
    let clean = |v: Option<f64>| v.filter(|x| x.is_finite()).map(|x| x.max(0.0));
    if groups.is_empty() {
        return Svg::empty(ID, "unlearning", title, "no member has withdrawn from a trained model.");
    }
    let max = groups
        .iter()
        .flat_map(|g| [g.median, g.p95, g.oldest_open, g.deadline])
        .filter_map(clean)
        .fold(0.0f64, f64::max);
    let (left, right, top, bar, gap) = (12.0, 64.0, 24.0, 10.0, 2.0);
    let row = 16.0 + 3.0 * (bar + gap) + 10.0;
    let plot_w = W - left - right;
    let names = ["Median", "95th percentile", "Oldest open request"];
    let legend_top = top + row * groups.len() as f64 + 14.0;
    let height = legend_top + 18.0 * (names.len() + 1) as f64 + 4.0;
    let sx = |v: f64| left + if max > 0.0 { v / max * plot_w } else { 0.0 };

    let said = |v: Option<f64>| clean(v).map_or("none".to_string(), duration);
    let described: Vec<String> = groups
        .iter()
        .map(|g| {
            format!(
                "{}: deadline {}, median {}, 95th percentile {}, oldest open request {}",
                g.label,
                said(g.deadline),
                said(g.median),
                said(g.p95),
                said(g.oldest_open)
            )
        })
        .collect();
    let desc = format!(
        "Seconds from a member's withdrawal to a model without them, per model version. {}.",
        described.join("; ")
    );
    let mut s = Svg::start(ID, "unlearning", height, title, &desc);
    let defs: String = [1usize, 2].iter().map(|&k| pattern_def(ID, k * PALETTE.len() + k, PALETTE[k])).collect();
    s.raw(&format!("<defs>{defs}</defs>"));
    let caption = format!("Time to removal (scale 0 to {})", duration(max));
    s.text(left, 14.0, &format!(r#" class="cs-axis" fill="{AXIS}" font-size="11""#), &caption);
    // Series k uses style index k·5 + k: colour k, solid / hatched / dotted.
    let style = |k: usize| k * PALETTE.len() + k;
    for (j, g) in groups.iter().enumerate() {
        let y = top + row * j as f64;
        s.label(left, y + 10.0, "cs-bar-label", &g.label);
        let values = [g.median, g.p95, g.oldest_open];
        if values.iter().all(|v| clean(*v).is_none()) {
            s.text(left, y + 28.0, r#" class="cs-none" font-size="11""#, "no requests yet");
        }
        for (k, v) in values.into_iter().enumerate() {
            let Some(v) = clean(v) else { continue };
            let by = y + 15.0 + k as f64 * (bar + gap);
            let _ = write!(
                s.out,
                r##"<rect class="cs-k{k}" x="{}" y="{}" width="{}" height="{}" fill="{}" stroke="{}" stroke-width="1"><title>{}: {}</title></rect>"##,
                num(left),
                num(by),
                // A removal within the second still shows as a sliver.
                num((sx(v) - left).max(2.0)),
                num(bar),
                fill(ID, style(k)),
                PALETTE[k],
                escape(names[k]),
                duration(v)
            );
            s.text(sx(v).max(left + 2.0) + 4.0, by + 9.0, r#" class="cs-value" font-size="10""#, &duration(v));
        }
        if let Some(d) = clean(g.deadline) {
            let _ = write!(
                s.out,
                r##"<line class="cs-deadline" x1="{x}" y1="{}" x2="{x}" y2="{}" stroke="{TEXT}" stroke-width="2" stroke-dasharray="4 2"><title>Deadline: {}</title></line>"##,
                num(y + 12.0),
                num(y + 15.0 + 3.0 * (bar + gap)),
                duration(d),
                x = num(sx(d))
            );
        }
    }
    s.raw(r#"<g class="cs-legend">"#);
    for (k, name) in names.iter().enumerate() {
        let y = legend_top + 18.0 * k as f64;
        let _ = write!(
            s.out,
            r##"<rect class="cs-k{k}" x="12" y="{}" width="14" height="12" fill="{}" stroke="{}" stroke-width="1"/>"##,
            num(y - 10.0),
            fill(ID, style(k)),
            PALETTE[k]
        );
        s.text(32.0, y, r#" class="cs-legend-label""#, name);
    }
    let y = legend_top + 18.0 * names.len() as f64;
    let _ = write!(
        s.out,
        r##"<line class="cs-deadline" x1="19" y1="{}" x2="19" y2="{}" stroke="{TEXT}" stroke-width="2" stroke-dasharray="4 2"/>"##,
        num(y - 11.0),
        num(y + 2.0)
    );
    s.text(32.0, y, r#" class="cs-legend-label""#, "Deadline");
    s.raw("</g>");
    s.finish()
}

/// One bar of a histogram: its label (a bin, `0.5–1`) and count; `special` draws it hatched (a category outside the
/// scale, such as "no formal bound").
#[derive(Debug, Clone, PartialEq)]
pub struct HistBin {
    /// The bin's label.
    pub label: String,
    /// Its count.
    pub count: u64,
    /// Drawn in the second style (hatched, another colour).
    pub special: bool,
}

/// A histogram: one vertical bar per bin, counts on the vertical axis, the bins' labels below; `what` names what is
/// counted (`members`), `axis` what the bins are (`composed ε`).
pub fn histogram_chart(title: &str, bins: &[HistBin], what: &str, axis: &str) -> String {
    const ID: &str = "cs-histogram";
    if bins.is_empty() || bins.iter().all(|b| b.count == 0) {
        return Svg::empty(ID, "histogram", title, &format!("no {what} to count."));
    }
    let max = bins.iter().map(|b| b.count).max().unwrap_or(0).max(1);
    let (left, right, top, plot_h) = (52.0, 10.0, 16.0, 160.0);
    let plot_w = W - left - right;
    let slot = plot_w / bins.len() as f64;
    let bar_w = (slot * 0.8).max(1.0);
    let height = top + plot_h + 56.0;
    let sy = |n: u64| top + plot_h - n as f64 / max as f64 * plot_h;
    let described: Vec<String> = bins.iter().map(|b| format!("{}: {}", b.label, thousands(b.count))).collect();
    let desc = format!("Number of {what} by {axis}. {}.", described.join("; "));
    let mut s = Svg::start(ID, "histogram", height, title, &desc);
    s.raw(&format!("<defs>{}</defs>", pattern_def(ID, PALETTE.len() + 1, PALETTE[1])));
    s.raw(&format!(r#"<g class="cs-grid" stroke="{GRID}" stroke-width="1">"#));
    for k in 0..=4u64 {
        let y = top + plot_h - plot_h * k as f64 / 4.0;
        s.raw(&format!(r#"<line x1="{}" y1="{}" x2="{}" y2="{}"/>"#, num(left), num(y), num(W - right), num(y)));
    }
    s.raw("</g>");
    s.raw(&format!(r#"<g class="cs-axis" fill="{AXIS}" font-size="10">"#));
    for k in 0..=4u64 {
        let y = top + plot_h - plot_h * k as f64 / 4.0;
        s.text(left - 4.0, y + 3.0, r#" text-anchor="end""#, &thousands(max * k / 4));
    }
    s.text(left + plot_w / 2.0, top + plot_h + 44.0, r#" text-anchor="middle""#, axis);
    s.raw("</g>");
    for (i, b) in bins.iter().enumerate() {
        let x = left + slot * i as f64 + (slot - bar_w) / 2.0;
        let y = sy(b.count);
        let (fill_, stroke) = if b.special {
            (format!("url(#{ID}-p{})", PALETTE.len() + 1), PALETTE[1])
        } else {
            (PALETTE[0].to_string(), PALETTE[0])
        };
        let _ = write!(
            s.out,
            r#"<rect class="cs-bin{}" x="{}" y="{}" width="{}" height="{}" fill="{fill_}" stroke="{stroke}" stroke-width="1"><title>{}: {} {}</title></rect>"#,
            if b.special { " cs-special" } else { "" },
            num(x),
            num(y),
            num(bar_w),
            num(top + plot_h - y),
            escape(&b.label),
            thousands(b.count),
            escape(what)
        );
        if b.count > 0 {
            s.text(
                x + bar_w / 2.0,
                y - 3.0,
                r#" class="cs-value" font-size="9" text-anchor="middle""#,
                &thousands(b.count),
            );
        }
        let (shown, _) = cut(&b.label, ((slot / 5.5) as usize).max(3));
        s.text(
            x + bar_w / 2.0,
            top + plot_h + 14.0 + 10.0 * (i % 2) as f64,
            r#" class="cs-bin-label" font-size="9" text-anchor="middle""#,
            &shown,
        );
    }
    s.raw(&format!(
        r#"<line class="cs-axis" x1="{l}" y1="{b}" x2="{r}" y2="{b}" stroke="{AXIS}" stroke-width="1"/>"#,
        l = num(left),
        r = num(W - right),
        b = num(top + plot_h)
    ));
    s.finish()
}

/// One point of the ε/utility chart: ε, the metric, and its 95 % interval when known.
pub type EpsilonPoint = (f64, f64, Option<(f64, f64)>);

/// One series of the ε/utility chart: (ε, value, its 95 % interval) points and the non-DP reference value (ε = ∞).
#[derive(Debug, Clone, PartialEq)]
pub struct EpsilonSeries {
    /// The model kind.
    pub name: String,
    /// (ε, value, interval) points; non-finite or non-positive ε are skipped.
    pub points: Vec<EpsilonPoint>,
    /// The same metric without differential privacy, drawn as a dashed horizontal line.
    pub reference: Option<f64>,
}

/// Utility against ε: points joined per series on a logarithmic ε axis, 95 % intervals as whiskers, the non-DP
/// reference as a dashed line; `metric` names the vertical axis.
pub fn epsilon_chart(series: &[EpsilonSeries], metric: &str) -> String {
    const ID: &str = "cs-epsilon";
    let title = format!("{metric} against the privacy budget ε");
    let clean: Vec<(&EpsilonSeries, Vec<EpsilonPoint>)> = series
        .iter()
        .map(|s| {
            let mut p: Vec<_> =
                s.points.iter().filter(|(e, v, _)| e.is_finite() && *e > 0.0 && v.is_finite()).copied().collect();
            p.sort_by(|a, b| a.0.total_cmp(&b.0));
            (s, p)
        })
        .collect();
    let eps = clean.iter().flat_map(|(_, p)| p.iter().map(|q| q.0));
    let (Some(min_e), Some(max_e)) = (eps.clone().reduce(f64::min), eps.reduce(f64::max)) else {
        return Svg::empty(ID, "epsilon", &title, "no model was trained with differential privacy.");
    };
    let ys = clean.iter().flat_map(|(s, p)| {
        p.iter().flat_map(|q| [Some(q.1), q.2.map(|c| c.1)]).chain([s.reference]).flatten().collect::<Vec<_>>()
    });
    let max_y = ys.filter(|v| v.is_finite()).fold(0.0f64, f64::max).max(1e-9) * 1.1;
    let (lo_l, hi_l) = ((min_e / 2.0).log10(), (max_e * 2.0).log10());
    let (left, right, top, plot_h) = (48.0, 14.0, 12.0, 170.0);
    let plot_w = W - left - right;
    let legend_top = top + plot_h + 40.0;
    let height = legend_top + 18.0 * clean.len() as f64 + 6.0;
    let sx = |e: f64| left + (e.log10() - lo_l) / (hi_l - lo_l) * plot_w;
    let sy = |v: f64| top + (1.0 - (v / max_y).clamp(0.0, 1.0)) * plot_h;
    let described: Vec<String> = clean
        .iter()
        .map(|(s, p)| {
            let pts: Vec<String> = p.iter().map(|q| format!("ε {} → {:.3}", trim_eps(q.0), q.1)).collect();
            let reference = s.reference.map_or(String::new(), |r| format!("; without DP {r:.3}"));
            format!("{}: {}{reference}", s.name, pts.join(", "))
        })
        .collect();
    let desc = format!("{metric} of each model trained with differential privacy, by ε. {}.", described.join("; "));
    let mut s = Svg::start(ID, "epsilon", height, &title, &desc);
    s.raw(&format!(r#"<g class="cs-grid" stroke="{GRID}" stroke-width="1">"#));
    for k in 0..=4 {
        let y = top + plot_h * f64::from(k) / 4.0;
        s.raw(&format!(r#"<line x1="{}" y1="{}" x2="{}" y2="{}"/>"#, num(left), num(y), num(W - right), num(y)));
    }
    s.raw("</g>");
    s.raw(&format!(r#"<g class="cs-axis" fill="{AXIS}" font-size="10">"#));
    for k in 0..=4 {
        let v = max_y * f64::from(k) / 4.0;
        s.text(left - 4.0, sy(v) + 3.0, r#" text-anchor="end""#, &format!("{v:.2}"));
    }
    let mut ticks: Vec<f64> = [0.1f64, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]
        .into_iter()
        .filter(|t| t.log10() >= lo_l && t.log10() <= hi_l)
        .collect();
    if ticks.is_empty() {
        ticks.push(min_e);
    }
    for t in ticks {
        s.text(sx(t), top + plot_h + 14.0, r#" text-anchor="middle""#, &trim_eps(t));
    }
    s.text(left + plot_w / 2.0, top + plot_h + 28.0, r#" text-anchor="middle""#, "ε (logarithmic)");
    s.raw(&format!(
        r#"<line x1="{l}" y1="{b}" x2="{r}" y2="{b}" stroke="{AXIS}" stroke-width="1"/></g>"#,
        l = num(left),
        r = num(W - right),
        b = num(top + plot_h)
    ));
    for (i, (series, points)) in clean.iter().enumerate() {
        let (colour, _, shape) = line_style(i);
        s.raw(&format!(r#"<g class="cs-series cs-s{i}">"#));
        if let Some(r) = series.reference.filter(|r| r.is_finite()) {
            let _ = write!(
                s.out,
                r#"<line class="cs-reference" x1="{}" y1="{y}" x2="{}" y2="{y}" stroke="{colour}" stroke-width="1.5" stroke-dasharray="6 3"><title>{}</title></line>"#,
                num(left),
                num(W - right),
                escape(&format!("{} without differential privacy (ε = ∞): {r:.3}", series.name)),
                y = num(sy(r))
            );
        }
        if points.len() > 1 {
            let coords: Vec<String> = points.iter().map(|q| format!("{},{}", num(sx(q.0)), num(sy(q.1)))).collect();
            s.raw(&format!(
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2" stroke-linejoin="round"/>"#,
                coords.join(" ")
            ));
        }
        for &(e, v, ci) in points {
            if let Some((lo, hi)) = ci.filter(|(l, h)| l.is_finite() && h.is_finite()) {
                let _ = write!(
                    s.out,
                    r#"<line class="cs-ci" x1="{x}" y1="{}" x2="{x}" y2="{}" stroke="{colour}" stroke-width="1"/>"#,
                    num(sy(lo)),
                    num(sy(hi)),
                    x = num(sx(e))
                );
            }
            marker(&mut s.out, shape, sx(e), sy(v), colour);
        }
        s.raw("</g>");
    }
    s.raw(r#"<g class="cs-legend">"#);
    for (i, (series, _)) in clean.iter().enumerate() {
        let (colour, _, shape) = line_style(i);
        let y = legend_top + 18.0 * i as f64;
        s.raw(&format!(r#"<g class="cs-s{i}">"#));
        marker(&mut s.out, shape, left + 12.0, y - 4.0, colour);
        s.raw("</g>");
        let suffix = series.reference.map_or(String::new(), |r| format!(" (dashed: without DP, {r:.3})"));
        s.label_with(left + 32.0, y, "cs-legend-label", (&series.name, LEGEND_CHARS), &suffix);
    }
    s.raw("</g>");
    s.finish()
}

/// ε for people: `1`, `0.5`, `0.25`.
fn trim_eps(e: f64) -> String {
    let t = format!("{e:.2}");
    t.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DAY: i64 = 86_400;
    const T0: i64 = 1_793_000_000;

    /// Parses `svg` as XML and checks the rules every chart keeps; returns the document's text for more checks.
    fn check(svg: &str) -> roxmltree::Document<'_> {
        let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("not well-formed XML ({e}):\n{svg}"));
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        assert_eq!(root.tag_name().namespace(), Some("http://www.w3.org/2000/svg"));
        assert_eq!(root.attribute("role"), Some("img"));
        assert!(root.attribute("viewBox").is_some_and(|v| v.starts_with("0 0 400 ")), "{svg}");
        assert!(root.attribute("width").is_none() && root.attribute("height").is_none(), "sized by viewBox only");
        // Labelled by its <title> and described by its <desc>, both first.
        let kids: Vec<_> = root.children().filter(|n| n.is_element()).collect();
        assert_eq!(kids[0].tag_name().name(), "title");
        assert_eq!(kids[1].tag_name().name(), "desc");
        assert_eq!(root.attribute("aria-labelledby"), kids[0].attribute("id"));
        assert_eq!(root.attribute("aria-describedby"), kids[1].attribute("id"));
        assert!(kids[1].text().is_some_and(|t| t.len() > 10), "the description says something");
        for n in doc.descendants().filter(|n| n.is_element()) {
            let name = n.tag_name().name();
            assert!(name != "script" && name != "foreignObject" && name != "image" && name != "a", "<{name}>");
            for a in n.attributes() {
                assert_ne!(a.name(), "style", "an inline style attribute: the page's CSP forbids it");
                assert!(!a.name().starts_with("on"), "an event handler attribute {}", a.name());
                assert_ne!(a.name(), "href", "no reference of any kind");
                let v = a.value();
                assert!(!v.contains("NaN") && !v.contains("inf"), "{}={v}", a.name());
                if v.contains("url(") {
                    assert!(v.starts_with("url(#") && v.ends_with(')'), "only same-document refs: {v}");
                }
                if ["x", "y", "x1", "y1", "x2", "y2", "width", "height", "cx", "cy", "r"].contains(&a.name()) {
                    let f: f64 = v.parse().unwrap_or_else(|_| panic!("{}={v} is not a number", a.name()));
                    assert!(f.is_finite());
                }
            }
        }
        // Every url(#id) names an element of the chart.
        let ids: std::collections::BTreeSet<&str> = doc.descendants().filter_map(|n| n.attribute("id")).collect();
        for n in doc.descendants() {
            if let Some(v) = n.attribute("fill").and_then(|f| f.strip_prefix("url(#")) {
                assert!(ids.contains(v.trim_end_matches(')')), "{v} is not defined");
            }
        }
        doc
    }

    fn series(name: &str, points: &[(i64, f64)]) -> LineSeries {
        LineSeries { name: name.into(), points: points.to_vec() }
    }

    fn sample() -> Vec<LineSeries> {
        vec![
            series("Job recommendations", &[(T0, 0.2), (T0 + DAY, 0.35), (T0 + 2 * DAY, 0.412)]),
            series("Feed and content suggestions", &[(T0, 0.1), (T0 + DAY, 0.1), (T0 + 2 * DAY, 0.15)]),
            series("Automated reply suggestions", &[(T0 + DAY, 0.05), (T0 + 2 * DAY, 0.0)]),
        ]
    }

    #[test]
    fn the_coverage_chart_is_accessible_well_formed_and_describes_the_latest_values() {
        let svg = coverage_chart(&sample(), "all jurisdictions");
        let doc = check(&svg);
        let desc = doc.descendants().find(|n| n.has_tag_name("desc")).and_then(|n| n.text()).unwrap().to_string();
        assert!(desc.contains("Job recommendations 41.2 % at 2026-10-28 07:33:20 UTC"), "{desc}");
        assert!(desc.contains("Automated reply suggestions 0.0 %"), "{desc}");
        assert_eq!(doc.descendants().filter(|n| n.has_tag_name("polyline")).count(), 3);
        // Series differ by dash pattern as well as colour.
        let dashes: Vec<Option<&str>> =
            doc.descendants().filter(|n| n.has_tag_name("polyline")).map(|n| n.attribute("stroke-dasharray")).collect();
        assert_eq!(dashes, [None, Some("6 3"), Some("2 3")]);
        assert!(svg.contains("0 %") && svg.contains("100 %"));
        assert!(svg.len() < 8_000, "{} bytes", svg.len());
    }

    #[test]
    fn the_same_data_gives_the_same_bytes() {
        assert_eq!(coverage_chart(&sample(), "EEA"), coverage_chart(&sample(), "EEA"));
        let bars = vec![StackedBar {
            label: "d".into(),
            parts: vec![("minor".into(), 3), ("not_granted".into(), 9)],
            note: None,
        }];
        assert_eq!(exclusions_chart(&bars), exclusions_chart(&bars));
        let g = vec![DurationGroup {
            label: "m".into(),
            median: Some(40.0),
            p95: Some(90.0),
            oldest_open: None,
            deadline: Some(86_400.0),
        }];
        assert_eq!(unlearning_chart(&g), unlearning_chart(&g));
    }

    #[test]
    fn hostile_names_are_escaped_never_markup() {
        let evil = r#"<script>alert("x")</script> & 'quote' "dq" ]]> <!-- x"#;
        let svg = coverage_chart(&[series(evil, &[(T0, 0.5)])], evil);
        let doc = check(&svg);
        assert!(!svg.contains("<script"), "{svg}");
        assert!(doc.descendants().all(|n| !n.has_tag_name("script")));
        // The text survives as text.
        let texts: String = doc.descendants().filter_map(|n| n.text()).collect();
        assert!(texts.contains(r#"<script>alert("x")"#), "{texts}");
        let bars = vec![StackedBar { label: evil.into(), parts: vec![(evil.into(), 1)], note: Some(evil.into()) }];
        check(&exclusions_chart(&bars));
        let g =
            vec![DurationGroup { label: evil.into(), median: Some(1.0), p95: None, oldest_open: None, deadline: None }];
        check(&unlearning_chart(&g));
        // Characters XML cannot carry at all become U+FFFD.
        check(&coverage_chart(&[series("a\u{0}b\u{1b}c\u{FFFF}", &[(T0, 0.5)])], "x"));
    }

    #[test]
    fn empty_data_says_no_data_yet() {
        for svg in [
            coverage_chart(&[], "all jurisdictions"),
            coverage_chart(&[series("Jobs", &[])], "EEA"),
            coverage_chart(&[series("Jobs", &[(T0, f64::NAN)])], "EEA"),
            exclusions_chart(&[]),
            unlearning_chart(&[]),
        ] {
            let doc = check(&svg);
            let texts: String = doc.descendants().filter_map(|n| n.text()).collect();
            assert!(texts.contains("No data yet"), "{svg}");
        }
    }

    #[test]
    fn one_point_is_drawn_as_a_marker() {
        let svg = coverage_chart(&[series("Jobs", &[(T0, 0.25)])], "EEA");
        let doc = check(&svg);
        assert_eq!(doc.descendants().filter(|n| n.has_tag_name("polyline")).count(), 0);
        let dot = doc.descendants().find(|n| n.has_tag_name("circle")).expect("a marker");
        assert_eq!(dot.attribute("cx"), Some("215.0"), "centred: one instant has no span");
    }

    #[test]
    fn a_hundred_long_names_are_cut_with_the_full_name_in_a_title() {
        let many: Vec<LineSeries> = (0..100)
            .map(|i| {
                series(
                    &format!("Purpose number {i} with a very long descriptive name indeed"),
                    &[(T0, 0.01 * i as f64), (T0 + DAY, 0.5)],
                )
            })
            .collect();
        let svg = coverage_chart(&many, "all jurisdictions");
        let doc = check(&svg);
        let labels: Vec<_> = doc.descendants().filter(|n| n.attribute("class") == Some("cs-legend-label")).collect();
        assert_eq!(labels.len(), 100);
        for (i, l) in labels.iter().enumerate() {
            let title = l.children().find(|n| n.has_tag_name("title")).and_then(|n| n.text()).unwrap();
            assert_eq!(title, format!("Purpose number {i} with a very long descriptive name indeed"));
            let shown = l.children().find(|n| n.has_tag_name("text")).and_then(|n| n.text()).unwrap();
            assert!(shown.contains('…') && shown.ends_with("(50.0 %)"), "{shown}");
            assert!(shown.chars().count() <= LEGEND_CHARS + 12, "{shown}");
        }
        // The first 60 (colour, dash, marker) styles are all different.
        let styles: std::collections::BTreeSet<_> = (0..60).map(line_style).collect();
        assert_eq!(styles.len(), 60);
    }

    /// WCAG 2.2 relative luminance and contrast ratio.
    fn contrast_on_white(hex: &str) -> f64 {
        let c = |i: usize| {
            let v = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).unwrap()) / 255.0;
            if v <= 0.04045 { v / 12.92 } else { ((v + 0.055) / 1.055).powf(2.4) }
        };
        let l = 0.2126 * c(1) + 0.7152 * c(3) + 0.0722 * c(5);
        1.05 / (l + 0.05)
    }

    #[test]
    fn colours_have_enough_contrast_on_white() {
        for c in PALETTE {
            assert!(contrast_on_white(c) >= 3.0, "{c}: {:.2}", contrast_on_white(c));
        }
        for c in [TEXT, AXIS] {
            assert!(contrast_on_white(c) >= 4.5, "{c}: {:.2}", contrast_on_white(c));
        }
    }

    #[test]
    fn exclusions_stack_by_reason_with_a_legend_and_totals() {
        let bars = vec![
            StackedBar {
                label: "train_ai_system.job_recommendations · 3f2a".into(),
                parts: vec![("minor".into(), 120), ("not_granted".into(), 48_000), ("gpc".into(), 0)],
                note: None,
            },
            StackedBar {
                label: "train_ai_system.reply_suggestions · 0123456789ab".into(),
                parts: vec![],
                note: Some("manifest missing".into()),
            },
            StackedBar { label: "nothing excluded".into(), parts: vec![], note: None },
        ];
        let svg = exclusions_chart(&bars);
        let doc = check(&svg);
        let desc = doc.descendants().find(|n| n.has_tag_name("desc")).and_then(|n| n.text()).unwrap();
        assert!(desc.contains("48,120 rows excluded (minor 120, not_granted 48,000, gpc 0)"), "{desc}");
        assert!(desc.contains("0123456789ab: manifest missing"), "{desc}");
        assert!(desc.contains("nothing excluded: 0 rows excluded (none)"), "{desc}");
        assert_eq!(doc.descendants().filter(|n| n.attribute("class") == Some("cs-legend-label")).count(), 3);
    }

    #[test]
    fn unlearning_bars_show_the_deadline() {
        let g = vec![
            DurationGroup {
                label: "job-recs v1 · 0123456789ab".into(),
                median: Some(41.0),
                p95: Some(3_000.0),
                oldest_open: Some(90_000.0),
                deadline: Some(86_400.0),
            },
            DurationGroup { label: "replies v2".into(), median: None, p95: None, oldest_open: None, deadline: None },
        ];
        let svg = unlearning_chart(&g);
        let doc = check(&svg);
        let desc = doc.descendants().find(|n| n.has_tag_name("desc")).and_then(|n| n.text()).unwrap();
        assert!(
            desc.contains("deadline 24.0 h, median 41 s, 95th percentile 50 min, oldest open request 25.0 h"),
            "{desc}"
        );
        assert_eq!(doc.descendants().filter(|n| n.attribute("class") == Some("cs-deadline")).count(), 2);
        assert!(svg.contains("no requests yet"));
    }

    #[test]
    fn time_labels_are_as_precise_as_the_range_needs() {
        assert_eq!(date(T0, 30.0 * DAY as f64), "2026-10-26");
        assert_eq!(date(T0, DAY as f64), "10-26 07:33");
        assert_eq!(date(T0, 60.0), "07:33:20");
        assert_eq!(date(T0, 0.0), "2026-10-26 07:33:20 UTC");
        assert_eq!(date(i64::MAX, 60.0), i64::MAX.to_string());
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(41.0), "41 s");
        assert_eq!(duration(600.0), "10 min");
        assert_eq!(duration(5_400.0), "90 min");
        assert_eq!(duration(86_400.0), "24.0 h");
        assert_eq!(duration(3.0 * 86_400.0), "3.0 d");
        assert_eq!(duration(f64::NAN), "0 s");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn arbitrary_series_never_make_malformed_svg(
            raw in proptest::collection::vec(
                (any::<String>(), proptest::collection::vec((any::<i64>(), any::<f64>()), 0..8)),
                0..6,
            ),
            scope in any::<String>(),
        ) {
            let series: Vec<LineSeries> =
                raw.iter().map(|(n, p)| LineSeries { name: n.clone(), points: p.clone() }).collect();
            let svg = coverage_chart(&series, &scope);
            check(&svg);
            prop_assert_eq!(&svg, &coverage_chart(&series, &scope));
        }

        #[test]
        fn arbitrary_bars_never_make_malformed_svg(
            bars in proptest::collection::vec(
                (any::<String>(), proptest::collection::vec((any::<String>(), any::<u64>()), 0..5)),
                0..5,
            ),
            groups in proptest::collection::vec(
                (
                    any::<String>(),
                    any::<Option<f64>>(),
                    any::<Option<f64>>(),
                    any::<Option<f64>>(),
                    any::<Option<f64>>(),
                ),
                0..5,
            ),
        ) {
            let bars: Vec<StackedBar> =
                bars.into_iter().map(|(label, parts)| StackedBar { label, parts, note: None }).collect();
            check(&exclusions_chart(&bars));
            let groups: Vec<DurationGroup> = groups
                .into_iter()
                .map(|(label, median, p95, oldest_open, deadline)| DurationGroup {
                    label,
                    median,
                    p95,
                    oldest_open,
                    deadline,
                })
                .collect();
            check(&unlearning_chart(&groups));
        }
    }
    #[test]
    fn time_markers_are_drawn_inside_the_range_and_described() {
        let markers = [
            TimeMarker { at: T0 + DAY, label: "Job recommendations notice v2, material".into(), strong: true },
            TimeMarker { at: T0 - 100 * DAY, label: "v1".into(), strong: false },
        ];
        let svg = coverage_chart_marked("cs-x", "x", "Coverage", &sample(), "all", &markers);
        let doc = check(&svg);
        assert_eq!(
            doc.descendants().filter(|n| n.has_attribute("class") && n.attribute("class") == Some("cs-marker")).count(),
            1
        );
        let desc = doc.descendants().find(|n| n.has_tag_name("desc")).and_then(|n| n.text()).unwrap();
        assert!(desc.contains("notice v2, material") && desc.contains("v1 ("), "{desc}");
        assert!(svg.contains(r#"id="cs-x-title""#), "the chart's own ids");
        assert_eq!(svg, coverage_chart_marked("cs-x", "x", "Coverage", &sample(), "all", &markers));
    }

    #[test]
    fn the_histogram_draws_one_bar_per_bin_and_hatches_the_special_one() {
        let bins = vec![
            HistBin { label: "0–1".into(), count: 10, special: false },
            HistBin { label: "1–2".into(), count: 0, special: false },
            HistBin { label: "no formal bound <&>".into(), count: 5, special: true },
        ];
        let svg = histogram_chart("Members by ε", &bins, "members", "composed ε");
        let doc = check(&svg);
        let bars: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name("rect") && n.attribute("class").is_some_and(|c| c.starts_with("cs-bin")))
            .collect();
        assert_eq!(bars.len(), 3);
        assert!(bars[2].attribute("fill").is_some_and(|f| f.starts_with("url(#")), "the special bin is patterned");
        let h = |n: &roxmltree::Node| n.attribute("height").unwrap().parse::<f64>().unwrap();
        assert!(h(&bars[0]) > h(&bars[2]) && h(&bars[1]) == 0.0);
        let desc = doc.descendants().find(|n| n.has_tag_name("desc")).and_then(|n| n.text()).unwrap();
        assert!(desc.contains("0–1: 10") && desc.contains("no formal bound <&>: 5"), "{desc}");
        assert!(histogram_chart("t", &[], "members", "ε").contains("No data yet"));
        assert_eq!(svg, histogram_chart("Members by ε", &bins, "members", "composed ε"));
    }

    #[test]
    fn the_epsilon_chart_plots_points_whiskers_and_the_reference() {
        let series = vec![EpsilonSeries {
            name: "job-recs".into(),
            points: vec![(4.0, 0.25, Some((0.2, 0.3))), (1.0, 0.1, None), (f64::INFINITY, 0.5, None), (0.0, 0.1, None)],
            reference: Some(0.3),
        }];
        let svg = epsilon_chart(&series, "Recall@20");
        let doc = check(&svg);
        assert_eq!(doc.descendants().filter(|n| n.has_tag_name("polyline")).count(), 1);
        assert_eq!(doc.descendants().filter(|n| n.attribute("class") == Some("cs-ci")).count(), 1);
        assert_eq!(doc.descendants().filter(|n| n.attribute("class") == Some("cs-reference")).count(), 1);
        let desc = doc.descendants().find(|n| n.has_tag_name("desc")).and_then(|n| n.text()).unwrap();
        assert!(desc.contains("ε 1 → 0.100, ε 4 → 0.250; without DP 0.300"), "{desc}");
        assert!(epsilon_chart(&[], "Recall@20").contains("No data yet"));
    }
}
