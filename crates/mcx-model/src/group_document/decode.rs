//! Reading a group document a client sends (XCAP PUT), safely: UTF-8 only, no DTD (so no
//! entity expansion), a bounded number of nodes, namespaces resolved (the sender picks
//! the prefixes), and what mcx does not model kept verbatim. roxmltree does the parsing;
//! it keeps each node's byte range, which is what keeping an element verbatim needs.

use std::collections::BTreeMap;

use roxmltree::Node;

use super::{STANDARD_PREFIXES, ns, service_enabler};
use crate::group::{ConfigurationError, GroupConfiguration, GroupMemberEntry, XmlExtensions};
use crate::ids::McService;
use crate::{McServiceGroupId, McServiceId, NonEmpty};

/// Nodes a document may have (elements, attributes' owners, texts).
const NODES: u32 = 100_000;
/// How deep elements may nest.
const DEPTH: usize = 32;

/// Why a document was refused, in the terms of RFC 4825 §11 (the `xcap-error` element).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentErrorKind {
    /// `<not-utf-8>`.
    NotUtf8,
    /// `<not-well-formed>`.
    NotWellFormed,
    /// `<schema-validation-error>`: not a group document.
    SchemaValidation,
    /// `<constraint-failure>`: a group document mcx cannot accept, with a phrase why.
    ConstraintFailure,
    /// `<uniqueness-failure>`: a member listed twice.
    UniquenessFailure,
}

impl DocumentErrorKind {
    /// The element name of RFC 4825 §11.
    pub fn element(self) -> &'static str {
        match self {
            DocumentErrorKind::NotUtf8 => "not-utf-8",
            DocumentErrorKind::NotWellFormed => "not-well-formed",
            DocumentErrorKind::SchemaValidation => "schema-validation-error",
            DocumentErrorKind::ConstraintFailure => "constraint-failure",
            DocumentErrorKind::UniquenessFailure => "uniqueness-failure",
        }
    }
}

/// A refused document: the kind and a sentence a human understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{phrase}")]
pub struct DocumentError {
    /// What RFC 4825 calls it.
    pub kind: DocumentErrorKind,
    /// Why.
    pub phrase: String,
}

fn refuse(kind: DocumentErrorKind, phrase: impl Into<String>) -> DocumentError {
    DocumentError {
        kind,
        phrase: phrase.into(),
    }
}

