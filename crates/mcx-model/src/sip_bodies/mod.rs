//! The XML bodies of TS 24.379's affiliation signalling, read and written as the SIP edge
//! needs them: the MCPTT information (`application/vnd.3gpp.mcptt-info+xml`, Annex F.1)
//! naming who asks and whose affiliation changes, and the per-user affiliation
//! information in PIDF (`application/pidf+xml` with `urn:3gpp:ns:mcpttPresInfo:1.0`,
//! §9.3.1). Read as safely as group documents (no DTD, bounded); element names and how
//! sure each is are in `docs/stage3.md`.

mod regroup;

pub use regroup::{
    REGROUP_MEDIA_TYPE, REGROUP_NS, RegroupAction, RegroupMessage, read_regroup, write_regroup,
};

use roxmltree::{Document, Node};

use crate::flows::affiliation::{AffiliationCause, AffiliationStatus};
use crate::{ClientId, McServiceGroupId, McServiceId};

/// The MCPTT information namespace (TS 24.379 Annex F.1).
pub const MCPTT_INFO_NS: &str = "urn:3gpp:ns:mcpttInfo:1.0";
/// Its media type.
pub const MCPTT_INFO_MEDIA_TYPE: &str = "application/vnd.3gpp.mcptt-info+xml";
/// PIDF (RFC 3863).
pub const PIDF_NS: &str = "urn:ietf:params:xml:ns:pidf";
/// Its media type.
pub const PIDF_MEDIA_TYPE: &str = "application/pidf+xml";
/// The MCPTT presence extensions for affiliation (TS 24.379 §9.3.1).
pub const PRES_INFO_NS: &str = "urn:3gpp:ns:mcpttPresInfo:1.0";

/// Resource lists (RFC 4826), naming the documents of an xcap-diff subscription.
pub const RESOURCE_LISTS_NS: &str = "urn:ietf:params:xml:ns:resource-lists";
/// Its media type.
pub const RESOURCE_LISTS_MEDIA_TYPE: &str = "application/resource-lists+xml";

/// A body that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BodyError(pub String);

fn utf8<'b>(body: &'b [u8], what: &str) -> Result<&'b str, BodyError> {
    std::str::from_utf8(body).map_err(|e| BodyError(format!("the {what} body is not UTF-8 ({e})")))
}

fn document<'t>(text: &'t str, what: &str) -> Result<Document<'t>, BodyError> {
    crate::safe_xml::parse(text, 10_000).map_err(|e| {
        BodyError(format!(
            "the {what} body is not well-formed XML (no DTD accepted): {e}"
        ))
    })
}

fn children<'a, 'i>(
    node: Node<'a, 'i>,
    namespace: &'a str,
    name: &'a str,
) -> impl Iterator<Item = Node<'a, 'i>> {
    node.children().filter(move |n| {
        n.is_element() && n.tag_name().namespace() == Some(namespace) && n.tag_name().name() == name
    })
}

/// The MCPTT information a request carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct McpttInfo {
    /// `<mcptt-access-token>`: the bearer token of the user's session (the JSON API's).
    pub access_token: Option<String>,
    /// `<mcptt-request-uri>`: whose affiliation the request is about.
    pub request_uri: Option<McServiceId>,
}

/// Reads `<mcpttinfo><mcptt-Params>…`: the access token (`<mcpttString>`) and request
/// URI (`<mcpttURI>`). Other elements are ignored; an encrypted value is refused.
pub fn read_mcptt_info(body: &[u8]) -> Result<McpttInfo, BodyError> {
    let document = document(utf8(body, "mcptt-info")?, "mcptt-info")?;
    let root = document.root_element();
    if root.tag_name().namespace() != Some(MCPTT_INFO_NS) || root.tag_name().name() != "mcpttinfo" {
        return Err(BodyError(format!(
            "the mcptt-info body's root must be <mcpttinfo> in {MCPTT_INFO_NS}"
        )));
    }
    let mut info = McpttInfo::default();
    for params in children(root, MCPTT_INFO_NS, "mcptt-Params") {
        for token in children(params, MCPTT_INFO_NS, "mcptt-access-token") {
            info.access_token = Some(value(token, "mcpttString")?);
        }
        for uri in children(params, MCPTT_INFO_NS, "mcptt-request-uri") {
            let text = value(uri, "mcpttURI")?;
            info.request_uri = Some(McServiceId::parse(&text).map_err(|e| {
                BodyError(format!("mcptt-request-uri is not an MC service ID: {e}"))
            })?);
        }
    }
    Ok(info)
}

