//! Media: an upload is streamed to a scratch file (never held in memory), checked to be what it
//! says, written to the object store, and packaged into HLS when ffmpeg is there; a session's
//! stream URL then serves its objects, with ranges, and its playlist with every URL signed.

use std::{path::Path, time::Duration};

use aws_lc_rs::digest;
use bytes::Bytes;
use contracts::{event_types::MEDIA_UPLOADED, streaming::MediaUploaded};
use futures_util::{Stream, StreamExt, stream::BoxStream};
use object_store::{
    GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart, path::Path as ObjectPath,
};
use platform::FieldError;
use serde::Serialize;
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use super::retrying;
use crate::{
    AppState, clip,
    domain::{
        MAX_DURATION_SECONDS, MediaKind, Session, Status, content_type_of, is_object_name, upload_name,
    },
    error::StreamingError,
    hls,
    ranges::{self, Span},
    store::{self, Media, MediaObject, version_prefix},
};

/// Media as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MediaView {
    pub movie_id: Uuid,
    /// `file` or `hls`.
    pub kind: String,
    pub content_type: String,
    pub size_bytes: i64,
    /// Of the uploaded file, in hex.
    pub sha256: String,
    pub duration_seconds: Option<i64>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub uploaded_at: OffsetDateTime,
}

impl From<&Media> for MediaView {
    fn from(m: &Media) -> Self {
        Self {
            movie_id: m.movie_id,
            kind: m.kind.as_str().to_owned(),
            content_type: m.content_type.clone(),
            size_bytes: m.size_bytes,
            sha256: m.sha256.clone(),
            duration_seconds: m.duration_seconds,
            uploaded_at: m.uploaded_at,
        }
    }
}

/// What an upload says of itself.
pub struct Upload<'a> {
    pub movie_id: Uuid,
    pub content_type: Option<&'a str>,
    /// `Content-Length`, when sent: refused at once when too large.
    pub declared_length: Option<u64>,
    pub by: Uuid,
}

/// A scratch directory that is removed however the upload ends.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(base: &Path) -> anyhow::Result<Self> {
        let dir = base.join(format!("upload-{}", Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn store_failed(e: impl std::fmt::Display) -> StreamingError {
    tracing::error!(error = %e, "object store call failed");
    StreamingError::Unavailable("the media store is unavailable".into())
}

/// Store a movie's media from `body`: the movie's new version, served to sessions that start
/// from the moment this returns (running ones keep theirs). True when the movie had none.
pub async fn upload<S, E>(
    state: &AppState,
    input: Upload<'_>,
    body: S,
) -> Result<(MediaView, bool), StreamingError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let name = input.content_type.and_then(upload_name).ok_or(StreamingError::UnsupportedMedia)?;
    let max = state.config.max_upload_bytes;
    if input.declared_length.is_some_and(|n| n > max) {
        return Err(StreamingError::TooLarge(max));
    }
    state.clients.movie(input.movie_id).await?.ok_or(StreamingError::NotFound("movie"))?;
    let scratch = Scratch::new(&state.config.scratch_dir)?;
    let file = scratch.0.join(name);
    receive(body, &file, max).await?;
    let duration = inspect(&file, name).await?;
    // The file is all here: from now on a client that goes away does not cut the work short
    // (a multipart upload left half done, objects stored but never recorded).
    let (state, movie_id, by) = (state.clone(), input.movie_id, input.by);
    tokio::spawn(async move { store_upload(&state, scratch, name, movie_id, by, duration).await })
        .await
        .map_err(|e| StreamingError::Internal(e.into()))?
}

/// Copy a received upload into the store (and its HLS packaging), then swap it in.
async fn store_upload(
    state: &AppState,
    scratch: Scratch,
    name: &'static str,
    movie_id: Uuid,
    by: Uuid,
    duration: Option<i64>,
) -> Result<(MediaView, bool), StreamingError> {
    let version = Uuid::now_v7();
    let prefix = version_prefix(movie_id, version);
    let objects = match store_objects(state, &scratch, name, &prefix).await {
        Ok(objects) => objects,
        Err(e) => {
            delete_prefix(state.objects.store.as_ref(), &prefix).await;
            return Err(e);
        }
    };
    let (kind, entry, duration) = match objects.iter().find(|o| o.name == hls::PLAYLIST) {
        Some(_) => (MediaKind::Hls, hls::PLAYLIST.to_owned(), duration.or(objects_duration(&scratch))),
        None => (MediaKind::File, name.to_owned(), duration),
    };
    let upload = &objects[0];
    let media = Media {
        movie_id,
        version,
        kind,
        entry,
        content_type: content_type_of(name).to_owned(),
        size_bytes: upload.size_bytes,
        sha256: upload.etag.trim_matches('"').to_owned(),
        duration_seconds: duration,
        uploaded_by: by,
        uploaded_at: state.clock.now(),
    };
    let event = MediaUploaded {
        movie_id: media.movie_id,
        kind: media.kind.as_str().to_owned(),
        content_type: media.content_type.clone(),
        size_bytes: media.size_bytes,
        duration_seconds: media.duration_seconds,
    };
    let committing = std::sync::atomic::AtomicBool::new(false);
    let replaced = retrying(|| async {
        let mut work = state.effects.begin(&state.db).await?;
        let for_update = state.db.for_update();
        let old = store::replace_media(work.conn(), &media, &objects, for_update).await?;
        work.emit(MEDIA_UPLOADED, media.movie_id.to_string(), &event).await?;
        committing.store(true, std::sync::atomic::Ordering::Relaxed);
        work.commit().await?;
        Ok(old)
    })
    .await;
    let replaced = match replaced {
        Ok(old) => old,
        Err(e) => {
            // A commit that failed may still have happened: then these objects are served, and
            // must stay. Before it, they are nobody's.
            if !committing.load(std::sync::atomic::Ordering::Relaxed) {
                delete_prefix(state.objects.store.as_ref(), &prefix).await;
            }
            return Err(e);
        }
    };
    state.clients.forget_movie(media.movie_id).await;
    tracing::info!(movie_id = %media.movie_id, kind = media.kind.as_str(), size = media.size_bytes, "media stored");
    Ok((MediaView::from(&media), replaced.is_none()))
}

/// The upload and, when ffmpeg packages it, its playlist and segments, in the store.
async fn store_objects(
    state: &AppState,
    scratch: &Scratch,
    name: &str,
    prefix: &str,
) -> Result<Vec<MediaObject>, StreamingError> {
    let file = scratch.0.join(name);
    let store = state.objects.store.as_ref();
    let mut objects = vec![put_file(store, prefix, name, &file).await?];
    if name == "media.mp4"
        && let Some(ffmpeg) = &state.config.ffmpeg
    {
        let out = scratch.0.join("hls");
        std::fs::create_dir_all(&out).map_err(anyhow::Error::from)?;
        match hls::package(ffmpeg, &file, &out, state.config.packaging_timeout).await {
            Ok(_) => {
                for object in list_dir(&out)? {
                    objects.push(put_file(store, prefix, &object, &out.join(&object)).await?);
                }
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "could not package HLS; serving the MP4 as it is")
            }
        }
    }
    Ok(objects)
}

