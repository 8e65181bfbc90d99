//! The bearer-token check in front of the API's routes.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use murr_api::auth::{AuthHandle, Scope};

use crate::ApiError;

/// Lets the request through when its token has `scope` (or no tokens are configured); answers
/// 401 (with `WWW-Authenticate: Bearer`) or 403 otherwise, before the body is read.
pub(crate) async fn require(
    State((auth, scope)): State<(AuthHandle, Scope)>,
    request: Request,
    next: Next,
) -> Response {
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    match auth.check(header, scope) {
        Ok(_) => next.run(request).await,
        Err(denied) => {
            let status = if denied.is_forbidden() {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::UNAUTHORIZED
            };
            tracing::debug!(
                method = %request.method(),
                path = %request.uri().path(),
                status = status.as_u16(),
                "refused: {denied}"
            );
            let mut response = ApiError::new(status, denied.to_string()).into_response();
            if status == StatusCode::UNAUTHORIZED {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"murr\""),
                );
            }
            response
        }
    }
}