/// Reads a group document: its group ID (`list-service/@uri`) and configuration.
/// Elements mcx manages itself (`on-network-regrouped`) are ignored, as in the JSON API.
pub fn decode(body: &[u8]) -> Result<(McServiceGroupId, GroupConfiguration), DocumentError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        refuse(
            DocumentErrorKind::NotUtf8,
            format!("the document is not UTF-8 ({e})"),
        )
    })?;
    let document = crate::safe_xml::parse(text, NODES).map_err(|e| {
        let phrase = match e {
            roxmltree::Error::DtdDetected => {
                "a document type declaration (DTD) is not accepted, so neither are entity declarations".to_string()
            }
            roxmltree::Error::NodesLimitReached => {
                format!("the document has more than {NODES} nodes")
            }
            other => format!("the document is not well-formed XML: {other}"),
        };
        refuse(DocumentErrorKind::NotWellFormed, phrase)
    })?;
    let root = document.root_element();
    if depth(root) > DEPTH {
        return Err(refuse(
            DocumentErrorKind::ConstraintFailure,
            format!("elements nest more than {DEPTH} deep"),
        ));
    }
    if !is(root, ns::LIST_SERVICE, "group") {
        return Err(refuse(
            DocumentErrorKind::SchemaValidation,
            format!(
                "the root element must be <group> in {}, not <{}> in {}",
                ns::LIST_SERVICE,
                root.tag_name().name(),
                root.tag_name().namespace().unwrap_or("no namespace")
            ),
        ));
    }
    let services: Vec<Node> = elements(root)
        .filter(|n| is(*n, ns::LIST_SERVICE, "list-service"))
        .collect();
    let [service] = services.as_slice() else {
        return Err(refuse(
            DocumentErrorKind::SchemaValidation,
            "a group document has exactly one <list-service>",
        ));
    };
    let uri = service.attribute("uri").ok_or_else(|| {
        refuse(
            DocumentErrorKind::SchemaValidation,
            "<list-service> needs its uri attribute: the MC service group ID",
        )
    })?;
    let group = McServiceGroupId::parse(uri).map_err(|e| {
        refuse(
            DocumentErrorKind::ConstraintFailure,
            format!("list-service/@uri is not an MC service group ID: {e}"),
        )
    })?;
    let mut kept = Kept::new(text);
    let mut display_name = None;
    let mut list = Vec::new();
    let mut supported = Vec::new();
    let mut configuration_flags = Flags::default();
    for child in elements(*service) {
        let (namespace, name) = (child.tag_name().namespace(), child.tag_name().name());
        match (namespace, name) {
            (Some(ns::LIST_SERVICE), "display-name") => display_name = Some(text_of(child)),
            (Some(ns::LIST_SERVICE), "list") => {
                for entry in elements(child) {
                    if !is_entry(entry) {
                        return Err(refuse(
                            DocumentErrorKind::SchemaValidation,
                            format!(
                                "<list> holds <entry> elements, not <{}>",
                                entry.tag_name().name()
                            ),
                        ));
                    }
                    list.push(read_entry(entry, &mut kept)?);
                }
            }
            (Some(ns::XDM_EXTENSIONS), "supported-services") => {
                for offered in elements(child) {
                    let enabler = offered.attribute("enabler").unwrap_or_default();
                    let Some(service) = McService::ALL
                        .into_iter()
                        .find(|s| service_enabler(*s) == enabler)
                    else {
                        return Err(refuse(
                            DocumentErrorKind::ConstraintFailure,
                            format!(
                                "supported-services names '{enabler}', which is not an MC service mcx knows (MCPTT, MCVideo, MCData)"
                            ),
                        ));
                    };
                    if !supported.contains(&service) {
                        supported.push(service);
                    }
                }
            }
            (Some(ns::MCPTT_GROUP_INFO), "on-network-disabled") => {
                configuration_flags.disabled = flag(child)?;
            }
            (Some(ns::MCPTT_GROUP_INFO), "preconfigured-group-use-only") => {
                configuration_flags.preconfigured_only = flag(child)?;
            }
            (Some(ns::MCPTT_GROUP_INFO), "on-network-group-priority") => {
                configuration_flags.priority = Some(number(child, "on-network-group-priority")?);
            }
            // Managed by the MC service server, as in the JSON API.
            (Some(ns::MCPTT_GROUP_INFO), "on-network-regrouped") => {}
            _ => {
                let element = kept.element(child)?;
                kept.elements.push(element);
            }
        }
    }
    let display_name = display_name.ok_or_else(|| {
        refuse(
            DocumentErrorKind::SchemaValidation,
            "<list-service> needs a <display-name>",
        )
    })?;
    let supported_services = NonEmpty::new(supported).map_err(|_| {
        refuse(
            DocumentErrorKind::ConstraintFailure,
            "<oxe:supported-services> must name at least one MC service",
        )
    })?;
    let mut seen = std::collections::BTreeSet::new();
    if let Some(twice) = list.iter().find(|e| !seen.insert(&e.uri)) {
        return Err(refuse(
            DocumentErrorKind::UniquenessFailure,
            format!("'{}' is listed more than once", twice.uri),
        ));
    }
    let configuration = GroupConfiguration {
        display_name,
        list,
        on_network_disabled: configuration_flags.disabled,
        on_network_group_priority: configuration_flags.priority,
        supported_services,
        preconfigured_group_use_only: configuration_flags.preconfigured_only,
        permitted_locations: Vec::new(),
        on_network_regrouped: None,
        regrouped_into: None,
        xml_extensions: XmlExtensions {
            namespaces: kept.namespaces,
            elements: kept.elements,
        },
    };
    configuration.validate().map_err(|e| {
        refuse(
            DocumentErrorKind::ConstraintFailure,
            format!("{}: {}", e.field, e.reason),
        )
    })?;
    Ok((group, configuration))
}

#[derive(Default)]
struct Flags {
    disabled: bool,
    preconfigured_only: bool,
    priority: Option<u8>,
}

