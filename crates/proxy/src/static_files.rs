//! Static sites: a revision whose target is a directory ([`crate::StaticSite`]) is answered
//! by the proxy itself, on both the HTTP/1.1 front and hyper's path (both reach
//! `forward::handle`).
//!
//! - The request path below the route's prefix (when it strips it) names the file; `%XX` is
//!   decoded first. A `..` segment or a NUL is a 400; a hidden segment (`.name`, except
//!   `.well-known`), a file outside the root (symbolic links are resolved) or anything but a
//!   regular file is a 404. Only GET and HEAD; anything else is a 405.
//! - A directory serves its `index.html` (a path without the trailing slash is redirected to
//!   it); a path without an extension that names no file tries `PATH.html`; with `spa`, a
//!   path with no file and no extension, or a request that accepts `text/html`, gets the
//!   root's `index.html` with 200. Other misses are a 404 (the root's `404.html` if it has one).
//! - `Content-Type` by extension; `ETag` (inode, size and modification time of the file
//!   served) and `Last-Modified`, with `If-None-Match` / `If-Modified-Since` answered 304;
//!   one `Range` (`bytes=a-b`, `a-`, `-n`), honoured by `If-Range`.
//! - `FILE.br` / `FILE.gz` beside a file are served instead, with `Content-Encoding`, when
//!   the request's `Accept-Encoding` allows; `Vary: Accept-Encoding` whenever one exists.
//! - `Cache-Control`: names with a content hash (`assets/index-3f2a9c1b.js`, see
//!   [`is_hashed_name`]) are `public, max-age=31536000, immutable`; everything else,
//!   HTML included, is `no-cache` (revalidated with its ETag on every use).
//!
//! The file system is touched on the blocking pool only: one task resolves, checks the
//! conditions and reads a small file whole; a larger one is streamed in chunks.

use std::collections::HashMap;
use std::fs::File;
use std::future::Future;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use hyper::body::Frame;
use hyper::header::{
    ACCEPT, ACCEPT_ENCODING, ACCEPT_RANGES, ALLOW, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH,
    CONTENT_RANGE, CONTENT_TYPE, ETAG, HeaderMap, HeaderValue, IF_MODIFIED_SINCE, IF_NONE_MATCH,
    IF_RANGE, LAST_MODIFIED, LOCATION, RANGE, SET_COOKIE, VARY,
};
use hyper::{Method, Request, Response, StatusCode};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::body::{ClientBody, ProxyBody};
use crate::guard::RequestGuard;
use crate::h1::H1Error;
use crate::headers::X_REQUEST_ID;
use crate::route::StaticSite;
use crate::stats::Outcome;
use crate::table::{CompiledRoute, CompiledTarget};

/// Files up to this size are read whole with the lookup; larger ones are streamed.
const READ_WHOLE: u64 = 256 * 1024;
/// Bytes read per chunk of a streamed file.
const CHUNK: u64 = 256 * 1024;
/// Lookups an immutable site remembers (a client asking for ever new paths stops adding).
const CACHE_ENTRIES: usize = 4096;
/// File content an immutable site keeps in memory.
const CACHE_BYTES: u64 = 64 * 1024 * 1024;

const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");
const NO_CACHE: HeaderValue = HeaderValue::from_static("no-cache");
const TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");

/// What decides a lookup: the path below the root as requested, and the negotiation flags.
type Key = (Box<[u8]>, u8);

/// A compiled static site.
pub(crate) struct Site {
    /// Canonical, so that a resolved file can be checked to be inside it.
    root: PathBuf,
    spa: bool,
    /// An immutable site's lookups (with the content of small files), by [`Key`].
    cache: Option<Cache>,
}

struct Cache {
    entries: RwLock<HashMap<Key, Arc<Resolved>>>,
    bytes: AtomicU64,
}

impl Site {
    pub(crate) fn new(s: &StaticSite) -> Site {
        Site {
            root: std::fs::canonicalize(&s.root).unwrap_or_else(|_| s.root.clone()),
            spa: s.spa,
            cache: s.immutable.then(|| Cache {
                entries: RwLock::new(HashMap::new()),
                bytes: AtomicU64::new(0),
            }),
        }
    }

