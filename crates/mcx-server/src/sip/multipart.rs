//! Splitting a `multipart/mixed` SIP body (RFC 2046 §5.1) into its parts. Written here
//! because no maintained crate splits MIME multipart bodies outside HTTP form uploads;
//! it does only that: find the boundary, cut the parts, read each part's Content-Type.

/// Parts a body may have.
const PARTS: usize = 8;

/// One part: its media type (lower case, without parameters) and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Part<'b> {
    pub(crate) media_type: String,
    pub(crate) body: &'b [u8],
}

/// The media type of a Content-Type value, lower case, without parameters.
pub(crate) fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// The answer to a body that is not multipart/mixed: 415, which RFC 3261 §21.4.13 asks
/// to name what is accepted (`Accept`); `what` says which parts are expected.
pub(crate) fn unsupported(content_type: &str, what: &str) -> super::Answer {
    let given = if content_type.trim().is_empty() {
        "no Content-Type".to_string()
    } else {
        media_type(content_type)
    };
    super::Answer::new(
        415,
        &format!("Unsupported Media Type: the body is {given}; {what}"),
    )
    .header("Accept", "multipart/mixed".to_string())
}

/// The parts of `body`, whose Content-Type is `content_type` (`multipart/mixed;
/// boundary=…`).
pub(crate) fn split<'b>(content_type: &str, body: &'b [u8]) -> Result<Vec<Part<'b>>, String> {
    if media_type(content_type) != "multipart/mixed" {
        return Err(format!("the body is {content_type}, not multipart/mixed"));
    }
    let boundary = content_type
        .split(';')
        .skip(1)
        .filter_map(|p| p.split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, value)| value.trim().trim_matches('"').to_string())
        .filter(|b| !b.is_empty() && b.len() <= 70)
        .ok_or("multipart/mixed needs a boundary parameter of 1 to 70 characters")?;
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut parts = Vec::new();
    let mut rest = body;
    // Everything before the first delimiter is preamble.
    let Some(start) = find(rest, delimiter) else {
        return Err(format!("the body has no boundary line '--{boundary}'"));
    };
    rest = &rest[start + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        let rest_of_line = line_end(rest).ok_or("a boundary line does not end")?;
        rest = &rest[rest_of_line..];
        let next = find(rest, delimiter)
            .ok_or_else(|| format!("the body does not close with '--{boundary}--'"))?;
        let mut part = &rest[..next];
        // The line break before a delimiter belongs to the delimiter.
        part = part
            .strip_suffix(b"\r\n")
            .or_else(|| part.strip_suffix(b"\n"))
            .unwrap_or(part);
        parts.push(read_part(part)?);
        if parts.len() > PARTS {
            return Err(format!("a body may have at most {PARTS} parts"));
        }
        rest = &rest[next + delimiter.len()..];
    }
}

fn read_part(part: &[u8]) -> Result<Part<'_>, String> {
    let (head, body) = match find(part, b"\r\n\r\n") {
        Some(at) => (&part[..at], &part[at + 4..]),
        None => match find(part, b"\n\n") {
            Some(at) => (&part[..at], &part[at + 2..]),
            None => return Err("a part has no blank line after its headers".into()),
        },
    };
    let head = std::str::from_utf8(head).map_err(|_| "a part's headers are not UTF-8")?;
    let media_type = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-type"))
        .map(|(_, value)| self::media_type(value))
        .ok_or("a part has no Content-Type")?;
    Ok(Part { media_type, body })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Where the line starting at 0 ends (after its CRLF or LF).
fn line_end(text: &[u8]) -> Option<usize> {
    text.iter().position(|b| *b == b'\n').map(|at| at + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BODY: &str = "--b1\r\nContent-Type: application/vnd.3gpp.mcptt-info+xml\r\n\r\n<a/>\r\n--b1\r\nContent-Type: application/pidf+xml; charset=utf-8\r\n\r\n<p/>\r\n--b1--\r\n";

    #[test]
    fn splits_the_two_parts_of_a_publish() {
        let parts = split("multipart/mixed;boundary=b1", BODY.as_bytes()).expect("splits");
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].media_type, "application/vnd.3gpp.mcptt-info+xml");
        assert_eq!(parts[0].body, b"<a/>");
        assert_eq!(parts[1].media_type, "application/pidf+xml");
        assert_eq!(parts[1].body, b"<p/>");
        let quoted = split("Multipart/Mixed; boundary=\"b1\"", BODY.as_bytes()).expect("splits");
        assert_eq!(quoted, parts);
    }

    #[test]
    fn a_broken_body_is_refused() {
        for (content_type, body) in [
            ("multipart/mixed", BODY),
            ("multipart/mixed;boundary=zz", BODY),
            ("application/pidf+xml", BODY),
            (
                "multipart/mixed;boundary=b1",
                "--b1\r\nContent-Type: a/b\r\n\r\n<a/>",
            ),
            ("multipart/mixed;boundary=b1", "--b1\r\n\r\n<a/>\r\n--b1--"),
        ] {
            assert!(split(content_type, body.as_bytes()).is_err(), "{body}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(body in prop::collection::vec(any::<u8>(), 0..300), boundary in "[a-z0-9]{0,8}") {
            let _ = split(&format!("multipart/mixed;boundary={boundary}"), &body);
        }
    }
}
