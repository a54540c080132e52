//! XCAP's own error format (RFC 4825 §11): a document the server cannot accept is a 409
//! with an `application/xcap-error+xml` body naming why; other refusals (who may, which
//! version) keep their HTTP status and the problem+json body of the rest of the API.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mcx_model::group_document::{DocumentError, DocumentErrorKind};
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, Event};

use crate::api::problem::ApiError;

/// The media type of an XCAP error document.
pub(super) const XCAP_ERROR: &str = "application/xcap-error+xml";
/// The namespace of an XCAP error document.
const XCAP_ERROR_NS: &str = "urn:ietf:params:xml:ns:xcap-error";

/// A refusal at the XCAP door.
#[derive(Debug)]
pub(super) enum XcapError {
    /// A document (or part of one) the GMS cannot accept.
    Document(DocumentError),
    /// Anything else: authentication, authorisation, preconditions, storage.
    Api(ApiError),
}

impl From<DocumentError> for XcapError {
    fn from(error: DocumentError) -> Self {
        XcapError::Document(error)
    }
}

impl From<ApiError> for XcapError {
    fn from(error: ApiError) -> Self {
        // A configuration the GMS refuses, or a change it cannot make (a partner's copy,
        // a group that exists), is a 409 with an xcap-error body in XCAP's terms.
        if matches!(
            error.status(),
            StatusCode::BAD_REQUEST | StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY
        ) {
            return XcapError::Document(DocumentError {
                kind: DocumentErrorKind::ConstraintFailure,
                phrase: error.detail().to_string(),
            });
        }
        XcapError::Api(error)
    }
}

impl From<mcx_core::error::Error> for XcapError {
    fn from(error: mcx_core::error::Error) -> Self {
        ApiError::from(error).into()
    }
}

impl IntoResponse for XcapError {
    fn into_response(self) -> Response {
        match self {
            XcapError::Api(error) => error.into_response(),
            XcapError::Document(error) => (
                StatusCode::CONFLICT,
                [(header::CONTENT_TYPE, HeaderValue::from_static(XCAP_ERROR))],
                error_document(&error),
            )
                .into_response(),
        }
    }
}

/// `<xcap-error xmlns="urn:ietf:params:xml:ns:xcap-error"><constraint-failure phrase=…/>`.
pub(super) fn error_document(error: &DocumentError) -> String {
    let mut writer = Writer::new(Vec::new());
    // Writing into a Vec cannot fail.
    let _ = writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    let _ = writer
        .create_element("xcap-error")
        .with_attribute(("xmlns", XCAP_ERROR_NS))
        .write_inner_content(|w| {
            let element = w
                .create_element(error.kind.element())
                .with_attribute(("phrase", error.phrase.as_str()));
            if error.kind == DocumentErrorKind::UniquenessFailure {
                element.write_inner_content(|w| {
                    w.create_element("exists")
                        .with_attribute(("field", "group/list-service/list/entry/@uri"))
                        .write_empty()?;
                    Ok::<(), std::io::Error>(())
                })?;
            } else {
                element.write_empty()?;
            }
            Ok::<(), std::io::Error>(())
        });
    String::from_utf8(writer.into_inner()).unwrap_or_default()
}
