//! A fake Hugging Face hub on 127.0.0.1 for the `lmwb models pull` tests: the listing API
//! (`/api/models/{repo}[/revision/{rev}]`), `/{repo}/resolve/{rev}/{file}` with the headers
//! hf-hub reads (`x-repo-commit`, `etag`, `x-linked-etag`, `x-linked-size`, a 302 to a CDN
//! route for LFS files, as the real hub does), Range requests (206 + `content-range`), gated
//! repos (a 401 without the right bearer token), and faults on demand: a connection cut
//! halfway, a corrupted or truncated body. It records every request it answers.
//!
//! Include it with `#[path = "common/fake_hub.rs"] mod fake_hub;`.
#![allow(dead_code)]

use sha2::Digest;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// One file of a repo.
#[derive(Clone)]
pub struct HubFile {
    pub path: String,
    pub bytes: Vec<u8>,
    /// Stored with LFS: etag = sha256, served through a redirect to `/cdn/<sha256>`.
    pub lfs: bool,
}

impl HubFile {
    pub fn lfs(path: &str, bytes: Vec<u8>) -> HubFile {
        HubFile {
            path: path.into(),
            bytes,
            lfs: true,
        }
    }

    pub fn git(path: &str, bytes: Vec<u8>) -> HubFile {
        HubFile {
            path: path.into(),
            bytes,
            lfs: false,
        }
    }

    pub fn sha256(&self) -> String {
        hex(&sha2::Sha256::digest(&self.bytes))
    }

    /// What the hub gives as the etag: the sha256 for LFS files, the git blob sha1 otherwise.
    pub fn etag(&self) -> String {
        if self.lfs {
            self.sha256()
        } else {
            let mut h = sha1::Sha1::new();
            h.update(format!("blob {}\0", self.bytes.len()).as_bytes());
            h.update(&self.bytes);
            hex(&h.finalize())
        }
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// One repo at one commit.
#[derive(Clone)]
pub struct HubRepo {
    pub id: String,
    pub commit: String,
    pub files: Vec<HubFile>,
    /// Gated: only a request with `Authorization: Bearer <token>` gets in.
    pub token: Option<String>,
}

impl HubRepo {
    pub fn new(id: &str, files: Vec<HubFile>) -> HubRepo {
        let commit = hex(&sha1::Sha1::digest(id.as_bytes()));
        HubRepo {
            id: id.into(),
            commit,
            files,
            token: None,
        }
    }
}

/// How the file bodies are served.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fault {
    None,
    /// The next body request sends its headers and half the bytes, then closes the socket.
    CutNext,
    /// Every body has one byte changed (same length).
    Corrupt,
    /// Every body stops at half the file (with a matching Content-Length).
    Truncate,
}

/// A request the hub answered.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub range: Option<String>,
    pub auth: Option<String>,
}

impl Seen {
    /// A request for file bytes (not hf-hub's one-byte metadata probe).
    pub fn is_body(&self) -> bool {
        self.range.as_deref() != Some("bytes=0-0")
    }
}

struct State {
    repos: Vec<HubRepo>,
    fault: Fault,
    /// Send bodies in 16 KiB pieces this far apart (a download a terminal can watch).
    pace: Option<std::time::Duration>,
    seen: Vec<Seen>,
}

pub struct FakeHub {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl FakeHub {
    pub fn start(repos: Vec<HubRepo>) -> FakeHub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake hub");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            repos,
            fault: Fault::None,
            pace: None,
            seen: Vec::new(),
        }));
        let (st, base) = (state.clone(), url.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (st, base) = (st.clone(), base.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &st, &base);
                });
            }
        });
        FakeHub { url, state }
    }

    pub fn set_fault(&self, f: Fault) {
        self.state.lock().unwrap().fault = f;
    }

    /// Send file bodies slowly: 16 KiB, then a pause of `gap`.
    pub fn set_pace(&self, gap: std::time::Duration) {
        self.state.lock().unwrap().pace = Some(gap);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// Body requests for `sha256`'s CDN route (the file bytes of an LFS file).
    pub fn body_requests(&self, sha256: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.path.starts_with(&format!("/cdn/{sha256}")) && s.is_body())
            .collect()
    }
}

struct Req {
    path: String,
    headers: Vec<(String, String)>,
}

impl Req {
    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }
}

fn read_req(conn: &TcpStream) -> std::io::Result<Req> {
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    Ok(Req { path, headers })
}

/// The status line and headers, with `Connection: close` and a Content-Length of `len`.
fn write_head(
    conn: &mut TcpStream,
    status: &str,
    headers: &[(&str, String)],
    len: usize,
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {len}\r\n\r\n"));
    conn.write_all(head.as_bytes())
}

fn respond(
    conn: &mut TcpStream,
    status: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    write_head(conn, status, headers, body.len())?;
    conn.write_all(body)?;
    conn.flush()
}

fn not_found(conn: &mut TcpStream, code: &str, msg: &str) -> std::io::Result<()> {
    let body = serde_json::json!({ "error": msg }).to_string();
    respond(
        conn,
        "404 Not Found",
        &[
            ("X-Error-Code", code.into()),
            ("Content-Type", "application/json".into()),
        ],
        body.as_bytes(),
    )
}

