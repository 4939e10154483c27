//! Request bodies answered without being read.
//!
//! A connection serves its next request only once the last one's body has
//! been read. A request answered before its body was read (an unknown spec
//! in its path, an `Accept` nothing matches, a body over the bound read
//! only up to it) would otherwise have its
//! connection closed after the answer, unannounced: a client that sent its
//! next request on it meanwhile finds the connection reset and cannot tell
//! whether that request was served. So a short unread body is read and
//! dropped before the answer goes out, and the connection stays open;
//! otherwise (a longer body, or one that does not arrive within
//! [`DRAIN_WAIT`]) the answer says `Connection: close`, and the client
//! knows to send its next request elsewhere.

use std::pin::pin;
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use http_body_util::BodyExt;

use crate::api::ended_early;
use crate::body_budget::FREE_BYTES_PER_BODY;
use crate::negotiate::negotiated_or_v1;
use crate::problem::Problem;

/// The longest unread body read to keep its connection open: the bytes
/// any body may take without waiting for the shared budget.
pub const DRAINED_BYTES: usize = FREE_BYTES_PER_BODY;

/// How long an unread body may take to arrive before the answer goes
/// without it. A client sends its body right behind its head, so a body
/// that is whole at all is whole long before; one that is not is left to
/// the closing connection rather than holding its answer back.
pub const DRAIN_WAIT: Duration = Duration::from_secs(1);

/// `response`, once `body`, which the answer did not read, is read and
/// dropped; or with `Connection: close` when that would mean reading over
/// [`DRAINED_BYTES`], waiting over [`DRAIN_WAIT`], or inviting a body the
/// client waits to be asked for (`Expect: 100-continue`). A client that
/// went away before its body ended gets [`Problem::client_gone`] instead
/// (counted as `499`), as it would had the handler read the body itself.
pub async fn answer_after(headers: &HeaderMap, body: Body, response: Response) -> Response {
    if body.is_end_stream() {
        return response;
    }
    if waits_for_continue(headers) {
        return closing(response);
    }
    match tokio::time::timeout(DRAIN_WAIT, drained(body)).await {
        Ok(Drained::Whole) => response,
        Ok(Drained::ClientGone) => {
            closing(Problem::client_gone().respond(negotiated_or_v1(headers)))
        }
        Ok(Drained::Stopped) | Err(_) => closing(response),
    }
}

/// How reading a body to drop it ended.
#[derive(Debug, PartialEq, Eq)]
enum Drained {
    /// The body ended within [`DRAINED_BYTES`].
    Whole,
    /// It is longer, or its read failed otherwise.
    Stopped,
    /// The connection ended before the body did.
    ClientGone,
}

/// `response` saying `Connection: close`: its request's body is not read
/// whole, so the connection serves no further request.
pub fn closing(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Whether the client waits for `100 Continue` before sending its body.
pub fn waits_for_continue(headers: &HeaderMap) -> bool {
    headers
        .get(header::EXPECT)
        .is_some_and(|expect| expect.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// Reads `body` to its end unless it is, or declares itself, longer than
/// [`DRAINED_BYTES`].
async fn drained(body: Body) -> Drained {
    let limit = u64::try_from(DRAINED_BYTES).unwrap_or(u64::MAX);
    if body.size_hint().lower() > limit {
        return Drained::Stopped;
    }
    let mut body = pin!(body);
    let mut length = 0;
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) if ended_early(&e) => return Drained::ClientGone,
            Err(_) => return Drained::Stopped,
        };
        length += frame.data_ref().map_or(0, |data| data.len());
        if length > DRAINED_BYTES {
            return Drained::Stopped;
        }
    }
    Drained::Whole
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;

    use super::*;

    fn closes(response: &Response) -> bool {
        response.headers().get(header::CONNECTION) == Some(&HeaderValue::from_static("close"))
    }

    async fn answered(headers: &HeaderMap, body: Body) -> Response {
        answer_after(headers, body, StatusCode::NOT_FOUND.into_response()).await
    }

    #[tokio::test]
    async fn a_short_body_is_read_and_the_connection_kept() {
        let headers = HeaderMap::new();
        assert!(!closes(&answered(&headers, Body::empty()).await));
        assert!(!closes(
            &answered(&headers, Body::from(vec![b'x'; DRAINED_BYTES])).await
        ));
    }

    #[tokio::test]
    async fn a_longer_body_closes_the_connection() {
        let body = Body::from(vec![b'x'; DRAINED_BYTES + 1]);
        assert!(closes(&answered(&HeaderMap::new(), body).await));
    }

    #[tokio::test]
    async fn a_streamed_body_is_read_up_to_the_bound() {
        let streamed = |frames: usize| {
            let frame = || Ok::<_, std::io::Error>(vec![b'x'; DRAINED_BYTES / 4]);
            Body::from_stream(futures::stream::iter(
                std::iter::repeat_with(frame).take(frames),
            ))
        };
        let headers = HeaderMap::new();
        assert!(!closes(&answered(&headers, streamed(4)).await));
        assert!(closes(&answered(&headers, streamed(5)).await));
    }

    #[tokio::test]
    async fn a_body_cut_off_by_its_client_is_answered_as_gone() {
        let cut_off = Body::from_stream(futures::stream::iter([
            Ok(vec![b'x'; 10]),
            Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof)),
        ]));
        let answer = answered(&HeaderMap::new(), cut_off).await;
        assert_eq!(answer.status().as_str(), crate::metrics::CLIENT_CLOSED);
        let failed = Body::from_stream(futures::stream::iter([Err::<Vec<u8>, _>(
            std::io::Error::other("not an end"),
        )]));
        let answer = answered(&HeaderMap::new(), failed).await;
        assert_eq!(answer.status(), StatusCode::NOT_FOUND);
        assert!(closes(&answer));
    }

    #[tokio::test]
    async fn a_body_waiting_for_continue_is_not_asked_for() {
        let mut headers = HeaderMap::new();
        headers.insert(header::EXPECT, HeaderValue::from_static("100-Continue"));
        assert!(closes(&answered(&headers, Body::from("{}")).await));
    }
}
