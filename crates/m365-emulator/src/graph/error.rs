//! Microsoft Graph error responses
//! (<https://learn.microsoft.com/graph/errors>): `{"error":{"code","message","innerError":
//! {"date","request-id","client-request-id"}}}`. Clients branch on the status and `code`; the
//! messages are close to Microsoft's where known, not guaranteed identical.

use std::time::Duration;

use serde_json::{Value, json};

/// One Graph error as the emulator decides it; rendered by the HTTP layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GraphError {
    pub(crate) status: u16,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    /// Sent as `Retry-After` (whole seconds) with 429 and 503.
    pub(crate) retry_after: Option<Duration>,
}

impl GraphError {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        GraphError { status, code, message: message.into(), retry_after: None }
    }

    /// 401 `InvalidAuthenticationToken` (missing, malformed, expired or foreign token).
    pub(crate) fn invalid_token(message: impl Into<String>) -> Self {
        Self::new(401, "InvalidAuthenticationToken", message)
    }

    /// 403 `Authorization_RequestDenied`: the token lacks the directory permission.
    pub(crate) fn request_denied() -> Self {
        Self::new(
            403,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        )
    }

    /// 403 `Forbidden`, as the presence service words a missing permission or a write to
    /// another user's presence.
    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    /// 400 `BadRequest` (the presence service and OData validation).
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 400 `Request_BadRequest` (directory queries).
    pub(crate) fn directory_bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "Request_BadRequest", message)
    }

    /// 400 `Request_UnsupportedQuery` (directory queries).
    pub(crate) fn unsupported_query(message: impl Into<String>) -> Self {
        Self::new(400, "Request_UnsupportedQuery", message)
    }

    /// `$search` on directory objects without `ConsistencyLevel: eventual`.
    pub(crate) fn search_needs_consistency_level() -> Self {
        Self::unsupported_query(
            "Request with $search query parameter only works through MSGraph with a special \
             request header: 'ConsistencyLevel: eventual'",
        )
    }

    /// 400 `Directory_ExpiredPageToken`: a `$skiptoken` the directory does not recognise.
    pub(crate) fn expired_page_token() -> Self {
        Self::new(
            400,
            "Directory_ExpiredPageToken",
            "The specified page token value has expired and can no longer be included in your \
             request.",
        )
    }

    /// 404 `Request_ResourceNotFound`: no such user.
    pub(crate) fn user_not_found(id: &str) -> Self {
        Self::new(
            404,
            "Request_ResourceNotFound",
            format!(
                "Resource '{id}' does not exist or one of its queried reference-property objects \
                 are not present."
            ),
        )
    }

    /// 404 `NotFound` from the presence service.
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "NotFound", message)
    }

    /// 404 `ImageNotFound`: the user has no photo (of that size).
    pub(crate) fn image_not_found() -> Self {
        Self::new(
            404,
            "ImageNotFound",
            "Exception of type 'Microsoft.Fast.Profile.Core.Exception.ImageNotFoundException' \
             was thrown.",
        )
    }

    /// 400 for a path Graph does not have.
    pub(crate) fn unknown_segment(segment: &str) -> Self {
        Self::bad_request(format!("Resource not found for the segment '{segment}'."))
    }

    /// 405 for a method the resource does not support.
    pub(crate) fn method_not_allowed() -> Self {
        Self::new(
            405,
            "Request_BadRequest",
            "Specified HTTP method is not allowed for the request target.",
        )
    }

    /// 429 `TooManyRequests` with `Retry-After`.
    pub(crate) fn too_many_requests(retry_after: Duration) -> Self {
        GraphError {
            retry_after: Some(retry_after),
            ..Self::new(429, "TooManyRequests", "Please retry again later.")
        }
    }

    /// 503 `serviceNotAvailable` with `Retry-After`.
    pub(crate) fn unavailable(retry_after: Duration) -> Self {
        GraphError {
            retry_after: Some(retry_after),
            ..Self::new(
                503,
                "serviceNotAvailable",
                "The service is temporarily unavailable. Please retry after the delay in the \
                 Retry-After header.",
            )
        }
    }

    /// The JSON body; `date` is `YYYY-MM-DDThh:mm:ss` (UTC, no zone, as Graph writes it).
    pub(crate) fn body(&self, date: &str, request_id: &str, client_request_id: &str) -> Value {
        json!({"error": {
            "code": self.code,
            "message": self.message,
            "innerError": {
                "date": date,
                "request-id": request_id,
                "client-request-id": client_request_id,
            },
        }})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_shape() {
        let e = GraphError::request_denied();
        let body = e.body("2026-11-26T08:14:02", "r", "c");
        assert_eq!(body["error"]["code"], "Authorization_RequestDenied");
        assert_eq!(body["error"]["innerError"]["date"], "2026-11-26T08:14:02");
        assert_eq!(body["error"]["innerError"]["request-id"], "r");
        assert_eq!(body["error"]["innerError"]["client-request-id"], "c");
        let t = GraphError::too_many_requests(Duration::from_secs(3));
        assert_eq!((t.status, t.retry_after), (429, Some(Duration::from_secs(3))));
    }
}