/// The running time ffmpeg's playlist says, when the upload's own header did not.
fn objects_duration(scratch: &Scratch) -> Option<i64> {
    let playlist = std::fs::read_to_string(scratch.0.join("hls").join(hls::PLAYLIST)).ok()?;
    hls::playlist_duration(&playlist).filter(|d| *d <= MAX_DURATION_SECONDS)
}

/// Delete the objects of retired versions no running session plays any more. One pass; the
/// sweeper runs it.
pub async fn remove_retired(state: &AppState) -> anyhow::Result<usize> {
    let unused = store::unused_retired(&state.db, 20).await?;
    for (movie, version) in &unused {
        delete_prefix(state.objects.store.as_ref(), &version_prefix(*movie, *version)).await;
        store::forget_version(&state.db, *movie, *version).await?;
        tracing::info!(movie_id = %movie, %version, "old media version removed");
    }
    Ok(unused.len())
}

/// Write the body to `file`, refusing it past `max` bytes, an empty one, or one cut off.
async fn receive<S, E>(mut body: S, file: &Path, max: u64) -> Result<u64, StreamingError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut out = tokio::fs::File::create(file).await.map_err(anyhow::Error::from)?;
    let mut size = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            tracing::info!(error = %e, "an upload broke off");
            StreamingError::Incomplete
        })?;
        size += chunk.len() as u64;
        if size > max {
            return Err(StreamingError::TooLarge(max));
        }
        out.write_all(&chunk).await.map_err(anyhow::Error::from)?;
    }
    out.flush().await.map_err(anyhow::Error::from)?;
    if size == 0 {
        return Err(StreamingError::Invalid(vec![FieldError::new("body", "the file is empty")]));
    }
    Ok(size)
}

