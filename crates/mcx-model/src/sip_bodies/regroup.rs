//! The preconfigured regroup body of a SIP MESSAGE (`application/vnd.3gpp.mcptt-regroup+xml`,
//! TS 24.379 clause 16, Annex F.7): `<mcpttregroup><mcpttregroup-Params>` with
//! `<preconfig-group-id><preconfigured-group>`, `<mcptt-regroup-uri>`,
//! `<groups-for-regroup>` and `<regroup-action>`.
//!
//! The element names above are confirmed against the Annex F.7 schema text; the content
//! of `<mcptt-regroup-uri>` and of `<groups-for-regroup>` and the values of
//! `<regroup-action>` are not (see `docs/stage3.md`). So the reader is lenient where the
//! text is open: a URI is the element's own text or the text of its one child element,
//! the groups are every URI below `<groups-for-regroup>`, and the action is `create` or
//! `remove`. The writer puts each URI as the element's text.

use roxmltree::Node;

use super::{BodyError, children, document, utf8};
use crate::McServiceGroupId;

/// The regroup namespace (Annex F.7).
pub const REGROUP_NS: &str = "urn:3gpp:ns:preconfiguredRegroup:1.0";
/// The regroup body's media type.
pub const REGROUP_MEDIA_TYPE: &str = "application/vnd.3gpp.mcptt-regroup+xml";

/// Groups a regroup MESSAGE may name at most.
const MAX_GROUPS: usize = 1_000;

/// `<regroup-action>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegroupAction {
    /// Create the regroup.
    Create,
    /// Remove (cancel) it.
    Remove,
}

/// A regroup MESSAGE's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegroupMessage {
    /// `<preconfigured-group>`: the group whose configuration the regroup takes
    /// (required to create).
    pub preconfigured_group: Option<McServiceGroupId>,
    /// `<mcptt-regroup-uri>`: the regroup group.
    pub regroup_group: McServiceGroupId,
    /// `<groups-for-regroup>`: the groups regrouped (required to create).
    pub groups: Vec<McServiceGroupId>,
    /// Whether `<users-for-regroup>` is present (user regroup, which mcx refuses).
    pub users_for_regroup: bool,
    /// `<regroup-action>`.
    pub action: RegroupAction,
}

/// Reads a regroup MESSAGE's body.
pub fn read_regroup(body: &[u8]) -> Result<RegroupMessage, BodyError> {
    let document = document(utf8(body, "mcptt-regroup")?, "mcptt-regroup")?;
    let root = document.root_element();
    if root.tag_name().namespace() != Some(REGROUP_NS) || root.tag_name().name() != "mcpttregroup" {
        return Err(BodyError(format!(
            "the mcptt-regroup body's root must be <mcpttregroup> in {REGROUP_NS}"
        )));
    }
    let params = children(root, REGROUP_NS, "mcpttregroup-Params")
        .next()
        .ok_or_else(|| BodyError("<mcpttregroup> has no <mcpttregroup-Params>".into()))?;
    let one = |name: &'static str| children(params, REGROUP_NS, name).next();
    let group = |node: Node, what: &str| -> Result<McServiceGroupId, BodyError> {
        let text = uri_text(node).ok_or_else(|| BodyError(format!("<{what}> holds no URI")))?;
        McServiceGroupId::parse(&text)
            .map_err(|e| BodyError(format!("<{what}> is not an MC service group ID: {e}")))
    };
    let preconfigured_group = match one("preconfig-group-id") {
        Some(node) => match children(node, REGROUP_NS, "preconfigured-group").next() {
            Some(inner) => Some(group(inner, "preconfigured-group")?),
            None => None,
        },
        None => None,
    };
    let regroup_group = group(
        one("mcptt-regroup-uri")
            .ok_or_else(|| BodyError("<mcpttregroup-Params> has no <mcptt-regroup-uri>".into()))?,
        "mcptt-regroup-uri",
    )?;
    let mut groups = Vec::new();
    if let Some(list) = one("groups-for-regroup") {
        for node in list.descendants().filter(|n| n.is_element() && *n != list) {
            // Only the innermost elements hold URIs.
            if node.children().any(|c| c.is_element()) {
                continue;
            }
            let Some(text) = node.text().map(str::trim).filter(|t| !t.is_empty()) else {
                continue;
            };
            let id = McServiceGroupId::parse(text).map_err(|e| {
                BodyError(format!(
                    "a group of <groups-for-regroup> is not an MC service group ID: {e}"
                ))
            })?;
            if !groups.contains(&id) {
                groups.push(id);
            }
            if groups.len() > MAX_GROUPS {
                return Err(BodyError(format!(
                    "a regroup may name at most {MAX_GROUPS} groups"
                )));
            }
        }
    }
    let action = one("regroup-action")
        .and_then(|n| n.text())
        .map(|t| t.trim().to_ascii_lowercase())
        .ok_or_else(|| BodyError("<mcpttregroup-Params> has no <regroup-action>".into()))?;
    let action = match action.as_str() {
        "create" => RegroupAction::Create,
        "remove" => RegroupAction::Remove,
        other => {
            return Err(BodyError(format!(
                "<regroup-action> is '{other}'; mcx knows create and remove"
            )));
        }
    };
    if action == RegroupAction::Create && preconfigured_group.is_none() {
        return Err(BodyError(
            "creating a regroup needs <preconfig-group-id><preconfigured-group>".into(),
        ));
    }
    Ok(RegroupMessage {
        preconfigured_group,
        regroup_group,
        groups,
        users_for_regroup: one("users-for-regroup").is_some(),
        action,
    })
}