    fn cached(&self, key: &Key) -> Option<Arc<Resolved>> {
        let cache = self.cache.as_ref()?;
        let entries = cache.entries.read().unwrap_or_else(PoisonError::into_inner);
        entries.get(key).cloned()
    }

    /// Keeps a lookup of an immutable site; its content only while the budget lasts.
    fn remember(&self, key: Key, resolved: &Arc<Resolved>) {
        let Some(cache) = &self.cache else { return };
        let mut entries = cache
            .entries
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= CACHE_ENTRIES {
            return;
        }
        let mut kept = resolved.clone();
        if let Resolved::File(found) = resolved.as_ref()
            && let Some(content) = &found.content
        {
            let n = content.len() as u64;
            if cache.bytes.load(Ordering::Relaxed) + n > CACHE_BYTES {
                kept = Arc::new(Resolved::File(Box::new(Found {
                    content: None,
                    ..(**found).clone()
                })));
            } else {
                cache.bytes.fetch_add(n, Ordering::Relaxed);
            }
        }
        entries.insert(key, kept);
    }
}

/// What the answer depends on, taken from the request for the blocking pool.
#[derive(Debug, Default)]
struct Ask {
    head: bool,
    key: Key,
    /// Decoded path segments below the root.
    segments: Vec<Vec<u8>>,
    trailing_slash: bool,
    /// The request's path and query as sent, for a redirect to the directory.
    original: String,
    accepts_html: bool,
    br: bool,
    gzip: bool,
    if_none_match: Option<String>,
    if_modified_since: Option<SystemTime>,
    range: Option<String>,
    if_range: Option<String>,
}

/// What the file system says about a request, before its conditions (`If-*`, `Range`,
/// `HEAD`) are applied: the same for every request with the same [`Key`].
#[derive(Debug)]
enum Resolved {
    /// A plain-text answer (a 404).
    Text(StatusCode, &'static str),
    /// A directory asked for without its trailing slash.
    Redirect,
    /// A file to send.
    File(Box<Found>),
}

#[derive(Debug, Clone)]
struct Found {
    /// 200, or 404 for the site's 404 page.
    status: StatusCode,
    /// Type, validators, caching, encoding.
    headers: HeaderMap,
    etag: String,
    last_modified: String,
    mtime: SystemTime,
    len: u64,
    encoded: bool,
    path: PathBuf,
    /// The whole file, when it is small.
    content: Option<Bytes>,
}

/// How a request is answered.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Body,
}

#[derive(Debug)]
enum Body {
    None,
    Bytes(Bytes),
    /// `len` bytes of the file from `offset`, read off the blocking pool.
    Stream(PathBuf, u64, u64),
}

impl Answer {
    fn text(status: StatusCode, text: &'static str) -> Answer {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, TEXT);
        headers.insert(CONTENT_LENGTH, HeaderValue::from(text.len()));
        Answer {
            status,
            headers,
            body: Body::Bytes(Bytes::from_static(text.as_bytes())),
        }
    }
}

