//! HLS: packaging an uploaded MP4 into a playlist with segments (ffmpeg, without re-encoding),
//! and signing every URL of a playlist as it is served.

use std::{path::Path, time::Duration};

use anyhow::Context;

use crate::domain::is_object_name;

/// The playlist's name in a media version.
pub const PLAYLIST: &str = "index.m3u8";

/// Rewrite a playlist so that each URI in it (segment lines, and the `URI="..."` of tags such as
/// `EXT-X-MAP` and `EXT-X-KEY`) carries its own signature: `sign(name)` gives the query. A URI
/// that is not a plain object name of the same version (an absolute URL, a path) is dropped
/// rather than served unsigned or pointed outside the version.
pub fn sign_playlist(playlist: &str, sign: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(playlist.len() * 2);
    for line in playlist.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            out.push('\n');
            continue;
        }
        if trimmed.starts_with('#') {
            match sign_uri_attribute(trimmed, &sign) {
                Some(tag) => out.push_str(&tag),
                None => {
                    tracing::warn!(
                        tag = trimmed,
                        "dropping a playlist tag whose URI is not an object of the media"
                    );
                    continue;
                }
            }
        } else if is_object_name(trimmed) {
            out.push_str(trimmed);
            out.push('?');
            out.push_str(&sign(trimmed));
        } else {
            tracing::warn!(uri = trimmed, "dropping a playlist URI that is not an object of the media");
            continue;
        }
        out.push('\n');
    }
    out
}

/// A tag with its `URI="..."` signed; `None` when that URI is not an object of the media.
fn sign_uri_attribute(tag: &str, sign: &impl Fn(&str) -> String) -> Option<String> {
    let Some(at) = tag.find("URI=\"") else { return Some(tag.to_owned()) };
    let start = at + 5;
    let len = tag[start..].find('"')?;
    let uri = &tag[start..start + len];
    if !is_object_name(uri) {
        return None;
    }
    Some(format!("{}{uri}?{}{}", &tag[..start], sign(uri), &tag[start + len..]))
}

/// The total of a playlist's `#EXTINF` durations, in whole seconds (rounded up).
pub fn playlist_duration(playlist: &str) -> Option<i64> {
    let total: f64 = playlist
        .lines()
        .filter_map(|l| l.trim().strip_prefix("#EXTINF:"))
        .filter_map(|rest| rest.split(',').next()?.trim().parse::<f64>().ok())
        .filter(|d| d.is_finite() && *d >= 0.0)
        .sum();
    (total > 0.0).then(|| total.ceil() as i64)
}

/// The ffmpeg to package with: `MARQUEE_FFMPEG` (`off` for none), else `ffmpeg` when it is on
/// the PATH.
pub fn ffmpeg_from_settings(settings: &platform::Settings) -> Option<String> {
    match settings.get("MARQUEE_FFMPEG").map(str::trim) {
        Some("off" | "none" | "false" | "0") => None,
        Some(path) if !path.is_empty() => Some(path.to_owned()),
        _ => find_on_path("ffmpeg"),
    }
}

fn find_on_path(program: &str) -> Option<String> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .map(|p| p.display().to_string())
}

/// Package `input` (an MP4) into `out_dir/index.m3u8` and its segments, copying the streams as
/// they are (no re-encoding: seconds, not minutes, even for a long film). Returns the playlist.
pub async fn package(
    ffmpeg: &str,
    input: &Path,
    out_dir: &Path,
    timeout: Duration,
) -> anyhow::Result<String> {
    let mut command = tokio::process::Command::new(ffmpeg);
    command
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(input)
        .args(["-map", "0:v?", "-map", "0:a?", "-c", "copy", "-f", "hls", "-hls_time", "6"])
        .args(["-hls_playlist_type", "vod", "-hls_segment_filename"])
        .arg(out_dir.join("seg%05d.ts"))
        .arg(out_dir.join(PLAYLIST))
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let child = command.spawn().with_context(|| format!("starting {ffmpeg}"))?;
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| anyhow::anyhow!("ffmpeg took longer than {timeout:?}"))??;
    anyhow::ensure!(
        output.status.success(),
        "ffmpeg failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    tokio::fs::read_to_string(out_dir.join(PLAYLIST)).await.context("reading the playlist ffmpeg wrote")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAYLIST_TEXT: &str = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:6\n\
        #EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:6.0,\nseg00000.ts\n#EXTINF:4.5,\nseg00001.ts\n\
        #EXTINF:2.0,\nhttps://elsewhere.example/x.ts\n#EXTINF:1.0,\n../../other/seg.ts\n\
        #EXT-X-KEY:METHOD=AES-128,URI=\"https://keys.example/k\"\n#EXT-X-ENDLIST\n";

    #[test]
    fn every_uri_of_a_playlist_is_signed_and_foreign_ones_are_dropped() {
        let signed = sign_playlist(PLAYLIST_TEXT, |name| format!("sig-of-{name}"));
        assert!(signed.contains("seg00000.ts?sig-of-seg00000.ts\n"), "{signed}");
        assert!(signed.contains("seg00001.ts?sig-of-seg00001.ts\n"));
        assert!(signed.contains("#EXT-X-MAP:URI=\"init.mp4?sig-of-init.mp4\""));
        assert!(!signed.contains("elsewhere"), "{signed}");
        assert!(!signed.contains("other/seg"));
        assert!(!signed.contains("keys.example"), "a tag pointing elsewhere is dropped too");
        assert!(signed.starts_with("#EXTM3U\n") && signed.contains("#EXT-X-ENDLIST"));
    }

    #[test]
    fn a_playlist_says_how_long_it_runs() {
        assert_eq!(playlist_duration(PLAYLIST_TEXT), Some(14));
        assert_eq!(playlist_duration("#EXTM3U\n"), None);
        assert_eq!(playlist_duration("#EXTINF:nan,\n#EXTINF:-3,\n"), None);
    }
}