/// Check the file is what its content type says (an MP4 starts with an `ftyp` box, a WebM file
/// with the EBML magic), and read its running time when it says.
async fn inspect(file: &Path, name: &str) -> Result<Option<i64>, StreamingError> {
    let mut head = [0u8; 12];
    let mut f = tokio::fs::File::open(file).await.map_err(anyhow::Error::from)?;
    let n = f.read(&mut head).await.map_err(anyhow::Error::from)?;
    let ok = match name {
        "media.mp4" => n >= 8 && &head[4..8] == b"ftyp",
        _ => n >= 4 && head[..4] == [0x1A, 0x45, 0xDF, 0xA3],
    };
    if !ok {
        let what = if name == "media.mp4" { "an MP4 file" } else { "a WebM file" };
        return Err(StreamingError::Invalid(vec![FieldError::new(
            "body",
            format!("the content is not {what}, as its Content-Type says"),
        )]));
    }
    if name != "media.mp4" {
        return Ok(None);
    }
    let path = file.to_owned();
    let seconds = tokio::task::spawn_blocking(move || {
        let mut f = std::fs::File::open(path)?;
        clip::mp4_duration_from_reader(&mut f)
    })
    .await
    .map_err(anyhow::Error::from)?
    .map_err(anyhow::Error::from)?;
    Ok(seconds
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(|s| s.ceil() as i64)
        .filter(|s| *s <= MAX_DURATION_SECONDS))
}

/// The object names ffmpeg wrote, in order.
fn list_dir(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| is_object_name(n))
        .collect();
    names.sort();
    Ok(names)
}

/// Parts of this size go up one by one (S3 wants at least 5 MiB but the last); a smaller file in
/// one put. One part is filled while at most two are in flight, so an upload of any size holds
/// about 24 MiB.
const PART: usize = 8 * 1024 * 1024;

/// Copy a file into the store under `prefix/name`, hashing it on the way; its object record.
async fn put_file(
    store: &dyn ObjectStore,
    prefix: &str,
    name: &str,
    file: &Path,
) -> Result<MediaObject, StreamingError> {
    let location = ObjectPath::from(format!("{prefix}/{name}"));
    let mut f = tokio::fs::File::open(file).await.map_err(anyhow::Error::from)?;
    let len = f.metadata().await.map_err(anyhow::Error::from)?.len();
    let mut sha = digest::Context::new(&digest::SHA256);
    if len <= PART as u64 {
        let mut buf = Vec::with_capacity(len as usize);
        f.read_to_end(&mut buf).await.map_err(anyhow::Error::from)?;
        sha.update(&buf);
        store.put(&location, PutPayload::from(buf)).await.map_err(store_failed)?;
    } else {
        let upload = store.put_multipart(&location).await.map_err(store_failed)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
        let mut buf = vec![0u8; 1024 * 1024];
        loop {
            let n = match f.read(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(anyhow::Error::from(e).into());
                }
            };
            if n == 0 {
                break;
            }
            sha.update(&buf[..n]);
            if let Err(e) = writer.wait_for_capacity(2).await {
                let _ = writer.abort().await;
                return Err(store_failed(e));
            }
            writer.write(&buf[..n]);
        }
        writer.finish().await.map_err(store_failed)?;
    }
    let hex: String = sha.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect();
    Ok(MediaObject {
        name: name.to_owned(),
        content_type: content_type_of(name).to_owned(),
        size_bytes: len as i64,
        etag: format!("\"{hex}\""),
    })
}

/// Remove every object under a prefix (a replaced version, a failed upload). Best effort: what
/// is left is garbage, never served.
async fn delete_prefix(store: &dyn ObjectStore, prefix: &str) {
    let location = ObjectPath::from(prefix);
    let listed: Vec<_> = store.list(Some(&location)).collect().await;
    for meta in listed {
        match meta {
            Ok(meta) => {
                if let Err(e) = store.delete(&meta.location).await {
                    tracing::warn!(object = %meta.location, error = %e, "could not delete an old media object");
                }
            }
            Err(e) => tracing::warn!(prefix, error = %e, "could not list old media objects"),
        }
    }
}

/// The movie's media, for admins.
pub async fn media(state: &AppState, movie: Uuid) -> Result<MediaView, StreamingError> {
    let media = store::media(&state.db, movie).await?.ok_or(StreamingError::NotFound("media"))?;
    Ok(MediaView::from(&media))
}

/// A request for an object of a session's media.
pub struct StreamRequest<'a> {
    pub session: Uuid,
    pub object: &'a str,
    pub expires: Option<&'a str>,
    pub sig: Option<&'a str>,
    pub range: Option<&'a str>,
    pub if_range: Option<&'a str>,
    pub if_none_match: Option<&'a str>,
}

/// What a stream request gets.
pub enum Delivery {
    /// The playlist, every URL in it signed.
    Playlist(String),
    /// 304: the client has this version.
    NotModified(MediaObject),
    /// 416.
    Unsatisfiable(MediaObject),
    Bytes {
        object: MediaObject,
        span: Span,
        body: BoxStream<'static, std::io::Result<Bytes>>,
    },
}