fn read_entry(entry: Node, kept: &mut Kept) -> Result<GroupMemberEntry, DocumentError> {
    let uri = entry.attribute("uri").ok_or_else(|| {
        refuse(
            DocumentErrorKind::SchemaValidation,
            "an <entry> needs its uri attribute: the member's MC service ID",
        )
    })?;
    let uri = McServiceId::parse(uri).map_err(|e| {
        refuse(
            DocumentErrorKind::ConstraintFailure,
            format!("entry/@uri '{uri}' is not an MC service ID: {e}"),
        )
    })?;
    let mut member = GroupMemberEntry::new(uri);
    for child in elements(entry) {
        match (child.tag_name().namespace(), child.tag_name().name()) {
            (Some(ns::RESOURCE_LISTS | ns::LIST_SERVICE), "display-name") => {
                member.display_name = Some(text_of(child));
            }
            (Some(ns::MCPTT_GROUP_INFO), "participant-type") => {
                member.participant_type = Some(text_of(child));
            }
            (Some(ns::MCPTT_GROUP_INFO), "user-priority") => {
                member.user_priority = Some(number(child, "user-priority")?);
            }
            _ => member.xml_extensions.push(kept.element(child)?),
        }
    }
    Ok(member)
}

/// Elements kept verbatim, and the namespace declarations they rely on.
struct Kept<'t> {
    text: &'t str,
    namespaces: BTreeMap<String, String>,
    elements: Vec<String>,
}

impl<'t> Kept<'t> {
    fn new(text: &'t str) -> Self {
        Self {
            text,
            namespaces: BTreeMap::new(),
            elements: Vec::new(),
        }
    }

    /// The element's text as the client wrote it; the prefixes in scope that it may use
    /// are remembered (declared again on the root when the document is served). An
    /// element relying on a default namespace other than list-service's gets it declared.
    fn element(&mut self, element: Node) -> Result<String, DocumentError> {
        for namespace in element.namespaces() {
            let Some(prefix) = namespace.name() else {
                continue;
            };
            let uri = namespace.uri();
            if prefix == "xml" || standard(prefix) == Some(uri) {
                continue;
            }
            if standard(prefix).is_some() {
                return Err(refuse(
                    DocumentErrorKind::ConstraintFailure,
                    format!(
                        "the prefix '{prefix}' is bound to {uri}, but TS 24.481 documents use it for {}",
                        standard(prefix).unwrap_or_default()
                    ),
                ));
            }
            if let Some(other) = self.namespaces.get(prefix)
                && other != uri
            {
                return Err(refuse(
                    DocumentErrorKind::ConstraintFailure,
                    format!(
                        "the prefix '{prefix}' is bound to both {other} and {uri}; use one prefix per namespace"
                    ),
                ));
            }
            self.namespaces.insert(prefix.to_string(), uri.to_string());
        }
        let mut written = self.text[element.range()].to_string();
        let default = element.lookup_namespace_uri(None);
        // roxmltree does not say where a namespace was declared; the start tag does.
        let declares_default = written
            .split('>')
            .next()
            .is_some_and(|start| start.contains("xmlns=") || start.contains("xmlns ="));
        if let Some(default) = default
            && default != ns::LIST_SERVICE
            && !declares_default
        {
            let name_end = written
                .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
                .unwrap_or(written.len());
            written.insert_str(
                name_end,
                &format!(" xmlns=\"{}\"", escape_attribute(default)),
            );
        }
        Ok(written)
    }
}

fn escape_attribute(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
}

/// The namespace TS 24.481 binds a standard prefix to.
fn standard(prefix: &str) -> Option<&'static str> {
    STANDARD_PREFIXES
        .iter()
        .find(|(name, _)| name.strip_prefix("xmlns:") == Some(prefix))
        .map(|(_, uri)| *uri)
}

fn is(node: Node, namespace: &str, name: &str) -> bool {
    node.tag_name().namespace() == Some(namespace) && node.tag_name().name() == name
}

fn is_entry(node: Node) -> bool {
    node.tag_name().name() == "entry"
        && matches!(
            node.tag_name().namespace(),
            Some(ns::LIST_SERVICE | ns::RESOURCE_LISTS)
        )
}

fn elements<'a, 'input>(node: Node<'a, 'input>) -> impl Iterator<Item = Node<'a, 'input>> {
    node.children().filter(Node::is_element)
}

fn depth(node: Node) -> usize {
    1 + elements(node).map(depth).max().unwrap_or(0)
}

fn text_of(node: Node) -> String {
    node.text().unwrap_or_default().trim().to_string()
}

fn flag(node: Node) -> Result<bool, DocumentError> {
    match text_of(node).as_str() {
        "" | "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(refuse(
            DocumentErrorKind::ConstraintFailure,
            format!("<{}> is a boolean, not '{other}'", node.tag_name().name()),
        )),
    }
}

