//! The metrics endpoint: a minimal HTTP/1.1 responder on tokio, for `GET /metrics`.
//!
//! Requests are parsed by `httparse`; each connection gets one response and is
//! closed. A client has [`CLIENT_TIMEOUT`] to send its request and take the answer,
//! a request head may not exceed [`MAX_REQUEST`] bytes, and at most
//! [`MAX_CONNECTIONS`] are served at once (more wait in the kernel's backlog).
//! Serving never fails the sidecar: errors end that connection only.

use super::exposition::Format;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
pub const MAX_REQUEST: usize = 16 * 1024;
pub const MAX_CONNECTIONS: usize = 8;

/// Renders the metrics in the given format.
pub type Render = Arc<dyn Fn(Format) -> String + Send + Sync>;

/// Serves `listener` forever.
pub async fn serve(listener: TcpListener, render: Render) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and the like: wait a little rather than spin.
                tracing::warn!("metrics endpoint: cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let render = render.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(CLIENT_TIMEOUT, handle(stream, &render)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!(%peer, "metrics endpoint: {e}"),
                Err(_) => tracing::debug!(%peer, "metrics endpoint: client too slow, disconnected"),
            }
        });
    }
}

async fn handle(mut stream: TcpStream, render: &Render) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let response = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        if let Some(response) = respond(&buf, render) {
            break response;
        }
        if buf.len() > MAX_REQUEST {
            break plain(
                431,
                "Request Header Fields Too Large",
                "request too large\n",
            );
        }
    };
    stream.write_all(&response).await?;
    stream.shutdown().await
}

/// The response to the request in `buf`; `None` while the head is incomplete.
pub fn respond(buf: &[u8], render: &Render) -> Option<Vec<u8>> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Partial) => return None,
        Ok(httparse::Status::Complete(_)) => {}
        Err(httparse::Error::TooManyHeaders) => {
            return Some(plain(
                431,
                "Request Header Fields Too Large",
                "too many headers\n",
            ))
        }
        Err(_) => return Some(plain(400, "Bad Request", "bad request\n")),
    }
    let method = req.method.unwrap_or("");
    let path = req.path.unwrap_or("");
    let path = path.split_once('?').map_or(path, |(p, _)| p);
    if method != "GET" && method != "HEAD" {
        return Some(with_headers(
            405,
            "Method Not Allowed",
            "text/plain; charset=utf-8",
            "Allow: GET, HEAD\r\n",
            b"only GET and HEAD\n",
            true,
        ));
    }
    let head_only = method == "HEAD";
    Some(match path {
        "/metrics" => {
            let accept = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("accept"))
                .and_then(|h| std::str::from_utf8(h.value).ok());
            let format = Format::negotiate(accept);
            let body = render(format);
            with_headers(
                200,
                "OK",
                format.content_type(),
                "",
                body.as_bytes(),
                !head_only,
            )
        }
        "/" => with_headers(
            200,
            "OK",
            "text/plain; charset=utf-8",
            "",
            b"iggy-warden sidecar: metrics at /metrics\n",
            !head_only,
        ),
        _ => plain(404, "Not Found", "not found: try /metrics\n"),
    })
}

fn plain(code: u16, reason: &str, body: &str) -> Vec<u8> {
    with_headers(
        code,
        reason,
        "text/plain; charset=utf-8",
        "",
        body.as_bytes(),
        true,
    )
}

fn with_headers(
    code: u16,
    reason: &str,
    content_type: &str,
    extra: &str,
    body: &[u8],
    send_body: bool,
) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n{extra}\r\n",
        body.len()
    )
    .into_bytes();
    if send_body {
        out.extend_from_slice(body);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render() -> Render {
        Arc::new(|f| match f {
            Format::OpenMetrics => "om\n# EOF\n".to_string(),
            Format::Text => "text\n".to_string(),
        })
    }

    fn text(r: Option<Vec<u8>>) -> String {
        String::from_utf8(r.expect("a complete request")).unwrap()
    }

    #[test]
    fn requests_get_the_right_answer() {
        let r = render();
        assert!(respond(b"GET /metrics HTTP/1.1\r\nHost: x\r\n", &r).is_none());
        let t = text(respond(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &r));
        assert!(t.starts_with("HTTP/1.1 200 OK\r\n"), "{t}");
        assert!(t.contains("version=0.0.4"), "{t}");
        assert!(t.ends_with("\r\n\r\ntext\n"), "{t}");
        let t = text(respond(
            b"GET /metrics?x=1 HTTP/1.1\r\nAccept: application/openmetrics-text;version=1.0.0\r\n\r\n",
            &r,
        ));
        assert!(
            t.contains("Content-Type: application/openmetrics-text"),
            "{t}"
        );
        assert!(t.ends_with("om\n# EOF\n"), "{t}");
        let t = text(respond(b"HEAD /metrics HTTP/1.1\r\n\r\n", &r));
        assert!(
            t.contains("Content-Length: 5\r\n") && t.ends_with("\r\n\r\n"),
            "{t}"
        );
        assert!(text(respond(b"GET /x HTTP/1.1\r\n\r\n", &r)).starts_with("HTTP/1.1 404"));
        assert!(text(respond(b"POST /metrics HTTP/1.1\r\n\r\n", &r)).starts_with("HTTP/1.1 405"));
        assert!(text(respond(b"\x00\x01garbage\r\n\r\n", &r)).starts_with("HTTP/1.1 400"));
        let many: String = (0..100).map(|i| format!("H{i}: v\r\n")).collect();
        let req = format!("GET /metrics HTTP/1.1\r\n{many}\r\n");
        assert!(text(respond(req.as_bytes(), &r)).starts_with("HTTP/1.1 431"));
    }

    #[tokio::test]
    async fn a_real_connection_is_answered_and_closed() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, render()));
        let mut conn = TcpStream::connect(addr).await.unwrap();
        conn.write_all(b"GET /metrics HTTP/1.0\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        assert!(answer.ends_with("text\n"), "{answer}");
        // A request head larger than allowed is answered 431 (one byte over the
        // limit, all of it read by the server, so the close is orderly).
        let mut conn = TcpStream::connect(addr).await.unwrap();
        let mut request = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        request.resize(MAX_REQUEST + 1, b'a');
        conn.write_all(&request).await.unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    }
}