/// Serves a request from `site`; never fails (errors become responses).
pub(crate) async fn serve(
    route: &CompiledRoute,
    target: &CompiledTarget,
    site: &Arc<Site>,
    req: Request<ClientBody>,
    mut guard: RequestGuard,
    request_id: &HeaderValue,
    set_cookie: Option<HeaderValue>,
) -> Response<ProxyBody> {
    guard.set_revision(target.metrics.clone());
    let started = Instant::now();
    let answer = match ask(route, &req) {
        Err(answer) => *answer,
        Ok(ask) => match site.cached(&ask.key) {
            Some(resolved) => respond(&resolved, &ask),
            None => {
                let s = site.clone();
                let looked = tokio::task::spawn_blocking(move || {
                    let resolved = Arc::new(resolve(&s, &ask));
                    (resolved, ask)
                })
                .await;
                match looked {
                    Ok((resolved, ask)) => {
                        let answer = respond(&resolved, &ask);
                        site.remember(ask.key, &resolved);
                        answer
                    }
                    Err(_) => Answer::text(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n"),
                }
            }
        },
    };
    target
        .metrics
        .record(started.elapsed(), Outcome::Status(answer.status.as_u16()));
    let Answer {
        status,
        mut headers,
        body,
    } = answer;
    headers.insert(X_REQUEST_ID, request_id.clone());
    if let Some(cookie) = set_cookie {
        headers.append(SET_COOKIE, cookie);
    }
    let body = match body {
        Body::None => ProxyBody::full(Bytes::new(), Some(guard)),
        Body::Bytes(b) => ProxyBody::full(b, Some(guard)),
        Body::Stream(path, offset, len) => {
            ProxyBody::file(FileStream::new(path, offset, len), guard)
        }
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    resp
}

/// What the request asks for, or the answer when it asks for something that cannot be.
fn ask(route: &CompiledRoute, req: &Request<ClientBody>) -> Result<Ask, Box<Answer>> {
    let head = match *req.method() {
        Method::GET => false,
        Method::HEAD => true,
        _ => {
            let mut a = Answer::text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            a.headers
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return Err(Box::new(a));
        }
    };
    let path = route.forwarded_path(req.uri().path());
    let segments = match segments(path) {
        Ok(s) => s,
        Err(status) => {
            let text = if status == StatusCode::BAD_REQUEST {
                "bad request path\n"
            } else {
                "not found\n"
            };
            return Err(Box::new(Answer::text(status, text)));
        }
    };
    let h = req.headers();
    let text = |name| h.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    let encodings = text(ACCEPT_ENCODING).unwrap_or_default();
    let accepts_html = text(ACCEPT).is_some_and(accepts_html);
    let br = accepts_encoding(encodings, "br");
    let gzip = accepts_encoding(encodings, "gzip");
    let flags = u8::from(br) | u8::from(gzip) << 1 | u8::from(accepts_html) << 2;
    Ok(Ask {
        head,
        key: (path.as_bytes().into(), flags),
        segments,
        trailing_slash: path.ends_with('/'),
        original: req
            .uri()
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        accepts_html,
        br,
        gzip,
        if_none_match: text(IF_NONE_MATCH).map(str::to_owned),
        if_modified_since: text(IF_MODIFIED_SINCE).and_then(|d| httpdate::parse_http_date(d).ok()),
        range: text(RANGE).map(str::to_owned),
        if_range: text(IF_RANGE).map(str::to_owned),
    })
}

/// The decoded segments of a path: a 400 for `..`, NUL or bad escapes, a 404 for hidden ones.
fn segments(path: &str) -> Result<Vec<Vec<u8>>, StatusCode> {
    let decoded = percent_decode(path.as_bytes()).ok_or(StatusCode::BAD_REQUEST)?;
    let mut out = Vec::new();
    // Decoded first, so `%2e%2e` and `..%2f` are seen for what they are.
    for seg in decoded.split(|&b| b == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => return Err(StatusCode::BAD_REQUEST),
            s if s.contains(&0) => return Err(StatusCode::BAD_REQUEST),
            s if s.starts_with(b".") && s != b".well-known" => return Err(StatusCode::NOT_FOUND),
            s => out.push(s.to_vec()),
        }
    }
    Ok(out)
}

fn percent_decode(raw: &[u8]) -> Option<Vec<u8>> {
    let hex = |b: u8| (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok());
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' {
            let hi = hex(*raw.get(i + 1)?)?;
            let lo = hex(*raw.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Whether an `Accept` header asks for HTML (a browser navigating).
fn accepts_html(accept: &str) -> bool {
    accept.split(',').any(|item| {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or_default().trim();
        (media.eq_ignore_ascii_case("text/html")
            || media.eq_ignore_ascii_case("application/xhtml+xml"))
            && quality(parts) > 0.0
    })
}

/// Whether `Accept-Encoding` allows `coding` (named with q > 0, or `*` with q > 0 and not
/// named with q = 0).
fn accepts_encoding(header: &str, coding: &str) -> bool {
    let mut star = None;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or_default().trim();
        let q = quality(parts);
        if name.eq_ignore_ascii_case(coding) {
            return q > 0.0;
        }
        if name == "*" {
            star = Some(q > 0.0);
        }
    }
    star.unwrap_or(false)
}

fn quality<'a>(params: impl Iterator<Item = &'a str>) -> f32 {
    for p in params {
        if let Some((k, v)) = p.split_once('=')
            && k.trim().eq_ignore_ascii_case("q")
        {
            return v.trim().parse().unwrap_or(0.0);
        }
    }
    1.0
}

/// Looks the file up and reads it when it is small: everything that depends on the file
/// system and not on the request's conditions.
fn resolve(site: &Site, ask: &Ask) -> Resolved {
    let mut rel = PathBuf::new();
    for s in &ask.segments {
        rel.push(std::ffi::OsStr::from_bytes(s));
    }
    let last = ask.segments.last().map(Vec::as_slice).unwrap_or_default();
    let has_extension = last.iter().skip(1).any(|&b| b == b'.');
    let wanted = site.root.join(&rel);
    let found = match std::fs::metadata(&wanted) {
        Ok(m) if m.is_dir() => {
            if !ask.trailing_slash && !ask.segments.is_empty() {
                return Resolved::Redirect;
            }
            Some(wanted.join("index.html"))
        }
        Ok(_) => Some(wanted),
        Err(_) if !has_extension && !ask.segments.is_empty() => {
            // Clean URLs: `/about` is `about.html` (Next.js exports, most static hosts).
            let mut html = wanted.into_os_string();
            html.push(".html");
            Some(PathBuf::from(html))
        }
        Err(_) => None,
    };
    match found.and_then(|p| inside(site, &p)) {
        Some(file) => found_file(site, ask, &file, StatusCode::OK, false),
        None if site.spa && (!has_extension || ask.accepts_html) => {
            match inside(site, &site.root.join("index.html")) {
                Some(index) => found_file(site, ask, &index, StatusCode::OK, true),
                None => not_found(site, ask),
            }
        }
        None => not_found(site, ask),
    }
}

/// `path` resolved (links followed), if it is a regular file inside the root.
fn inside(site: &Site, path: &Path) -> Option<PathBuf> {
    let real = std::fs::canonicalize(path).ok()?;
    let ok = real.starts_with(&site.root) && std::fs::metadata(&real).ok()?.is_file();
    ok.then_some(real)
}

/// A 404: the site's own `404.html` when it has one.
fn not_found(site: &Site, ask: &Ask) -> Resolved {
    match inside(site, &site.root.join("404.html")) {
        Some(page) => found_file(site, ask, &page, StatusCode::NOT_FOUND, true),
        None => Resolved::Text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// The precompressed sibling to send instead of `file`, and whether one exists at all.
fn variant(site: &Site, ask: &Ask, file: &Path) -> (Option<(PathBuf, &'static str)>, bool) {
    let sibling = |ext: &str| {
        let mut p = file.as_os_str().to_owned();
        p.push(ext);
        inside(site, Path::new(&p))
    };
    let br = sibling(".br");
    let gz = sibling(".gz");
    let exists = br.is_some() || gz.is_some();
    let chosen = match (br, gz) {
        (Some(p), _) if ask.br => Some((p, "br")),
        (_, Some(p)) if ask.gzip => Some((p, "gzip")),
        _ => None,
    };
    (chosen, exists)
}

/// The file to send for `file` (or its precompressed sibling), with its headers; `page`:
/// an HTML page served for another path (the SPA fallback, the 404 page), never cached.
fn found_file(site: &Site, ask: &Ask, file: &Path, status: StatusCode, page: bool) -> Resolved {
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let content_type = content_type(name);
    let (chosen, varies) = variant(site, ask, file);
    let (path, encoding) = match chosen {
        Some((p, e)) => (p, Some(e)),
        None => (file.to_path_buf(), None),
    };
    let Ok(mut f) = File::open(&path) else {
        return Resolved::Text(StatusCode::NOT_FOUND, "not found\n");
    };
    let Ok(meta) = f.metadata() else {
        return Resolved::Text(StatusCode::INTERNAL_SERVER_ERROR, "cannot read the file\n");
    };
    let len = meta.len();
    let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    let etag = etag(&meta);
    let last_modified = httpdate::fmt_http_date(mtime);
    let content = if len <= READ_WHOLE {
        match read_up_to(&mut f, len) {
            Ok(b) if b.len() as u64 == len => Some(b),
            _ => {
                return Resolved::Text(StatusCode::INTERNAL_SERVER_ERROR, "cannot read the file\n");
            }
        }
    } else {
        None
    };

    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::try_from(&etag) {
        headers.insert(ETAG, v);
    }
    if let Ok(v) = HeaderValue::try_from(&last_modified) {
        headers.insert(LAST_MODIFIED, v);
    }
    let immutable = !page && !content_type.starts_with("text/html") && is_hashed_name(name);
    headers.insert(CACHE_CONTROL, if immutable { IMMUTABLE } else { NO_CACHE });
    if varies {
        headers.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    if let Some(e) = encoding {
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static(e));
    } else {
        headers.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    }
    Resolved::File(Box::new(Found {
        status,
        headers,
        etag,
        last_modified,
        mtime,
        len,
        encoded: encoding.is_some(),
        path,
        content,
    }))
}

/// The answer to one request from what was resolved for it: its conditions, its range,
/// `HEAD`. Touches no file.
fn respond(resolved: &Resolved, ask: &Ask) -> Answer {
    let f = match resolved {
        Resolved::Text(status, text) => return Answer::text(*status, text),
        Resolved::Redirect => return redirect_to_directory(&ask.original),
        Resolved::File(f) => f,
    };
    let mut headers = f.headers.clone();
    if f.status == StatusCode::OK && not_modified(ask, &f.etag, f.mtime) {
        return Answer {
            status: StatusCode::NOT_MODIFIED,
            headers,
            body: Body::None,
        };
    }
    let mut status = f.status;
    let (mut start, mut count) = (0, f.len);
    let range = ask
        .range
        .as_deref()
        .filter(|_| status == StatusCode::OK && !f.encoded)
        .filter(|_| {
            ask.if_range
                .as_deref()
                .is_none_or(|v| v == f.etag || v == f.last_modified)
        });
    if let Some(r) = range {
        match parse_range(r, f.len) {
            Some(Ok((a, b))) => {
                status = StatusCode::PARTIAL_CONTENT;
                (start, count) = (a, b - a + 1);
                if let Ok(v) = HeaderValue::try_from(format!("bytes {a}-{b}/{}", f.len)) {
                    headers.insert(CONTENT_RANGE, v);
                }
            }
            Some(Err(())) => {
                let mut a =
                    Answer::text(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable\n");
                if let Ok(v) = HeaderValue::try_from(format!("bytes */{}", f.len)) {
                    a.headers.insert(CONTENT_RANGE, v);
                }
                return a;
            }
            // Not one range of bytes: the whole file.
            None => {}
        }
    }
    headers.insert(CONTENT_LENGTH, HeaderValue::from(count));
    let body = if ask.head || count == 0 {
        Body::None
    } else {
        match &f.content {
            Some(b) => {
                let from = usize::try_from(start).unwrap_or(usize::MAX).min(b.len());
                let to = usize::try_from(start + count)
                    .unwrap_or(usize::MAX)
                    .min(b.len());
                Body::Bytes(b.slice(from..to))
            }
            None => Body::Stream(f.path.clone(), start, count),
        }
    };
    Answer {
        status,
        headers,
        body,
    }
}

fn redirect_to_directory(original: &str) -> Answer {
    let (path, query) = original
        .split_once('?')
        .map_or((original, None), |(p, q)| (p, Some(q)));
    let location = match query {
        Some(q) => format!("{path}/?{q}"),
        None => format!("{path}/"),
    };
    let mut a = Answer::text(StatusCode::MOVED_PERMANENTLY, "moved\n");
    if let Ok(v) = HeaderValue::try_from(location) {
        a.headers.insert(LOCATION, v);
    }
    a
}

/// A strong validator from the file served: a snapshot's files never change, and any other
/// change moves the inode, the size or the time.
fn etag(meta: &std::fs::Metadata) -> String {
    let nanos = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .unwrap_or(Duration::ZERO)
        .as_nanos();
    format!("\"{:x}-{:x}-{nanos:x}\"", meta.ino(), meta.len())
}

/// `If-None-Match` (weak comparison), else `If-Modified-Since` (to the second).
fn not_modified(ask: &Ask, etag: &str, mtime: SystemTime) -> bool {
    if let Some(list) = &ask.if_none_match {
        let ours = etag.trim_start_matches("W/");
        return list
            .split(',')
            .map(str::trim)
            .any(|t| t == "*" || t.trim_start_matches("W/") == ours);
    }
    match ask.if_modified_since {
        Some(since) => {
            let secs = |t: SystemTime| {
                t.duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
            };
            secs(mtime) <= secs(since)
        }
        None => false,
    }
}

/// One range of bytes as inclusive offsets; `Some(Err)` when it is unsatisfiable, `None`
/// when the header is not one byte range (then the whole file is sent).
fn parse_range(header: &str, len: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = header.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        if n == 0 || len == 0 {
            return Some(Err(()));
        }
        (len.saturating_sub(n), len - 1)
    } else {
        let start: u64 = a.parse().ok()?;
        let end: u64 = if b.is_empty() {
            u64::MAX
        } else {
            b.parse().ok()?
        };
        if end < start {
            return None;
        }
        if start >= len {
            return Some(Err(()));
        }
        (start, end.min(len - 1))
    };
    Some(Ok(range))
}

fn read_up_to(f: &mut File, n: u64) -> io::Result<Bytes> {
    let mut buf = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
    f.take(n).read_to_end(&mut buf)?;
    Ok(Bytes::from(buf))
}

/// Whether a file name carries a content hash, so that its content never changes under it:
/// the part after the last `-` or `.` of the name before its extension is at least 8
/// characters of `[A-Za-z0-9_-]` mixing letters and digits (`index-3f2a9c1b.js`,
/// `main.8c2e1f0a.css`), or, as Rollup writes it, the last 8 characters after a `-` in
/// mixed case (`index-BxKqLmNo.js`). `1200x630` (dimensions) and words are not hashes.
pub(crate) fn is_hashed_name(name: &str) -> bool {
    let Some((stem, _ext)) = name.rsplit_once('.') else {
        return false;
    };
    let mut candidates = Vec::new();
    if let Some((_, t)) = stem.rsplit_once('.') {
        candidates.push((t, false));
    }
    if let Some((_, t)) = stem.rsplit_once('-') {
        candidates.push((t, false));
    }
    // Rollup's base64url hash may itself hold a `-`.
    if stem.len() > 9 && stem.is_char_boundary(stem.len() - 8) {
        let (before, t) = stem.split_at(stem.len() - 8);
        if before.ends_with('-') {
            candidates.push((t, true));
        }
    }
    candidates
        .into_iter()
        .any(|(t, rollup)| hash_like(t, rollup))
}

fn hash_like(t: &str, rollup: bool) -> bool {
    let b = t.as_bytes();
    if b.len() < 8
        || b.len() > 64
        || !b
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-'))
    {
        return false;
    }
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    let upper = b.iter().filter(|c| c.is_ascii_uppercase()).count();
    let lower = b.iter().filter(|c| c.is_ascii_lowercase()).count();
    let dimensions = t.split_once('x').is_some_and(|(w, h)| {
        !w.is_empty() && !h.is_empty() && w.bytes().chain(h.bytes()).all(|c| c.is_ascii_digit())
    });
    (digits > 0 && upper + lower > 0 && !dimensions) || (rollup && upper >= 3 && lower >= 3)
}

/// The `Content-Type` for a file name, by its extension.
fn content_type(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" | "cjs" => "text/javascript; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "txt" => "text/plain; charset=utf-8",
        "md" => "text/markdown; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/x-icon",
        "bmp" => "image/bmp",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "eot" => "application/vnd.ms-fontobject",
        "wasm" => "application/wasm",
        "pdf" => "application/pdf",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "wav" => "audio/wav",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "br" => "application/x-brotli",
        _ => "application/octet-stream",
    }
}

/// A file's bytes streamed off the blocking pool, one chunk at a time.
pub(crate) struct FileStream {
    file: Option<File>,
    /// Not opened yet: which file, from which offset.
    open: Option<(PathBuf, u64)>,
    left: u64,
    reading: Option<JoinHandle<io::Result<(File, Bytes)>>>,
}

impl FileStream {
    fn new(path: PathBuf, offset: u64, len: u64) -> FileStream {
        FileStream {
            file: None,
            open: Some((path, offset)),
            left: len,
            reading: None,
        }
    }

    pub(crate) fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, H1Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        if self.reading.is_none() {
            let (file, open) = (self.file.take(), self.open.take());
            let n = self.left.min(CHUNK);
            self.reading = Some(tokio::task::spawn_blocking(move || {
                let mut file = match (file, open) {
                    (Some(f), _) => f,
                    (None, Some((path, offset))) => {
                        let mut f = File::open(path)?;
                        f.seek(SeekFrom::Start(offset))?;
                        f
                    }
                    (None, None) => return Err(io::ErrorKind::NotFound.into()),
                };
                let bytes = read_up_to(&mut file, n)?;
                Ok((file, bytes))
            }));
        }
        let Some(reading) = self.reading.as_mut() else {
            return Poll::Ready(None);
        };
        let done = match Pin::new(reading).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(done) => done,
        };
        self.reading = None;
        match done {
            Ok(Ok((file, bytes))) if !bytes.is_empty() => {
                self.left = self.left.saturating_sub(bytes.len() as u64);
                self.file = Some(file);
                Poll::Ready(Some(Ok(Frame::data(bytes))))
            }
            // The file shrank under us: the response cannot be completed.
            Ok(Ok(_)) => {
                self.left = 0;
                Poll::Ready(Some(Err(H1Error::Io(io::ErrorKind::UnexpectedEof.into()))))
            }
            Ok(Err(e)) => {
                self.left = 0;
                Poll::Ready(Some(Err(H1Error::Io(e))))
            }
            Err(e) => {
                self.left = 0;
                Poll::Ready(Some(Err(H1Error::Io(io::Error::other(e)))))
            }
        }
    }

    pub(crate) fn left(&self) -> u64 {
        self.left
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_names() {
        for yes in [
            "index-3f2a9c1b.js",
            "main.8c2e1f0a.css",
            "webpack-8fa1640cc84ba8fe.js",
            "index-BxKqLmNo.js",
            "vendor-D4-bC_e9.js",
            "logo-a1b2c3d4e5.svg",
        ] {
            assert!(is_hashed_name(yes), "{yes}");
        }
        for no in [
            "index.html",
            "app.js",
            "favicon.ico",
            "og-image-1200x630.png",
            "report-20240101.pdf",
            "Button-Component.js",
            "logo-RedGreen.svg",
            "apple-touch-icon.png",
            "3f2a9c1b",
        ] {
            assert!(!is_hashed_name(no), "{no}");
        }
    }

    #[test]
    fn paths_decode_and_refuse_traversal() {
        assert_eq!(
            segments("/a/./b//c%20d").unwrap(),
            [b"a".to_vec(), b"b".to_vec(), b"c d".to_vec()]
        );
        for bad in [
            "/../etc/passwd",
            "/a/%2e%2e/b",
            "/..%2f..%2fetc",
            "/a%00b",
            "/%zz",
        ] {
            assert_eq!(segments(bad).unwrap_err(), StatusCode::BAD_REQUEST, "{bad}");
        }
        assert_eq!(segments("/.env").unwrap_err(), StatusCode::NOT_FOUND);
        assert_eq!(
            segments("/a/.git/config").unwrap_err(),
            StatusCode::NOT_FOUND
        );
        assert!(segments("/.well-known/security.txt").is_ok());
    }

    #[test]
    fn encodings_and_html_are_negotiated() {
        assert!(accepts_encoding("gzip, deflate, br", "br"));
        assert!(accepts_encoding("gzip;q=0.5", "gzip"));
        assert!(!accepts_encoding("gzip;q=0", "gzip"));
        assert!(accepts_encoding("*", "br"));
        assert!(!accepts_encoding("*, br;q=0", "br"));
        assert!(!accepts_encoding("", "gzip"));
        assert!(accepts_html("text/html,application/xhtml+xml,*/*;q=0.8"));
        assert!(!accepts_html("*/*"));
        assert!(!accepts_html("text/html;q=0"));
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some(Ok((0, 9))));
        assert_eq!(parse_range("bytes=90-", 100), Some(Ok((90, 99))));
        assert_eq!(parse_range("bytes=-10", 100), Some(Ok((90, 99))));
        assert_eq!(parse_range("bytes=50-500", 100), Some(Ok((50, 99))));
        assert_eq!(parse_range("bytes=100-", 100), Some(Err(())));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
        assert_eq!(parse_range("bytes=9-1", 100), None);
    }

    #[test]
    fn types_by_extension() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(
            content_type("app-1a2b3c4d.JS"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("font.woff2"), "font/woff2");
        assert_eq!(content_type("LICENSE"), "application/octet-stream");
    }
}