fn number(node: Node, name: &str) -> Result<u8, DocumentError> {
    let text = text_of(node);
    text.parse().map_err(|_| {
        refuse(
            DocumentErrorKind::ConstraintFailure,
            format!("<{name}> is a number from 0 to 255, not '{text}'"),
        )
    })
}

/// Checks kept elements (from a JSON client as much as from XCAP) so that a served
/// document stays well-formed: each is one element, with only the prefixes of
/// `namespaces` and the standard ones, and no DTD.
pub(crate) fn check_kept(
    field: &str,
    elements: &[String],
    namespaces: &BTreeMap<String, String>,
) -> Result<(), ConfigurationError> {
    if elements.is_empty() {
        return Ok(());
    }
    for (prefix, uri) in namespaces {
        let valid_name = prefix
            .chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_')
            && prefix
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !valid_name || prefix.eq_ignore_ascii_case("xml") || prefix == "xmlns" {
            return Err(ConfigurationError::new(
                "xml-extensions.namespaces",
                format!("'{prefix}' is not a namespace prefix that can be declared"),
            ));
        }
        if standard(prefix).is_some_and(|s| s != uri) {
            return Err(ConfigurationError::new(
                "xml-extensions.namespaces",
                format!("the prefix '{prefix}' is TS 24.481's; it cannot be bound to {uri}"),
            ));
        }
    }
    let mut declarations = String::new();
    for (name, uri) in STANDARD_PREFIXES {
        declarations.push_str(&format!(" {name}=\"{}\"", escape_attribute(uri)));
    }
    for (prefix, uri) in namespaces {
        declarations.push_str(&format!(" xmlns:{prefix}=\"{}\"", escape_attribute(uri)));
    }
    for (i, element) in elements.iter().enumerate() {
        let wrapped = format!("<mcx-kept{declarations}>{element}</mcx-kept>");
        let parsed = crate::safe_xml::parse(&wrapped, NODES).map_err(|e| {
            ConfigurationError::new(
                format!("{field}[{i}]"),
                format!("it is not a well-formed XML element: {e}"),
            )
        })?;
        let root = parsed.root_element();
        let one_element = root.children().filter(Node::is_element).count() == 1
            && root
                .children()
                .all(|n| n.is_element() || n.text().is_some_and(|t| t.trim().is_empty()));
        if !one_element {
            return Err(ConfigurationError::new(
                format!("{field}[{i}]"),
                "it must be exactly one XML element",
            ));
        }
    }
    Ok(())
}

/// The media type of a group management operation (GMOP) request (IANA).
pub const GMOP_MEDIA_TYPE: &str = "application/vnd.3gpp.GMOP+xml";
/// The GMOP namespace.
pub const GMOP_NS: &str = "urn:3gpp:ns:mcpttGMOP:1.0";

/// A GMOP request this server carries out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GmopRequest {
    /// `<get-excluding-memberlist/>`: the group document without its member list.
    GetExcludingMemberList,
}

/// Reads a GMOP request: `<document xmlns="urn:3gpp:ns:mcpttGMOP:1.0"><request>
/// <get-excluding-memberlist/></request></document>`, as safely as a group document.
pub fn gmop_request(body: &[u8]) -> Result<GmopRequest, DocumentError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        refuse(
            DocumentErrorKind::NotUtf8,
            format!("the request is not UTF-8 ({e})"),
        )
    })?;
    let document = crate::safe_xml::parse(text, NODES).map_err(|e| {
        refuse(
            DocumentErrorKind::NotWellFormed,
            format!("the request is not well-formed XML (no DTD accepted): {e}"),
        )
    })?;
    let root = document.root_element();
    if !is(root, GMOP_NS, "document") {
        return Err(refuse(
            DocumentErrorKind::SchemaValidation,
            format!("a GMOP request is a <document> in {GMOP_NS}"),
        ));
    }
    let asked: Vec<Node> = elements(root)
        .filter(|n| is(*n, GMOP_NS, "request"))
        .flat_map(elements)
        .collect();
    match asked.as_slice() {
        [only] if is(*only, GMOP_NS, "get-excluding-memberlist") => {
            Ok(GmopRequest::GetExcludingMemberList)
        }
        [only] => Err(refuse(
            DocumentErrorKind::ConstraintFailure,
            format!(
                "the GMOP operation <{}> is not supported here; only <get-excluding-memberlist/> is",
                only.tag_name().name()
            ),
        )),
        _ => Err(refuse(
            DocumentErrorKind::SchemaValidation,
            "a GMOP request holds one <request> with one operation",
        )),
    }
}
