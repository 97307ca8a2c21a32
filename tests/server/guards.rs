//! The server's browser guards and connection limits against hostile clients: DNS
//! rebinding through a `127.`-prefixed name, `Origin: null`, short tokens, slow clients
//! and oversized bodies. After each hostile case the server must still be healthy.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::common::{self, Project, Served};
use super::{Frames, client, fanout_project, get, start, wait_status};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// `GET /api/health` answers 200 and a normal run completes: what every test checks after
/// its hostile requests.
fn assert_healthy(served: &Served, token: Option<&str>) {
    let mut request = client().get(format!("{}/api/health", served.url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    if token.is_none() {
        let run_id = start(served, json!({"workflow": "six", "args": {"topic": "ok"}}));
        wait_status(served, &run_id, "completed");
    }
}

/// `host:port` of the server, for raw TCP clients.
fn address(served: &Served) -> String {
    served.url.trim_start_matches("http://").to_string()
}

/// Starts `booflow serve <args…>` (which name their own `--bind`) and returns it with its
/// stderr as it arrives. A server bound to 0.0.0.0 is reached through 127.0.0.1.
fn serve_with(project: &Project, args: &[&str]) -> (Served, Arc<Mutex<String>>) {
    use std::io::BufRead as _;
    let mut child = project
        .booflow()
        .arg("serve")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start booflow serve");
    let stderr = Arc::new(Mutex::new(String::new()));
    let mut pipe = child.stderr.take().unwrap();
    let sink = stderr.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = match lines.next() {
        Some(Ok(line)) => line,
        _ => {
            let _ = child.wait();
            panic!("booflow serve printed nothing: {}", stderr.lock().unwrap());
        }
    };
    let url = line
        .rsplit_once("listening on ")
        .map(|(_, url)| url.trim().replace("0.0.0.0", "127.0.0.1"))
        .unwrap_or_else(|| panic!("unexpected first line from booflow serve: {line}"));
    std::thread::spawn(move || for _ in lines {});
    (Served { child, url }, stderr)
}

/// Reads what the server sends until it closes the connection; panics after `limit`.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let started = Instant::now();
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            // A reset is a close too.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "the server kept the connection open for {:?} ({e}); received {:?}",
                started.elapsed(),
                String::from_utf8_lossy(&received)
            ),
        }
    }
    (
        String::from_utf8_lossy(&received).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn a_host_name_that_only_starts_with_127_is_not_loopback() {
    let project = fanout_project();
    let served = project.serve(&[]);
    let port = served.url.rsplit(':').next().unwrap();
    for host in [
        format!("127.attacker.example:{port}"),
        "127.attacker.example".to_string(),
        format!("127.0.0.1.attacker.example:{port}"),
    ] {
        let response = client()
            .get(format!("{}/api/runs", served.url))
            .header("host", &host)
            .send()
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{host}");
        let reply: Value = response.json().unwrap();
        assert!(reply["error"].as_str().unwrap().contains(&host), "{reply}");
    }
    // Exact loopback names are still served.
    for host in [format!("localhost:{port}"), format!("127.0.0.2:{port}")] {
        let response = client()
            .get(format!("{}/api/health", served.url))
            .header("host", &host)
            .send()
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{host}");
    }
    assert_healthy(&served, None);
}

#[test]
fn origin_null_is_refused_on_the_api_and_the_websocket() {
    let project = fanout_project();
    let served = project.serve(&[]);
    // A sandboxed iframe posting a run: text/plain needs no preflight.
    let response = client()
        .post(format!("{}/api/runs", served.url))
        .header("origin", "null")
        .header("content-type", "text/plain")
        .body(r#"{"workflow":"six","args":{"topic":"pwned"}}"#)
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let reply: Value = response.json().unwrap();
    let error = reply["error"].as_str().unwrap();
    assert!(error.contains("Origin: null"), "{error}");
    let (_, runs) = get(&served, "/api/runs");
    assert_eq!(runs["runs"], json!([]), "no run was started");

    // The same page opening the frame stream.
    let url = format!("{}/api/ws", served.url.replacen("http", "ws", 1));
    let mut request = tungstenite::client::IntoClientRequest::into_client_request(url).unwrap();
    request
        .headers_mut()
        .insert("origin", "null".parse().unwrap());
    match tungstenite::connect(request) {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403);
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
                .into_owned();
            assert!(body.contains("Origin: null"), "{body}");
        }
        Err(e) => panic!("the upgrade failed otherwise: {e}"),
        Ok(_) => panic!("a WebSocket with Origin: null was accepted"),
    }
    // So is every other API route, /metrics included.
    for path in ["/api/health", "/api/workflows", "/metrics"] {
        let response = client()
            .get(format!("{}{path}", served.url))
            .header("origin", "null")
            .send()
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }
    // The pane's own origin is still served, WebSocket included.
    let response = client()
        .get(format!("{}/api/runs", served.url))
        .header("origin", served.url.as_str())
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    drop(Frames::connect(&served));
    assert_healthy(&served, None);
}

