//! Sequence charts built from the servers' flow traces: one arrow per flow (taken from
//! the side that sent it, or from the server for what clients sent), drawn as text for
//! the terminal and as SVG in an HTML report.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use mcx_model::api::{TraceDirection, TraceEntry};
use serde::Serialize;

/// One flow between two lifelines.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Arrow {
    /// When it was sent (RFC 3339).
    pub(crate) at: String,
    /// The sender's lifeline.
    pub(crate) from: String,
    /// The receiver's lifeline.
    pub(crate) to: String,
    /// The flow's title.
    pub(crate) flow: String,
    /// Key elements.
    pub(crate) elements: serde_json::Value,
}

fn short_system(domain: &str) -> &str {
    domain.split('.').next().unwrap_or(domain)
}

/// The lifeline of a trace peer seen from `system`.
fn lifeline(peer: &str, system: &str) -> String {
    if let Some(rest) = peer.strip_prefix("sip:") {
        // "sip:alice@police.example (console)" -> "alice@police (console)"
        let (user, client) = rest.split_once(' ').unwrap_or((rest, ""));
        let (name, domain) = user.split_once('@').unwrap_or((user, ""));
        return format!("{name}@{} {client}", short_system(domain))
            .trim()
            .to_string();
    }
    match peer.split_once(' ') {
        Some((domain, entity)) if domain.contains('.') => {
            format!("{} {entity}", short_system(domain))
        }
        _ => format!("{} {peer}", short_system(system)),
    }
}

fn is_client(peer: &str) -> bool {
    peer.starts_with("sip:") || peer == "MC service client"
}

/// The arrows of a procedure from the entries every server recorded during it.
pub(crate) fn arrows(mut entries: Vec<TraceEntry>) -> Vec<Arrow> {
    entries.sort_by_key(|e| e.at);
    entries
        .into_iter()
        .filter_map(|e| {
            let own = format!("{} {}", short_system(&e.system), e.entity);
            let other = lifeline(&e.peer, &e.system);
            let (from, to) = match e.direction {
                TraceDirection::Sent => (own, other),
                // What a client sent is known only to the server that received it.
                TraceDirection::Received if is_client(&e.peer) => (other, own),
                TraceDirection::Received => return None,
            };
            Some(Arrow {
                at: e
                    .at
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
                from,
                to,
                flow: e.flow,
                elements: e.elements,
            })
        })
        .collect()
}

/// Whether `expected` appears in `observed` in order (other flows may come between).
pub(crate) fn in_order(expected: &[&str], observed: &[Arrow]) -> Result<(), String> {
    let mut position = 0;
    for want in expected {
        match observed[position..].iter().position(|a| a.flow == *want) {
            Some(offset) => position += offset + 1,
            None => {
                return Err(if observed.iter().any(|a| a.flow == *want) {
                    format!("'{want}' came out of order")
                } else {
                    format!("'{want}' was not observed")
                });
            }
        }
    }
    Ok(())
}

