//! The group document of TS 24.481 §7.2 (OMA XDM list-service usage with the 3GPP group
//! information extensions), as XCAP serves it: the XML encoding of a
//! [`GroupConfiguration`]. Element names and namespaces are checked against the public
//! text summarised in `docs/stage3.md`, which also names what is not yet encoded.

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

mod decode;
mod selector;
pub(crate) use decode::check_kept;
pub use decode::{
    DocumentError, DocumentErrorKind, GMOP_MEDIA_TYPE, GMOP_NS, GmopRequest, decode, gmop_request,
};
pub use selector::{Selected, SelectorError, select};

use crate::McServiceGroupId;
use crate::group::GroupConfiguration;
use crate::ids::McService;

/// The XCAP application usage of group documents.
pub const AUID: &str = "org.openmobilealliance.groups";
/// The media type of a group document (IANA).
pub const MEDIA_TYPE: &str = "application/vnd.oma.poc.groups+xml";

/// The namespaces of a group document, with the prefixes TS 24.481 uses for them.
pub mod ns {
    /// The default namespace: OMA PoC list service.
    pub const LIST_SERVICE: &str = "urn:oma:xml:poc:list-service";
    /// `rl`: resource lists (RFC 4826).
    pub const RESOURCE_LISTS: &str = "urn:ietf:params:xml:ns:resource-lists";
    /// `cp`: common policy (RFC 4745).
    pub const COMMON_POLICY: &str = "urn:ietf:params:xml:ns:common-policy";
    /// `ocp`: OMA common policy.
    pub const OMA_COMMON_POLICY: &str = "urn:oma:xml:xdm:common-policy";
    /// `oxe`: OMA XDM extensions.
    pub const XDM_EXTENSIONS: &str = "urn:oma:xml:xdm:extensions";
    /// `mcpttgi`: the 3GPP group information extensions (MCPTT, MCVideo and MCData).
    pub const MCPTT_GROUP_INFO: &str = "urn:3gpp:ns:mcpttGroupInfo:1.0";
}

/// The IMS communication service identifier naming an MC service in
/// `<oxe:supported-services>`.
pub fn service_enabler(service: McService) -> &'static str {
    match service {
        McService::Mcptt => "urn:urn-7:3gpp-service.ims.icsi.mcptt",
        McService::Mcvideo => "urn:urn-7:3gpp-service.ims.icsi.mcvideo",
        McService::Mcdata => "urn:urn-7:3gpp-service.ims.icsi.mcdata",
    }
}

/// Characters percent-encoded in a document selector's group ID (RFC 3986 path segment).
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The document selector of a group's document, relative to the XCAP root:
/// `org.openmobilealliance.groups/global/byGroupID/<percent-encoded group ID>`.
pub fn document_selector(group: &McServiceGroupId) -> String {
    format!(
        "{AUID}/global/byGroupID/{}",
        percent_encoding::utf8_percent_encode(group.as_str(), SEGMENT)
    )
}

/// The group a document selector (relative to the XCAP root, or with the root in front)
/// names: `…org.openmobilealliance.groups/global/byGroupID/<percent-encoded ID>`, or the
/// older `byGroup/`.
pub fn group_of_selector(selector: &str) -> Option<McServiceGroupId> {
    let at = selector.find(AUID)?;
    let rest = selector[at + AUID.len()..].strip_prefix("/global/")?;
    let encoded = rest
        .strip_prefix("byGroupID/")
        .or_else(|| rest.strip_prefix("byGroup/"))?;
    let id = percent_encoding::percent_decode_str(encoded)
        .decode_utf8()
        .ok()?;
    McServiceGroupId::parse(&id).ok()
}

/// An xcap-diff document for several documents at once: each with the entity tag it had
/// and has (`None` before: new to the subscriber; `None` now: gone or no longer readable).
pub fn xcap_diff_documents(
    xcap_root: &str,
    documents: &[(McServiceGroupId, Option<String>, Option<String>)],
) -> String {
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    // Writing into a Vec cannot fail.
    let _ = writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    let _ = writer
        .create_element("xcap-diff")
        .with_attributes([
            ("xmlns", "urn:ietf:params:xml:ns:xcap-diff"),
            ("xcap-root", xcap_root),
        ])
        .write_inner_content(|w| {
            for (group, previous, new) in documents {
                let selector = document_selector(group);
                let mut attributes = vec![("sel", selector.as_str())];
                if let Some(previous) = previous {
                    attributes.push(("previous-etag", previous.as_str()));
                }
                if let Some(new) = new {
                    attributes.push(("new-etag", new.as_str()));
                }
                w.create_element("document")
                    .with_attributes(attributes)
                    .write_empty()?;
            }
            Ok::<(), std::io::Error>(())
        });
    String::from_utf8(writer.into_inner()).unwrap_or_default()
}

