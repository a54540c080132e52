//! The one way mcx parses XML that comes from outside (group documents, GMOP requests,
//! SIP bodies): roxmltree with no DTD, so no entity declarations to expand (a "billion
//! laughs" document is refused), and a bound on the number of nodes.

use roxmltree::{Document, ParsingOptions};

/// Parses `text`, refusing a DTD and more than `nodes` nodes.
pub(crate) fn parse(text: &str, nodes: u32) -> Result<Document<'_>, roxmltree::Error> {
    let options = ParsingOptions {
        allow_dtd: false,
        nodes_limit: nodes,
        ..ParsingOptions::default()
    };
    Document::parse_with_options(text, options)
}