/// The value of a content-type element (`<mcpttString>`, `<mcpttURI>`), plain only.
fn value(node: Node, child: &str) -> Result<String, BodyError> {
    if node.attribute("type").is_some_and(|t| t != "Normal") {
        return Err(BodyError(format!(
            "<{}> is encrypted; mcx reads only type=\"Normal\" values",
            node.tag_name().name()
        )));
    }
    children(node, MCPTT_INFO_NS, child)
        .next()
        .and_then(|n| n.text())
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| BodyError(format!("<{}> has no <{child}>", node.tag_name().name())))
}

/// Entries a resource list may name.
pub const MAX_ENTRIES: usize = 1_000;

/// The `entry/@uri` values of a resource list (`<resource-lists><list><entry uri=…/>`),
/// as an xcap-diff SUBSCRIBE names its documents (TS 24.481 §6.3.13.2).
pub fn read_resource_list(body: &[u8]) -> Result<Vec<String>, BodyError> {
    let document = document(utf8(body, "resource-lists")?, "resource-lists")?;
    let root = document.root_element();
    if root.tag_name().namespace() != Some(RESOURCE_LISTS_NS)
        || root.tag_name().name() != "resource-lists"
    {
        return Err(BodyError(format!(
            "the resource list's root must be <resource-lists> in {RESOURCE_LISTS_NS}"
        )));
    }
    let mut uris = Vec::new();
    for list in children(root, RESOURCE_LISTS_NS, "list") {
        for entry in children(list, RESOURCE_LISTS_NS, "entry") {
            let uri = entry
                .attribute("uri")
                .ok_or_else(|| BodyError("an <entry> needs its uri".into()))?;
            uris.push(uri.to_string());
        }
    }
    if uris.len() > MAX_ENTRIES {
        return Err(BodyError(format!(
            "a resource list may name at most {MAX_ENTRIES} documents"
        )));
    }
    Ok(uris)
}

/// A client's desired affiliations, as its PUBLISH carries them (§9.2.1.2): the complete
/// set of groups for that client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AffiliationPublication {
    /// `presence/@entity`: whose affiliations.
    pub entity: McServiceId,
    /// `tuple/@id`: the MC service client.
    pub client: ClientId,
    /// `<mcpttPI10:affiliation group=…/>` in the tuple's status, in order, without repeats.
    pub groups: Vec<McServiceGroupId>,
    /// `<mcpttPI10:p-id>`, echoed in the NOTIFYs this publication causes.
    pub p_id: Option<String>,
}

/// Groups a PUBLISH may name at most.
pub const MAX_GROUPS: usize = 1_000;

/// Reads a PUBLISH's per-user affiliation information.
pub fn read_affiliation_publication(body: &[u8]) -> Result<AffiliationPublication, BodyError> {
    let document = document(utf8(body, "pidf")?, "pidf")?;
    let root = document.root_element();
    if root.tag_name().namespace() != Some(PIDF_NS) || root.tag_name().name() != "presence" {
        return Err(BodyError(format!(
            "the pidf body's root must be <presence> in {PIDF_NS}"
        )));
    }
    let entity = root
        .attribute("entity")
        .ok_or_else(|| BodyError("<presence> needs its entity: the MC service ID".into()))?;
    let entity = McServiceId::parse(entity)
        .map_err(|e| BodyError(format!("presence/@entity is not an MC service ID: {e}")))?;
    let tuples: Vec<Node> = children(root, PIDF_NS, "tuple").collect();
    let [tuple] = tuples.as_slice() else {
        return Err(BodyError(format!(
            "a client publishes its own affiliations in one <tuple>, not {}",
            tuples.len()
        )));
    };
    let client = tuple
        .attribute("id")
        .ok_or_else(|| BodyError("<tuple> needs its id: the MC service client ID".into()))?;
    let client = ClientId::parse(client)
        .map_err(|e| BodyError(format!("tuple/@id is not a client ID: {e}")))?;
    let mut groups: Vec<McServiceGroupId> = Vec::new();
    for status in children(*tuple, PIDF_NS, "status") {
        for affiliation in children(status, PRES_INFO_NS, "affiliation") {
            let group = affiliation
                .attribute("group")
                .ok_or_else(|| BodyError("<affiliation> needs its group attribute".into()))?;
            let group = McServiceGroupId::parse(group).map_err(|e| {
                BodyError(format!(
                    "affiliation/@group is not an MC service group ID: {e}"
                ))
            })?;
            if !groups.contains(&group) {
                groups.push(group);
            }
        }
    }
    if groups.len() > MAX_GROUPS {
        return Err(BodyError(format!(
            "a publication may name at most {MAX_GROUPS} groups"
        )));
    }
    let p_id = children(root, PRES_INFO_NS, "p-id")
        .next()
        .and_then(|n| n.text())
        .map(|t| t.trim().to_string());
    Ok(AffiliationPublication {
        entity,
        client,
        groups,
        p_id,
    })
}