/// The xcap-diff document (RFC 5874) telling a subscriber that a group's document
/// changed from `previous` to `new` entity tag (`new` absent: it was deleted), as a SIP
/// NOTIFY with `Event: xcap-diff` carries it (TS 24.481 §6.3.13). `xcap_root` is the
/// absolute URI of the XCAP root.
pub fn xcap_diff(
    xcap_root: &str,
    group: &McServiceGroupId,
    previous: Option<&str>,
    new: Option<&str>,
) -> String {
    xcap_diff_documents(
        xcap_root,
        &[(
            group.clone(),
            previous.map(str::to_string),
            new.map(str::to_string),
        )],
    )
}

/// Encodes the group document of `group` (UTF-8, indented).
pub fn encode(group: &McServiceGroupId, configuration: &GroupConfiguration) -> String {
    encode_with(group, configuration, true)
}

/// The document without `<list>`: the retrieval excluding the member list (GMOP
/// `get-excluding-memberlist`, TS 24.481 §6.3.16).
pub fn encode_without_members(
    group: &McServiceGroupId,
    configuration: &GroupConfiguration,
) -> String {
    encode_with(group, configuration, false)
}

fn encode_with(
    group: &McServiceGroupId,
    configuration: &GroupConfiguration,
    members: bool,
) -> String {
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    // Writing into a Vec cannot fail.
    let _ = write_document(&mut writer, group, configuration, members);
    String::from_utf8(writer.into_inner()).unwrap_or_default()
}

fn write_document(
    writer: &mut Writer<Vec<u8>>,
    group: &McServiceGroupId,
    c: &GroupConfiguration,
    members: bool,
) -> std::io::Result<()> {
    writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let kept: Vec<(String, &str)> = c
        .xml_extensions
        .namespaces
        .iter()
        .map(|(prefix, uri)| (format!("xmlns:{prefix}"), uri.as_str()))
        .collect();
    writer
        .create_element("group")
        .with_attributes(STANDARD_PREFIXES.iter().map(|(name, uri)| (*name, *uri)))
        .with_attributes(kept.iter().map(|(name, uri)| (name.as_str(), *uri)))
        .write_inner_content(|w| {
            w.create_element("list-service")
                .with_attribute(("uri", group.as_str()))
                .write_inner_content(|w| write_list_service(w, c, members))?;
            Ok(())
        })?;
    Ok(())
}

/// The namespace declarations of every document mcx writes, as TS 24.481 names them.
pub(crate) const STANDARD_PREFIXES: [(&str, &str); 6] = [
    ("xmlns", ns::LIST_SERVICE),
    ("xmlns:rl", ns::RESOURCE_LISTS),
    ("xmlns:cp", ns::COMMON_POLICY),
    ("xmlns:ocp", ns::OMA_COMMON_POLICY),
    ("xmlns:oxe", ns::XDM_EXTENSIONS),
    ("xmlns:mcpttgi", ns::MCPTT_GROUP_INFO),
];

/// Writes kept elements as they came (each was checked well-formed when stored), each
/// on its own line at `depth` (written beside the writer, so that it indents the tags
/// around them as it would any element's).
fn kept(w: &mut Writer<Vec<u8>>, elements: &[String], depth: usize) -> std::io::Result<()> {
    for element in elements {
        let out = w.get_mut();
        out.push(b'\n');
        out.extend(std::iter::repeat_n(b' ', depth * 2));
        out.extend_from_slice(element.as_bytes());
    }
    Ok(())
}

fn text(w: &mut Writer<Vec<u8>>, name: &str, value: &str) -> std::io::Result<()> {
    w.create_element(name)
        .write_text_content(BytesText::new(value))?;
    Ok(())
}