/// Runs `booflow serve <args…>` expecting it to refuse to start; returns its stderr. A
/// server that starts anyway is killed after 30 s and the test fails (rather than hangs).
fn refused_to_serve(project: &Project, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut child = project
        .booflow()
        .arg("serve")
        .args(args)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start booflow serve");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("booflow serve {args:?} {env:?} started; it should have refused");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success());
    common::stderr(&output)
}

#[test]
fn a_short_or_blank_token_is_refused_and_a_long_one_works_off_loopback() {
    let project = fanout_project();
    let stderr = refused_to_serve(&project, &["--bind", "0.0.0.0:0", "--token", "x"], &[]);
    assert!(
        stderr.contains("--token") && stderr.contains("BOOFLOW_TOKEN") && stderr.contains("16"),
        "{stderr}"
    );
    let stderr = refused_to_serve(
        &project,
        &["--bind", "0.0.0.0:0"],
        &[("BOOFLOW_TOKEN", "fifteen-bytes!!")],
    );
    assert!(stderr.contains("16"), "{stderr}");
    // All whitespace is no token, loopback or not.
    for bind in ["127.0.0.1:0", "0.0.0.0:0"] {
        let stderr = refused_to_serve(&project, &["--bind", bind, "--token", "   "], &[]);
        assert!(stderr.contains("whitespace"), "{bind}: {stderr}");
    }

    // Loopback allows a short token, with a warning.
    let (served, stderr) = serve_with(&project, &["--bind", "127.0.0.1:0", "--token", "short"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !stderr.lock().unwrap().contains("warning") {
        assert!(Instant::now() < deadline, "no warning for a short token");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        stderr.lock().unwrap().contains("16"),
        "{}",
        stderr.lock().unwrap()
    );
    assert_healthy(&served, Some("short"));
    drop(served);

    // A token of 16 bytes or more serves off loopback.
    let token = "0123456789abcdef-long-enough";
    let (served, stderr) = serve_with(&project, &["--bind", "0.0.0.0:0", "--token", token]);
    let response = client()
        .get(format!("{}/api/health", served.url))
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let wrong = client()
        .get(format!("{}/api/health", served.url))
        .bearer_auth("0123456789abcdef-long-enougH")
        .send()
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_healthy(&served, Some(token));
    assert!(
        !stderr.lock().unwrap().contains("warning"),
        "{}",
        stderr.lock().unwrap()
    );
}

#[test]
fn slow_clients_are_disconnected_and_the_websocket_is_not() {
    let mut project = fanout_project();
    project.set_env("BOOFLOW_HTTP_TIMEOUT_MS", "500");
    project.workflow("pause", "return await agent('pause [[delay:1500]]')");
    let served = project.serve(&[]);
    let limit = Duration::from_secs(10);

    // Half a request header, then nothing.
    let mut stream = TcpStream::connect(address(&served)).unwrap();
    stream
        .write_all(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half")
        .unwrap();
    let (_, took) = read_until_closed(&mut stream, limit);
    assert!(
        took >= Duration::from_millis(300),
        "closed too soon: {took:?}"
    );
    // A connection that never sends a byte.
    let mut silent = TcpStream::connect(address(&served)).unwrap();
    read_until_closed(&mut silent, limit);
    // Full headers and half the body: 408, then closed.
    let mut stream = TcpStream::connect(address(&served)).unwrap();
    stream
        .write_all(
            b"POST /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"workflow\":",
        )
        .unwrap();
    let (reply, _) = read_until_closed(&mut stream, limit);
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(reply.contains(r#"{"error":"#), "{reply}");

    // A WebSocket idle for several timeouts still gets the frames of a run that itself
    // lasts longer than the timeout.
    let mut ws = Frames::connect(&served);
    std::thread::sleep(Duration::from_millis(1500));
    let run_id = start(&served, json!({"workflow": "pause"}));
    let frames = ws.until("with the run's end", |f| {
        f["run_id"] == run_id.as_str() && f["run_status"] == "completed"
    });
    assert!(frames.iter().any(|f| f["type"] == "flow_run_started"));
    assert_healthy(&served, None);
}

#[test]
fn an_oversized_body_is_refused_with_413() {
    let project = fanout_project();
    let served = project.serve(&[]);
    // Announced by Content-Length: refused before a byte of the body is read.
    let mut stream = TcpStream::connect(address(&served)).unwrap();
    write!(
        stream,
        "POST /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        2 * 1024 * 1024
    )
    .unwrap();
    let (reply, _) = read_until_closed(&mut stream, Duration::from_secs(10));
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains("1 MiB"), "{reply}");
    // Sent by an ordinary client, just over the limit.
    let pad = "x".repeat(1024 * 1024);
    let response = client()
        .post(format!("{}/api/runs", served.url))
        .json(&json!({"workflow": "six", "args": {"topic": pad}}))
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let reply: Value = response.json().unwrap();
    assert!(
        reply["error"].as_str().unwrap().contains("1 MiB"),
        "{reply}"
    );
    // Just under it, the body is read and judged on its content.
    let pad = "x".repeat(1000 * 1000);
    let response = client()
        .post(format!("{}/api/runs", served.url))
        .json(&json!({"workflow": "six", "pad": pad}))
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let (_, runs) = get(&served, "/api/runs");
    assert_eq!(runs["runs"], json!([]), "no run was started");
    assert_healthy(&served, None);
}