/// The URI an element holds: its own text, or its one child element's.
fn uri_text(node: Node) -> Option<String> {
    let own = node
        .children()
        .filter(|c| c.is_text())
        .filter_map(|c| c.text())
        .collect::<String>();
    let own = own.trim();
    if !own.is_empty() {
        return Some(own.to_string());
    }
    let elements: Vec<Node> = node.children().filter(|c| c.is_element()).collect();
    match elements.as_slice() {
        [only] => only
            .text()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty()),
        _ => None,
    }
}

/// The body telling a member of a regroup (§16.2.3: the server's MESSAGE to the
/// affiliated members): the preconfigured group (when known: a removal names only the
/// regroup group), the regroup group and the action.
pub fn write_regroup(
    preconfigured_group: Option<&McServiceGroupId>,
    regroup_group: &McServiceGroupId,
    action: RegroupAction,
) -> String {
    use quick_xml::Writer;
    use quick_xml::events::{BytesDecl, BytesText, Event};
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    // Writing into a Vec cannot fail.
    let _ = writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    let _ = writer
        .create_element("mcpttregroup")
        .with_attribute(("xmlns", REGROUP_NS))
        .write_inner_content(|w| {
            w.create_element("mcpttregroup-Params")
                .write_inner_content(|w| {
                    w.create_element("preconfig-group-id")
                        .write_inner_content(|w| {
                            if let Some(group) = preconfigured_group {
                                w.create_element("preconfigured-group")
                                    .write_text_content(BytesText::new(group.as_str()))?;
                            }
                            Ok::<(), std::io::Error>(())
                        })?;
                    w.create_element("mcptt-regroup-uri")
                        .write_text_content(BytesText::new(regroup_group.as_str()))?;
                    w.create_element("regroup-action")
                        .write_text_content(BytesText::new(match action {
                            RegroupAction::Create => "create",
                            RegroupAction::Remove => "remove",
                        }))?;
                    Ok::<(), std::io::Error>(())
                })?;
            Ok::<(), std::io::Error>(())
        });
    String::from_utf8(writer.into_inner()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(inner: &str) -> String {
        format!(
            r#"<?xml version="1.0"?><mcpttregroup xmlns="urn:3gpp:ns:preconfiguredRegroup:1.0"><mcpttregroup-Params>{inner}</mcpttregroup-Params></mcpttregroup>"#
        )
    }

    #[test]
    fn reads_a_create_with_uris_as_text_or_wrapped() {
        let message = read_regroup(
            body(
                "<preconfig-group-id><preconfigured-group>sip:template@police.example</preconfigured-group></preconfig-group-id>\
                 <mcptt-regroup-uri><x>sip:rg1@police.example</x></mcptt-regroup-uri>\
                 <groups-for-regroup><g>sip:ops@police.example</g><g><y>sip:ops@fire.example</y></g></groups-for-regroup>\
                 <regroup-action>create</regroup-action>",
            )
            .as_bytes(),
        )
        .expect("reads");
        assert_eq!(message.regroup_group.as_str(), "sip:rg1@police.example");
        assert_eq!(
            message
                .preconfigured_group
                .map(|g| g.to_string())
                .as_deref(),
            Some("sip:template@police.example")
        );
        assert_eq!(
            message
                .groups
                .iter()
                .map(|g| g.as_str())
                .collect::<Vec<_>>(),
            ["sip:ops@police.example", "sip:ops@fire.example"]
        );
        assert_eq!(message.action, RegroupAction::Create);
    }

    #[test]
    fn what_a_regroup_needs_is_asked_for_by_name() {
        for (bad, says) in [
            (
                body("<regroup-action>create</regroup-action>"),
                "mcptt-regroup-uri",
            ),
            (
                body(
                    "<mcptt-regroup-uri>sip:rg@police.example</mcptt-regroup-uri><regroup-action>create</regroup-action>",
                ),
                "preconfigured-group",
            ),
            (
                body(
                    "<mcptt-regroup-uri>sip:rg@police.example</mcptt-regroup-uri><regroup-action>merge</regroup-action>",
                ),
                "merge",
            ),
            (
                body(
                    "<mcptt-regroup-uri>not a uri</mcptt-regroup-uri><regroup-action>remove</regroup-action>",
                ),
                "not an MC service group ID",
            ),
            (body("").replace("preconfiguredRegroup", "other"), "root"),
        ] {
            let error = read_regroup(bad.as_bytes()).expect_err("refused");
            assert!(error.0.contains(says), "{bad}: {error}");
        }
    }

    #[test]
    fn what_is_written_reads_back() {
        let template = McServiceGroupId::parse("sip:template@police.example").expect("ID");
        let regroup = McServiceGroupId::parse("sip:rg1@police.example").expect("ID");
        let written = write_regroup(Some(&template), &regroup, RegroupAction::Remove);
        let read = read_regroup(written.as_bytes()).expect("reads");
        assert_eq!(read.regroup_group, regroup);
        assert_eq!(read.preconfigured_group, Some(template));
        assert_eq!(read.action, RegroupAction::Remove);
    }
}
