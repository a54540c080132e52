//! `mcx serve`'s logs (issue 18): `--log-format json` writes one JSON object per line,
//! and a `RUST_LOG` that is not a filter is refused with a sentence that says so.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

fn config(dir: &std::path::Path, port: u16) -> std::path::PathBuf {
    let text = format!(
        "[system]\ndomain = \"police.example\"\nname = \"Police\"\ndevelopment = true\n[server]\nlisten = \"127.0.0.1:{port}\"\ndata-dir = \"{}\"\n[[users]]\nmc-service-id = \"sip:ann@police.example\"\npassword = \"pw\"\n",
        dir.join("data").display()
    );
    let path = dir.join("mcx.toml");
    std::fs::write(&path, text).expect("configuration written");
    path
}

#[test]
fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::federation::free_ports(1);
    let mut server = Command::new(env!("CARGO_BIN_EXE_mcx"))
        .args(["serve", "--log-format", "json", "--config"])
        .arg(config(dir.path(), port))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mcx serve starts");
    let stderr = server.stderr.take().unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    // Lines until the server says it listens, then a request that is logged too.
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        let listening = line.contains(&port.to_string());
        seen.push(line);
        if listening {
            break;
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    seen.extend(lines.try_iter());
    assert!(!seen.is_empty(), "mcx serve logged nothing");
    for line in &seen {
        let object: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line}"));
        assert!(object["level"].is_string(), "a level: {line}");
        assert!(object["fields"].is_object(), "fields: {line}");
        assert!(object["timestamp"].is_string(), "a time: {line}");
    }
    assert!(
        seen.iter().any(|l| l.contains(&port.to_string())),
        "the listening address is logged: {seen:?}"
    );
}

#[test]
fn a_log_filter_that_does_not_parse_is_refused_with_a_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::federation::free_ports(1);
    let out = Command::new(env!("CARGO_BIN_EXE_mcx"))
        .args(["serve", "--config"])
        .arg(config(dir.path(), port))
        .env("RUST_LOG", "info,mcx=loud")
        .output()
        .expect("mcx serve runs");
    assert!(!out.status.success(), "refused");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("RUST_LOG='info,mcx=loud' is not a log filter"),
        "{stderr}"
    );
    // Nothing was started: no data directory was made.
    assert!(!dir.path().join("data").exists(), "nothing made");
}