/// One group's affiliation state of one client, as a NOTIFY reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientGroupStatus {
    /// The group.
    pub group: McServiceGroupId,
    /// `affiliating`, `affiliated` or `deaffiliating` (not-affiliated groups are omitted).
    pub status: AffiliationStatus,
}

/// mcx's namespace for what a NOTIFY adds beyond TS 24.379: the groups a client's last
/// PUBLISH asked for and was refused, with the cause (`<mcx:refused group= cause=/>`).
pub const MCX_AFFILIATION_NS: &str = "urn:mcx:params:xml:ns:affiliation";

/// One client's groups, as a NOTIFY reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAffiliations {
    /// The MC service client (the tuple's id).
    pub client: ClientId,
    /// Its groups and their state.
    pub groups: Vec<ClientGroupStatus>,
    /// Groups its last PUBLISH asked for that were refused, and why.
    pub refused: Vec<(McServiceGroupId, AffiliationCause)>,
    /// When its affiliations end (its session's end), as xs:dateTime.
    pub expires: Option<String>,
}

/// The per-user affiliation information of a NOTIFY (§9.2.2.2.4): one tuple per client,
/// each listing its groups with their status; `p_id` echoes the PUBLISH that caused it.
/// Groups not affiliated are left out, as the clause says; refused ones are named in
/// mcx's namespace.
pub fn write_affiliation_status(
    user: &McServiceId,
    clients: &[ClientAffiliations],
    p_id: Option<&str>,
) -> String {
    use quick_xml::Writer;
    use quick_xml::events::{BytesDecl, BytesText, Event};
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    // Writing into a Vec cannot fail.
    let _ = writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    let _ = writer
        .create_element("presence")
        .with_attributes([
            ("xmlns", PIDF_NS),
            ("xmlns:mcpttPI10", PRES_INFO_NS),
            ("xmlns:mcx", MCX_AFFILIATION_NS),
            ("entity", user.as_str()),
        ])
        .write_inner_content(|w| {
            for client in clients {
                w.create_element("tuple")
                    .with_attribute(("id", client.client.as_str()))
                    .write_inner_content(|w| {
                        w.create_element("status").write_inner_content(|w| {
                            for group in &client.groups {
                                let status = match group.status {
                                    AffiliationStatus::Affiliated => "affiliated",
                                    AffiliationStatus::Affiliating => "affiliating",
                                    AffiliationStatus::NotAffiliated => continue,
                                };
                                let element =
                                    w.create_element("mcpttPI10:affiliation").with_attributes([
                                        ("group", group.group.as_str()),
                                        ("status", status),
                                    ]);
                                match &client.expires {
                                    Some(expires) => element
                                        .with_attribute(("expires", expires.as_str()))
                                        .write_empty()?,
                                    None => element.write_empty()?,
                                };
                            }
                            for (group, cause) in &client.refused {
                                w.create_element("mcx:refused")
                                    .with_attributes([
                                        ("group", group.as_str()),
                                        ("cause", cause.as_str()),
                                    ])
                                    .write_empty()?;
                            }
                            Ok::<(), std::io::Error>(())
                        })?;
                        Ok::<(), std::io::Error>(())
                    })?;
            }
            if let Some(p_id) = p_id {
                w.create_element("mcpttPI10:p-id")
                    .write_text_content(BytesText::new(p_id))?;
            }
            Ok::<(), std::io::Error>(())
        });
    String::from_utf8(writer.into_inner()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<mcpttinfo xmlns="urn:3gpp:ns:mcpttInfo:1.0">
  <mcptt-Params>
    <mcptt-access-token type="Normal"><mcpttString>tok-123</mcpttString></mcptt-access-token>
    <mcptt-request-uri type="Normal"><mcpttURI>sip:bob@police.example</mcpttURI></mcptt-request-uri>
  </mcptt-Params>
</mcpttinfo>"#;

    const PUBLISH: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:p="urn:3gpp:ns:mcpttPresInfo:1.0" entity="sip:bob@police.example">
  <tuple id="phone">
    <status>
      <p:affiliation group="sip:ops@police.example"/>
      <p:affiliation group="sip:ops@fire.example"/>
      <p:affiliation group="sip:ops@police.example"/>
    </status>
  </tuple>
  <p:p-id>42</p:p-id>
</presence>"#;

    #[test]
    fn reads_the_token_and_whose_affiliation() {
        let info = read_mcptt_info(INFO.as_bytes()).expect("reads");
        assert_eq!(info.access_token.as_deref(), Some("tok-123"));
        assert_eq!(
            info.request_uri.map(|u| u.to_string()).as_deref(),
            Some("sip:bob@police.example")
        );
        let encrypted = INFO.replace(
            "type=\"Normal\"><mcpttString>",
            "type=\"Encrypted\"><mcpttString>",
        );
        assert!(read_mcptt_info(encrypted.as_bytes()).is_err());
        let elsewhere = INFO.replace("urn:3gpp:ns:mcpttInfo:1.0", "urn:example:x");
        assert!(read_mcptt_info(elsewhere.as_bytes()).is_err());
    }

    #[test]
    fn reads_a_clients_complete_set_of_groups() {
        let publication = read_affiliation_publication(PUBLISH.as_bytes()).expect("reads");
        assert_eq!(publication.client.as_str(), "phone");
        assert_eq!(
            publication
                .groups
                .iter()
                .map(|g| g.as_str())
                .collect::<Vec<_>>(),
            ["sip:ops@police.example", "sip:ops@fire.example"]
        );
        assert_eq!(publication.p_id.as_deref(), Some("42"));
        for bad in [
            PUBLISH.replace("<tuple id=\"phone\">", "<tuple>"),
            PUBLISH.replace("urn:ietf:params:xml:ns:pidf", "urn:example:pidf"),
            PUBLISH.replace("sip:ops@fire.example", "not a group"),
            PUBLISH.replace("</presence>", "<tuple id=\"radio\"/></presence>"),
            "<!DOCTYPE x [<!ENTITY a \"b\">]><presence/>".to_string(),
        ] {
            assert!(
                read_affiliation_publication(bad.as_bytes()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_notify_lists_each_clients_groups_and_leaves_out_the_others() {
        let user = McServiceId::parse("sip:bob@police.example").expect("ID");
        let group = |g: &str| McServiceGroupId::parse(g).expect("ID");
        let xml = write_affiliation_status(
            &user,
            &[ClientAffiliations {
                client: ClientId::parse("phone").expect("ID"),
                groups: vec![
                    ClientGroupStatus {
                        group: group("sip:ops@police.example"),
                        status: AffiliationStatus::Affiliated,
                    },
                    ClientGroupStatus {
                        group: group("sip:ops@fire.example"),
                        status: AffiliationStatus::Affiliating,
                    },
                    ClientGroupStatus {
                        group: group("sip:patrol@police.example"),
                        status: AffiliationStatus::NotAffiliated,
                    },
                ],
                refused: vec![(
                    group("sip:k9@police.example"),
                    AffiliationCause::N2LimitReached,
                )],
                expires: Some("2026-12-02T08:00:00Z".into()),
            }],
            Some("42"),
        );
        assert!(
            xml.contains(
                r#"<mcpttPI10:affiliation group="sip:ops@police.example" status="affiliated" expires="2026-12-02T08:00:00Z"/>"#
            ),
            "{xml}"
        );
        assert!(xml.contains(r#"status="affiliating""#), "{xml}");
        assert!(!xml.contains("patrol"), "{xml}");
        assert!(xml.contains("<mcpttPI10:p-id>42</mcpttPI10:p-id>"), "{xml}");
        assert!(
            xml.contains(
                r#"<mcx:refused group="sip:k9@police.example" cause="n2-limit-reached"/>"#
            ),
            "{xml}"
        );
    }
}
