//! XCAP node selectors (RFC 4825 §6.3) on a group document: `group/list-service/list/
//! entry[@uri="sip:bob@police.example"]/mcpttgi:user-priority`, an element or (as the
//! last step) an attribute. Unprefixed names are in the application usage's default
//! namespace (list-service's); a prefix is bound in the request's query
//! (`xmlns(p=uri)`), else taken as TS 24.481 uses it.

use roxmltree::{Document, Node};

use super::{STANDARD_PREFIXES, ns};

/// What a node selector selected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selected {
    /// An element, as XML text (`application/xcap-el+xml`).
    Element(String),
    /// An attribute's value (`application/xcap-att+xml`).
    Attribute(String),
}

/// Why a selector selected nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// Not a node selector this server understands (400).
    #[error("{0}")]
    Malformed(String),
    /// It selects no node, or more than one (404).
    #[error("{0}")]
    NoNode(String),
}

/// Steps a selector may have.
const STEPS: usize = 16;

struct Step<'s> {
    namespace: Option<String>,
    name: &'s str,
    position: Option<usize>,
    attribute: Option<(&'s str, String)>,
}

/// Selects in `document` (a group document as served) what `selector` (percent-decoded,
/// without the `~~/`) names, with the namespace bindings of `query` (`xmlns(p=uri)…`).
pub fn select(
    document: &str,
    selector: &str,
    query: Option<&str>,
) -> Result<Selected, SelectorError> {
    let bindings = bindings(query.unwrap_or_default())?;
    let parts: Vec<&str> = selector.split('/').collect();
    if parts.len() > STEPS || parts.iter().any(|p| p.is_empty()) {
        return Err(SelectorError::Malformed(format!(
            "'{selector}' is not a node selector: steps separated by '/', at most {STEPS}"
        )));
    }
    let (steps, attribute) = match parts.split_last() {
        Some((last, rest)) if last.starts_with('@') => (rest, Some(*last)),
        _ => (parts.as_slice(), None),
    };
    let steps = steps
        .iter()
        .map(|s| step(s, &bindings))
        .collect::<Result<Vec<_>, _>>()?;
    let Some((first, rest)) = steps.split_first() else {
        return Err(SelectorError::Malformed(
            "a node selector names the root element first".into(),
        ));
    };
    let parsed = Document::parse(document)
        .map_err(|e| SelectorError::NoNode(format!("the document cannot be read: {e}")))?;
    let root = parsed.root_element();
    if !matches(root, first) || first.position.is_some_and(|p| p != 1) {
        return Err(SelectorError::NoNode(format!(
            "the document's root is not '{}'",
            first.name
        )));
    }
    let mut here = root;
    for step in rest {
        let candidates: Vec<Node> = here
            .children()
            .filter(|n| n.is_element() && matches(*n, step))
            .collect();
        let chosen = match step.position {
            Some(position) => candidates.get(position - 1).copied(),
            None if candidates.len() == 1 => candidates.first().copied(),
            None => None,
        };
        here = chosen.ok_or_else(|| {
            SelectorError::NoNode(format!(
                "no single element '{}' there ({} match)",
                step.name,
                candidates.len()
            ))
        })?;
    }
    match attribute {
        None => Ok(Selected::Element(document[here.range()].to_string())),
        Some(attribute) => {
            let (namespace, name) = qualified(&attribute[1..], &bindings, true)?;
            let value = here
                .attributes()
                .find(|a| a.name() == name && a.namespace() == namespace.as_deref())
                .map(|a| a.value().to_string());
            value.map(Selected::Attribute).ok_or_else(|| {
                SelectorError::NoNode(format!("the element has no attribute '{name}'"))
            })
        }
    }
}

fn matches(node: Node, step: &Step) -> bool {
    (step.name == "*"
        || (node.tag_name().name() == step.name
            && node.tag_name().namespace() == step.namespace.as_deref()))
        && step
            .attribute
            .as_ref()
            .is_none_or(|(name, value)| node.attribute(*name) == Some(value.as_str()))
}

fn step<'s>(text: &'s str, bindings: &[(String, String)]) -> Result<Step<'s>, SelectorError> {
    let malformed = || {
        SelectorError::Malformed(format!(
            "'{text}' is not a step this server understands (name, name[n], name[@attr=\"value\"])"
        ))
    };
    let (name, mut predicates) = match text.find('[') {
        Some(at) => (&text[..at], &text[at..]),
        None => (text, ""),
    };
    let (namespace, name) = if name == "*" {
        (None, "*")
    } else {
        qualified(name, bindings, false)?
    };
    let mut step = Step {
        namespace,
        name,
        position: None,
        attribute: None,
    };
    while !predicates.is_empty() {
        let body = predicates.strip_prefix('[').ok_or_else(malformed)?;
        let end = body.find(']').ok_or_else(malformed)?;
        let inner = &body[..end];
        predicates = &body[end + 1..];
        if let Ok(position) = inner.parse::<usize>() {
            if position == 0 || step.position.is_some() {
                return Err(malformed());
            }
            step.position = Some(position);
        } else if let Some(test) = inner.strip_prefix('@') {
            let (attribute, value) = test.split_once('=').ok_or_else(malformed)?;
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .ok_or_else(malformed)?;
            if attribute.contains(':') || step.attribute.is_some() {
                return Err(malformed());
            }
            step.attribute = Some((attribute, value.to_string()));
        } else {
            return Err(malformed());
        }
    }
    if step.name.is_empty() {
        return Err(malformed());
    }
    Ok(step)
}