fn serve(mut conn: TcpStream, st: &Mutex<State>, base: &str) -> std::io::Result<()> {
    let req = read_req(&conn)?;
    let auth = req.header("authorization");
    st.lock().unwrap().seen.push(Seen {
        path: req.path.clone(),
        range: req.header("range"),
        auth: auth.clone(),
    });
    let path = req.path.split('?').next().unwrap_or("").to_string();
    let repos = st.lock().unwrap().repos.clone();
    let find_repo = |id: &str| repos.iter().find(|r| r.id == id).cloned();
    let allowed = |r: &HubRepo| match &r.token {
        None => true,
        Some(t) => auth.as_deref() == Some(&format!("Bearer {t}")),
    };
    let gated = |conn: &mut TcpStream| {
        respond(
            conn,
            "401 Unauthorized",
            &[("X-Error-Code", "GatedRepo".into())],
            b"{\"error\":\"Access to this repo is restricted\"}",
        )
    };
    if let Some(rest) = path.strip_prefix("/api/models/") {
        let id = rest.split("/revision/").next().unwrap_or(rest);
        let Some(repo) = find_repo(id) else {
            return not_found(&mut conn, "RepoNotFound", "Repository not found");
        };
        if !allowed(&repo) {
            return gated(&mut conn);
        }
        let siblings: Vec<serde_json::Value> = repo
            .files
            .iter()
            .map(|f| {
                let mut v = serde_json::json!({"rfilename": f.path, "size": f.bytes.len()});
                if f.lfs {
                    v["lfs"] = serde_json::json!({"sha256": f.sha256(), "size": f.bytes.len()});
                }
                v
            })
            .collect();
        let body = serde_json::json!({"id": repo.id, "sha": repo.commit, "siblings": siblings});
        return respond(
            &mut conn,
            "200 OK",
            &[("Content-Type", "application/json".into())],
            body.to_string().as_bytes(),
        );
    }
    if let Some(sha) = path.strip_prefix("/cdn/") {
        let file = repos
            .iter()
            .flat_map(|r| r.files.iter())
            .find(|f| f.lfs && f.sha256() == sha)
            .cloned();
        return match file {
            Some(f) => body(&mut conn, st, &req, &f, &[]),
            None => not_found(&mut conn, "EntryNotFound", "no such object"),
        };
    }
    // /{org}/{name}/resolve/{rev}/{file...}
    let Some((id, after)) = path.trim_start_matches('/').split_once("/resolve/") else {
        return not_found(&mut conn, "RepoNotFound", "Repository not found");
    };
    let Some(repo) = find_repo(id) else {
        return not_found(&mut conn, "RepoNotFound", "Repository not found");
    };
    if !allowed(&repo) {
        return gated(&mut conn);
    }
    let (rev, file) = after.split_once('/').unwrap_or((after, ""));
    if rev != "main" && rev != repo.commit {
        return not_found(&mut conn, "RevisionNotFound", "Invalid rev id");
    }
    let Some(f) = repo.files.iter().find(|f| f.path == file).cloned() else {
        return not_found(&mut conn, "EntryNotFound", "Entry not found");
    };
    let mut headers = vec![
        ("x-repo-commit", repo.commit.clone()),
        ("etag", format!("\"{}\"", f.etag())),
    ];
    if f.lfs {
        headers.push(("x-linked-etag", format!("\"{}\"", f.sha256())));
        headers.push(("x-linked-size", f.bytes.len().to_string()));
        headers.push(("Location", format!("{base}/cdn/{}", f.sha256())));
        return respond(&mut conn, "302 Found", &headers, b"");
    }
    body(&mut conn, st, &req, &f, &headers)
}

/// The file's bytes, honouring Range, with the current fault applied.
fn body(
    conn: &mut TcpStream,
    st: &Mutex<State>,
    req: &Req,
    f: &HubFile,
    extra: &[(&str, String)],
) -> std::io::Result<()> {
    let total = f.bytes.len();
    let range = req.header("range").and_then(|r| {
        let spec = r.strip_prefix("bytes=")?;
        let (a, b) = spec.split_once('-')?;
        let a: usize = a.parse().ok()?;
        let b: usize = if b.is_empty() {
            total.saturating_sub(1)
        } else {
            b.parse().ok()?
        };
        Some((a, b.min(total.saturating_sub(1))))
    });
    let mut headers: Vec<(&str, String)> = extra.to_vec();
    headers.push(("etag", format!("\"{}\"", f.etag())));
    let (status, start, end) = match range {
        Some((a, _)) if a >= total => {
            headers.push(("Content-Range", format!("bytes */{total}")));
            return respond(conn, "416 Range Not Satisfiable", &headers, b"");
        }
        Some((a, b)) => {
            headers.push(("Content-Range", format!("bytes {a}-{b}/{total}")));
            ("206 Partial Content", a, b + 1)
        }
        None => ("200 OK", 0, total),
    };
    let probe = req.header("range").as_deref() == Some("bytes=0-0");
    let (fault, pace) = {
        let mut s = st.lock().unwrap();
        let fault = s.fault;
        if fault == Fault::CutNext && !probe {
            s.fault = Fault::None;
        }
        (fault, s.pace)
    };
    let mut bytes = f.bytes[start..end].to_vec();
    if probe {
        return respond(conn, status, &headers, &bytes);
    }
    match fault {
        Fault::None if pace.is_some() => {
            write_head(conn, status, &headers, bytes.len())?;
            for piece in bytes.chunks(16 << 10) {
                conn.write_all(piece)?;
                conn.flush()?;
                std::thread::sleep(pace.unwrap_or_default());
            }
            Ok(())
        }
        Fault::None => respond(conn, status, &headers, &bytes),
        Fault::Corrupt => {
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0xff;
            respond(conn, status, &headers, &bytes)
        }
        Fault::Truncate => {
            bytes.truncate(bytes.len() / 2);
            respond(conn, status, &headers, &bytes)
        }
        Fault::CutNext => {
            // Announce every byte, send half, and hang up.
            write_head(conn, status, &headers, bytes.len())?;
            conn.write_all(&bytes[..bytes.len() / 2])?;
            conn.flush()?;
            conn.shutdown(std::net::Shutdown::Both)
        }
    }
}