/// The chart as text.
pub(crate) fn text(title: &str, arrows: &[Arrow]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "  {title}");
    let width = arrows
        .iter()
        .map(|a| a.from.len())
        .max()
        .unwrap_or(0)
        .max(8);
    let to_width = arrows.iter().map(|a| a.to.len()).max().unwrap_or(0).max(8);
    for (i, a) in arrows.iter().enumerate() {
        let _ = writeln!(
            out,
            "   {:>2}  {:<width$} ──▶ {:<to_width$}  {}",
            i + 1,
            a.from,
            a.to,
            a.flow,
            width = width,
            to_width = to_width
        );
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The chart as an SVG sequence diagram.
pub(crate) fn svg(arrows: &[Arrow]) -> String {
    let mut lifelines: Vec<String> = Vec::new();
    for a in arrows {
        for name in [&a.from, &a.to] {
            if !lifelines.contains(name) {
                lifelines.push(name.clone());
            }
        }
    }
    // Group lifelines by system so a system's entities sit together.
    lifelines.sort_by_key(|l| {
        let system = l
            .split([' ', '@'])
            .nth(if l.contains('@') { 1 } else { 0 })
            .unwrap_or("")
            .to_string();
        let order = ["police", "fire", "ambulance"]
            .iter()
            .position(|s| system.starts_with(s))
            .unwrap_or(9);
        (order, !l.contains('@'), l.clone())
    });
    let column = 215.0;
    let x: BTreeMap<&str, f64> = lifelines
        .iter()
        .enumerate()
        .map(|(i, l)| (l.as_str(), 100.0 + i as f64 * column))
        .collect();
    let top = 60.0;
    let step = 34.0;
    let height = top + 30.0 + step * arrows.len() as f64;
    let width = 100.0 + column * lifelines.len().max(1) as f64;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    out.push_str(r##"<defs><marker id="arrow" markerWidth="10" markerHeight="8" refX="9" refY="4" orient="auto"><path d="M0,0 L10,4 L0,8 z" fill="#333"/></marker></defs>"##);
    for (name, cx) in &x {
        let _ = write!(
            out,
            r##"<rect x="{}" y="10" width="200" height="30" rx="4" fill="#eef3fb" stroke="#5577aa"/><text x="{cx}" y="29" text-anchor="middle" font-weight="bold">{}</text><line x1="{cx}" y1="40" x2="{cx}" y2="{}" stroke="#99a" stroke-dasharray="4,3"/>"##,
            cx - 100.0,
            escape(name),
            height - 10.0
        );
    }
    for (i, a) in arrows.iter().enumerate() {
        let y = top + 10.0 + step * i as f64;
        let (x1, x2) = (x[a.from.as_str()], x[a.to.as_str()]);
        if (x1 - x2).abs() < 1.0 {
            let _ = write!(
                out,
                r##"<path d="M{x1},{y} h30 v10 h-28" fill="none" stroke="#333" marker-end="url(#arrow)"/><text x="{}" y="{}">{}. {}</text>"##,
                x1 + 34.0,
                y + 4.0,
                i + 1,
                escape(&a.flow)
            );
        } else {
            let _ = write!(
                out,
                r##"<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" stroke="#333" marker-end="url(#arrow)"/><text x="{}" y="{}" text-anchor="middle">{}. {}</text>"##,
                (x1 + x2) / 2.0,
                y - 4.0,
                i + 1,
                escape(&a.flow)
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// A procedure's part of the report.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ProcedureReport {
    /// Short ID.
    pub(crate) id: String,
    /// Title.
    pub(crate) title: String,
    /// Specification clause.
    pub(crate) clause: String,
    /// The flows expected, in order.
    pub(crate) expected: Vec<String>,
    /// The flows observed, from the servers' traces.
    pub(crate) observed: Vec<Arrow>,
    /// Why the observed order deviates, if it does.
    pub(crate) order_error: Option<String>,
    /// Outcome checks that failed.
    pub(crate) failed_checks: Vec<String>,
    /// Whether everything held.
    pub(crate) passed: bool,
}

/// The HTML report.
pub(crate) fn html(procedures: &[ProcedureReport]) -> String {
    let mut out = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>mcx demo</title><style>\
         body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse}\
         td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}.ok{color:#070}.bad{color:#a00}\
         section{margin-top:2.5em}svg{border:1px solid #eee;background:#fff}code{font-size:90%}</style></head><body>",
    );
    out.push_str("<h1>mcx demo: three interconnected MC systems</h1>");
    out.push_str("<p>police.example, fire.example and ambulance.example, each a separate <code>mcx serve</code> process. Every chart is drawn from the flows the servers recorded (<code>GET /v1/trace</code>), not from the demo's script.</p>");
    out.push_str("<h2>Summary</h2><table><tr><th>#</th><th>procedure</th><th>clause</th><th>flows</th><th>order as specified</th><th>outcome</th></tr>");
    for (i, p) in procedures.iter().enumerate() {
        let order = match &p.order_error {
            None => "<span class=ok>yes</span>".to_string(),
            Some(e) => format!("<span class=bad>{}</span>", escape(e)),
        };
        let outcome = if p.failed_checks.is_empty() {
            "<span class=ok>as specified</span>".to_string()
        } else {
            format!(
                "<span class=bad>{}</span>",
                escape(&p.failed_checks.join("; "))
            )
        };
        let _ = write!(
            out,
            "<tr><td>{}</td><td><a href=\"#{}\">{}</a></td><td>{}</td><td>{}</td><td>{order}</td><td>{outcome}</td></tr>",
            i + 1,
            p.id,
            escape(&p.title),
            escape(&p.clause),
            p.observed.len()
        );
    }
    out.push_str("</table>");
    for p in procedures {
        let _ = write!(
            out,
            "<section id=\"{}\"><h2>{} <small>({})</small></h2>",
            p.id,
            escape(&p.title),
            escape(&p.clause)
        );
        let expected: Vec<String> = p.expected.iter().map(|e| escape(e)).collect();
        let _ = write!(out, "<p>Expected in order: {}</p>", expected.join(" → "));
        out.push_str(&svg(&p.observed));
        out.push_str("<details><summary>flows with their key elements</summary><ol>");
        for a in &p.observed {
            let _ = write!(
                out,
                "<li><code>{}</code> {} → {}: <b>{}</b> <code>{}</code></li>",
                escape(&a.at),
                escape(&a.from),
                escape(&a.to),
                escape(&a.flow),
                escape(&a.elements.to_string())
            );
        }
        out.push_str("</ol></details></section>");
    }
    out.push_str("</body></html>");
    out
}