/// A (possibly prefixed) name's namespace and local name. Unprefixed attributes have no
/// namespace; unprefixed elements are list-service's.
fn qualified<'s>(
    name: &'s str,
    bindings: &[(String, String)],
    attribute: bool,
) -> Result<(Option<String>, &'s str), SelectorError> {
    match name.split_once(':') {
        Some((prefix, local)) => {
            let uri = bindings
                .iter()
                .find(|(p, _)| p == prefix)
                .map(|(_, uri)| uri.clone())
                .or_else(|| {
                    STANDARD_PREFIXES
                        .iter()
                        .find(|(n, _)| n.strip_prefix("xmlns:") == Some(prefix))
                        .map(|(_, uri)| uri.to_string())
                })
                .ok_or_else(|| {
                    SelectorError::Malformed(format!(
                        "the prefix '{prefix}' is not bound; bind it in the query: ?xmlns({prefix}=<namespace>)"
                    ))
                })?;
            Ok((Some(uri), local))
        }
        None if attribute => Ok((None, name)),
        None => Ok((Some(ns::LIST_SERVICE.to_string()), name)),
    }
}

/// `xmlns(p=uri)xmlns(q=uri)` (RFC 4825 §6.4).
fn bindings(query: &str) -> Result<Vec<(String, String)>, SelectorError> {
    let mut out = Vec::new();
    let mut rest = query.trim();
    while !rest.is_empty() {
        let inner = rest
            .strip_prefix("xmlns(")
            .and_then(|r| r.split_once(')'))
            .ok_or_else(|| {
                SelectorError::Malformed(format!(
                    "the query '{query}' is not a list of xmlns(prefix=namespace)"
                ))
            })?;
        let (binding, after) = inner;
        let (prefix, uri) = binding.split_once('=').ok_or_else(|| {
            SelectorError::Malformed(format!("'{binding}' binds no namespace: prefix=namespace"))
        })?;
        out.push((prefix.trim().to_string(), uri.trim().to_string()));
        rest = after.trim_start();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<group xmlns="urn:oma:xml:poc:list-service" xmlns:mcpttgi="urn:3gpp:ns:mcpttGroupInfo:1.0">
  <list-service uri="sip:ops@police.example">
    <display-name>Operations</display-name>
    <list>
      <entry uri="sip:alice@police.example"><mcpttgi:user-priority>1</mcpttgi:user-priority></entry>
      <entry uri="sip:bob@police.example"><mcpttgi:user-priority>3</mcpttgi:user-priority></entry>
    </list>
  </list-service>
</group>"#;

    #[test]
    fn elements_and_attributes_by_name_position_and_attribute() {
        assert_eq!(
            select(DOC, "group/list-service/display-name", None),
            Ok(Selected::Element(
                "<display-name>Operations</display-name>".into()
            ))
        );
        assert_eq!(
            select(DOC, "group/list-service/@uri", None),
            Ok(Selected::Attribute("sip:ops@police.example".into()))
        );
        assert_eq!(
            select(
                DOC,
                "group/list-service/list/entry[@uri=\"sip:bob@police.example\"]/mcpttgi:user-priority",
                None
            ),
            Ok(Selected::Element(
                "<mcpttgi:user-priority>3</mcpttgi:user-priority>".into()
            ))
        );
        assert_eq!(
            select(
                DOC,
                "group/list-service/list/entry[1]/g:user-priority",
                Some("xmlns(g=urn:3gpp:ns:mcpttGroupInfo:1.0)")
            ),
            Ok(Selected::Element(
                "<mcpttgi:user-priority>1</mcpttgi:user-priority>".into()
            ))
        );
        assert_eq!(
            select(DOC, "*/*/list/entry[2]/@uri", None),
            Ok(Selected::Attribute("sip:bob@police.example".into()))
        );
    }

    #[test]
    fn ambiguous_absent_and_malformed_selectors() {
        assert!(matches!(
            select(DOC, "group/list-service/list/entry", None),
            Err(SelectorError::NoNode(_))
        ));
        assert!(matches!(
            select(DOC, "group/list-service/owner", None),
            Err(SelectorError::NoNode(_))
        ));
        assert!(matches!(
            select(DOC, "group/list-service/list/entry[3]", None),
            Err(SelectorError::NoNode(_))
        ));
        for bad in [
            "group//list-service",
            "group/list-service/x:y",
            "group/list-service[0]",
            "group/list-service[@uri=unquoted]",
            "group/list-service[position()=1]",
            // Found by the property test: text between predicates.
            "group/list-service[1]]\"6==@\"\"v]",
            "group/a[1]x",
        ] {
            assert!(
                matches!(select(DOC, bad, None), Err(SelectorError::Malformed(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            select(DOC, "group", Some("xmlns(broken")),
            Err(SelectorError::Malformed(_))
        ));
    }
}