fn write_list_service(
    w: &mut Writer<Vec<u8>>,
    c: &GroupConfiguration,
    members: bool,
) -> std::io::Result<()> {
    text(w, "display-name", &c.display_name)?;
    if members {
        write_list(w, c)?;
    }
    write_group_elements(w, c)
}

fn write_list(w: &mut Writer<Vec<u8>>, c: &GroupConfiguration) -> std::io::Result<()> {
    w.create_element("list").write_inner_content(|w| {
        for entry in &c.list {
            let element = w
                .create_element("entry")
                .with_attribute(("uri", entry.uri.as_str()));
            let bare = entry.display_name.is_none()
                && entry.participant_type.is_none()
                && entry.user_priority.is_none()
                && entry.xml_extensions.is_empty();
            if bare {
                element.write_empty()?;
                continue;
            }
            element.write_inner_content(|w| {
                if let Some(name) = &entry.display_name {
                    text(w, "rl:display-name", name)?;
                }
                if let Some(kind) = &entry.participant_type {
                    text(w, "mcpttgi:participant-type", kind)?;
                }
                if let Some(priority) = entry.user_priority {
                    text(w, "mcpttgi:user-priority", &priority.to_string())?;
                }
                kept(w, &entry.xml_extensions, 4)
            })?;
        }
        Ok(())
    })?;
    Ok(())
}

fn write_group_elements(w: &mut Writer<Vec<u8>>, c: &GroupConfiguration) -> std::io::Result<()> {
    w.create_element("oxe:supported-services")
        .write_inner_content(|w| {
            for service in c.supported_services.iter() {
                w.create_element("oxe:service")
                    .with_attribute(("enabler", service_enabler(*service)))
                    .write_empty()?;
            }
            Ok(())
        })?;
    if c.on_network_disabled {
        w.create_element("mcpttgi:on-network-disabled")
            .write_empty()?;
    }
    if let Some(priority) = c.on_network_group_priority {
        text(
            w,
            "mcpttgi:on-network-group-priority",
            &priority.to_string(),
        )?;
    }
    if c.preconfigured_group_use_only {
        text(w, "mcpttgi:preconfigured-group-use-only", "true")?;
    }
    if let Some(regrouped) = &c.on_network_regrouped {
        w.create_element("mcpttgi:on-network-regrouped")
            .write_inner_content(|w| {
                w.create_element("mcpttgi:constituent-MCPTT-group-IDs")
                    .write_inner_content(|w| {
                        for id in &regrouped.constituent_group_ids {
                            text(w, "mcpttgi:constituent-MCPTT-group-ID", id.as_str())?;
                        }
                        Ok(())
                    })?;
                Ok(())
            })?;
    }
    kept(w, &c.xml_extensions.elements, 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::GroupMemberEntry;
    use crate::{McServiceId, NonEmpty};

    #[test]
    fn escapes_what_a_name_may_hold() {
        let group = McServiceGroupId::parse("sip:ops@police.example").expect("a group ID");
        let configuration = GroupConfiguration {
            display_name: "Ops & <Patrol> \"A\"".into(),
            list: vec![GroupMemberEntry {
                uri: McServiceId::parse("sip:alice@police.example").expect("a user ID"),
                display_name: Some("Alice <dispatch>".into()),
                user_priority: Some(3),
                participant_type: None,
                xml_extensions: Vec::new(),
            }],
            on_network_disabled: true,
            on_network_group_priority: Some(7),
            supported_services: NonEmpty::try_from(vec![McService::Mcptt]).expect("one"),
            preconfigured_group_use_only: false,
            permitted_locations: Vec::new(),
            on_network_regrouped: None,
            regrouped_into: None,
            xml_extensions: Default::default(),
        };
        let xml = encode(&group, &configuration);
        assert!(
            xml.contains("<display-name>Ops &amp; &lt;Patrol&gt; &quot;A&quot;</display-name>"),
            "{xml}"
        );
        assert!(
            xml.contains("<rl:display-name>Alice &lt;dispatch&gt;</rl:display-name>"),
            "{xml}"
        );
        assert!(
            xml.contains("<mcpttgi:user-priority>3</mcpttgi:user-priority>"),
            "{xml}"
        );
        assert!(xml.contains("<mcpttgi:on-network-disabled/>"), "{xml}");
    }
}

#[cfg(test)]
mod round_trip;