/// The running session and the media version it plays, cached for a moment: a player fetches
/// a range or a segment every few seconds, and a session that ends is refused within that
/// moment.
pub async fn live(state: &AppState, id: Uuid) -> Result<(Session, Uuid), StreamingError> {
    if let Some(hit) = state.live.get(&id).await {
        return Ok(hit);
    }
    let session = store::session(&state.db, id).await?.ok_or(StreamingError::NotPlaying)?;
    let version = match session.media_version {
        Some(version) => version,
        None => {
            store::media(&state.db, session.movie_id).await?.ok_or(StreamingError::NotFound("media"))?.version
        }
    };
    state.live.insert(id, (session.clone(), version)).await;
    Ok((session, version))
}

/// Open an object of a session for a stream URL: the signature first, then the session, then
/// the object (of the version the session plays).
pub async fn open(state: &AppState, req: StreamRequest<'_>) -> Result<Delivery, StreamingError> {
    if !is_object_name(req.object) {
        return Err(StreamingError::NotFound("object"));
    }
    let now = state.clock.now_ms();
    let expires = state
        .signer
        .verify(req.session, req.object, req.expires, req.sig, now / 1000)
        .map_err(StreamingError::BadUrl)?;
    let (session, version) = live(state, req.session).await?;
    if session.status != Status::Active || session.last_seen_at < now - state.config.idle_ms {
        return Err(StreamingError::NotPlaying);
    }
    let object = store::media_object(&state.db, session.movie_id, version, req.object)
        .await?
        .ok_or(StreamingError::NotFound("object"))?;
    let location = ObjectPath::from(format!("{}/{}", version_prefix(session.movie_id, version), object.name));
    if object.name.ends_with(".m3u8") {
        let text = fetch_small(state.objects.store.as_ref(), &location, object.size_bytes).await?;
        let signed = hls::sign_playlist(&text, |name| state.signer.query(req.session, name, expires));
        return Ok(Delivery::Playlist(signed));
    }
    if req
        .if_none_match
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == object.etag || t.trim() == "*"))
    {
        return Ok(Delivery::NotModified(object));
    }
    let size = object.size_bytes.max(0) as u64;
    let span = ranges::span(req.range, req.if_range, &object.etag, size);
    let range = match span {
        Span::Unsatisfiable => return Ok(Delivery::Unsatisfiable(object)),
        Span::Whole => None,
        Span::Part { start, end } => Some(GetRange::Bounded(start..end + 1)),
    };
    let options = GetOptions { range, ..Default::default() };
    let result = match state.objects.store.get_opts(&location, options).await {
        Ok(result) => result,
        Err(object_store::Error::NotFound { .. }) => {
            tracing::error!(object = %location, "a media object is recorded but missing from the store");
            return Err(StreamingError::NotFound("object"));
        }
        Err(e) => return Err(store_failed(e)),
    };
    Ok(Delivery::Bytes { object, span, body: body_of(result).await.map_err(store_failed)? })
}

/// What a player reads per system call when the store is a directory: object_store's own
/// stream of a local file reads 8 KiB at a time, each on the blocking pool, which held ranges
/// to a few percent of what the disk cache gives.
const FILE_CHUNK: usize = 256 * 1024;

/// The bytes of a get: a local file read in large chunks, or the store's own stream (S3).
async fn body_of(
    result: object_store::GetResult,
) -> std::io::Result<BoxStream<'static, std::io::Result<Bytes>>> {
    use tokio::io::AsyncSeekExt;
    let range = result.range.clone();
    match result.payload {
        object_store::GetResultPayload::File(file, _) => {
            let mut file = tokio::fs::File::from_std(file);
            file.seek(std::io::SeekFrom::Start(range.start)).await?;
            let part = file.take(range.end.saturating_sub(range.start));
            Ok(tokio_util::io::ReaderStream::with_capacity(part, FILE_CHUNK).boxed())
        }
        object_store::GetResultPayload::Stream(stream) => {
            Ok(stream.map(|r| r.map_err(std::io::Error::other)).boxed())
        }
    }
}

/// A small object (a playlist) whole, as text.
async fn fetch_small(
    store: &dyn ObjectStore,
    location: &ObjectPath,
    size: i64,
) -> Result<String, StreamingError> {
    if size > 4 * 1024 * 1024 {
        return Err(StreamingError::Internal(anyhow::anyhow!("a playlist of {size} bytes")));
    }
    let bytes = store.get(location).await.map_err(store_failed)?.bytes().await.map_err(store_failed)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// How long ffmpeg may take to package one upload (it copies, it does not encode).
pub const PACKAGING_TIMEOUT: Duration = Duration::from_secs(600);
