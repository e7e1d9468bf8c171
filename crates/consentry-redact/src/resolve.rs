//! Overlap resolution: when candidates overlap, the more confident one wins,
//! then the longer one; the result is sorted and disjoint.

use crate::Span;
use std::collections::BTreeMap;

/// Keeps a disjoint subset of `spans`, preferring higher scores, then longer spans; returns them sorted by start.
pub fn resolve(mut spans: Vec<Span>) -> Vec<Span> {
    spans.retain(|s| s.start < s.end);
    // Greedy choices in one group of transitively overlapping spans never affect another group, so only groups of
    // two or more need the priority order; most spans overlap nothing and are kept as they are.
    spans.sort_unstable_by(|a, b| a.start.cmp(&b.start).then(b.end.cmp(&a.end)));
    let mut out = Vec::with_capacity(spans.len());
    let mut g = 0;
    while g < spans.len() {
        let mut end = spans[g].end;
        let mut h = g + 1;
        while h < spans.len() && spans[h].start < end {
            end = end.max(spans[h].end);
            h += 1;
        }
        if h == g + 1 {
            out.push(spans[g]);
        } else {
            out.extend(resolve_group(&mut spans[g..h]));
        }
        g = h;
    }
    out
}

/// Greedy by score, then length, then position, over one group of overlapping spans; sorted by start.
fn resolve_group(group: &mut [Span]) -> Vec<Span> {
    group.sort_by(|a, b| {
        b.score.total_cmp(&a.score).then(b.len().cmp(&a.len())).then(a.start.cmp(&b.start)).then(a.kind.cmp(&b.kind))
    });
    let mut kept: BTreeMap<usize, Span> = BTreeMap::new();
    for s in group.iter() {
        let clash = kept.range(..s.end).next_back().is_some_and(|(_, k)| k.end > s.start);
        if !clash {
            kept.insert(s.start, *s);
        }
    }
    kept.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Kind;

    #[test]
    fn prefers_score_then_length() {
        let spans = vec![
            Span::new(0, 10, Kind::Address, 0.9),
            Span::new(2, 6, Kind::Person, 0.6),
            Span::new(8, 14, Kind::Phone, 0.8),
            Span::new(20, 30, Kind::Url, 0.8),
            Span::new(20, 25, Kind::Url, 0.8),
        ];
        let r = resolve(spans);
        let got: Vec<(usize, usize)> = r.iter().map(|s| (s.start, s.end)).collect();
        assert_eq!(got, [(0, 10), (20, 30)]);
    }
}
