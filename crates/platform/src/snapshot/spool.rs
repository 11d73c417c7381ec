//! A table's rows as a gzip file of JSON Lines on local disk, written and read on a blocking
//! thread so compression never stalls the async workers, with the SHA-256 of the compressed
//! bytes (what the object store holds, so a copy can be checked without unpacking it).

use std::{
    fs::File,
    io::{BufRead, BufReader, BufWriter, Read, Write},
    path::{Path, PathBuf},
};

use anyhow::Context;
use aws_lc_rs::digest;
use flate2::{Compression, read::GzDecoder, write::GzEncoder};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::mpsc;

/// Lines are handed to the writer thread in chunks of about this many bytes.
const CHUNK: usize = 64 * 1024;

/// What was written: the counts and checksum the manifest keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Written {
    pub rows: u64,
    /// Compressed bytes.
    pub bytes: u64,
    /// Hex SHA-256 of the compressed bytes.
    pub sha256: String,
}

/// The SHA-256 of a stream of chunks, as they pass.
pub struct Hasher(digest::Context);

impl Default for Hasher {
    fn default() -> Self {
        Self(digest::Context::new(&digest::SHA256))
    }
}

impl Hasher {
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn hex(self) -> String {
        hex(self.0.finish().as_ref())
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A writer that hashes and counts what goes through it.
struct Counting<W> {
    inner: W,
    hasher: Hasher,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Rows in, a gzip JSON Lines file out.
pub struct TableWriter {
    chunks: mpsc::Sender<Vec<u8>>,
    /// `None` once it was waited for (after it stopped early).
    thread: Option<tokio::task::JoinHandle<anyhow::Result<(u64, String)>>>,
    buffer: Vec<u8>,
    rows: u64,
}

impl TableWriter {
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        let path = path.to_owned();
        // Two chunks in flight: reading the database and compressing overlap, and memory stays
        // bounded whatever the table's size.
        let (chunks, mut incoming) = mpsc::channel::<Vec<u8>>(2);
        let thread = tokio::task::spawn_blocking(move || {
            let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
            let counting = Counting { inner: BufWriter::new(file), hasher: Hasher::default(), bytes: 0 };
            let mut gz = GzEncoder::new(counting, Compression::fast());
            while let Some(chunk) = incoming.blocking_recv() {
                gz.write_all(&chunk)?;
            }
            let mut counting = gz.finish()?;
            counting.flush()?;
            counting.inner.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            Ok((counting.bytes, counting.hasher.hex()))
        });
        Ok(Self { chunks, thread: Some(thread), buffer: Vec::with_capacity(CHUNK + 4096), rows: 0 })
    }

    pub async fn row(&mut self, row: &Map<String, Value>) -> anyhow::Result<()> {
        serde_json::to_writer(&mut self.buffer, row)?;
        self.buffer.push(b'\n');
        self.rows += 1;
        if self.buffer.len() >= CHUNK {
            let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK + 4096));
            if self.chunks.send(chunk).await.is_err() {
                // The thread only stops early on an error (a full disk): that is the error.
                let ended = match self.thread.take() {
                    Some(thread) => thread.await.context("the spool writer panicked")?,
                    None => Ok((0, String::new())),
                };
                return Err(ended.err().unwrap_or_else(|| anyhow::anyhow!("the spool writer stopped")));
            }
        }
        Ok(())
    }

    pub async fn finish(self) -> anyhow::Result<Written> {
        let Self { chunks, thread, buffer, rows } = self;
        if !buffer.is_empty() {
            let _ = chunks.send(buffer).await;
        }
        drop(chunks);
        let thread = thread.context("the spool writer stopped")?;
        let (bytes, sha256) = thread.await.context("the spool writer panicked")??;
        Ok(Written { rows, bytes, sha256 })
    }
}

/// The rows of a gzip JSON Lines file, parsed on a blocking thread and handed over in batches.
pub fn read_rows(path: PathBuf, batch: usize) -> mpsc::Receiver<anyhow::Result<Vec<Map<String, Value>>>> {
    let (tx, rx) = mpsc::channel(2);
    tokio::task::spawn_blocking(move || {
        let result = (|| -> anyhow::Result<()> {
            let file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
            let lines = BufReader::with_capacity(CHUNK, GzDecoder::new(BufReader::new(file)));
            let mut rows = Vec::with_capacity(batch);
            for (n, line) in lines.lines().enumerate() {
                let line = line.with_context(|| format!("reading {}", path.display()))?;
                if line.is_empty() {
                    continue;
                }
                let row: Map<String, Value> = serde_json::from_str(&line)
                    .with_context(|| format!("line {} of {} is not a JSON object", n + 1, path.display()))?;
                rows.push(row);
                if rows.len() >= batch && tx.blocking_send(Ok(std::mem::take(&mut rows))).is_err() {
                    return Ok(());
                }
            }
            if !rows.is_empty() {
                let _ = tx.blocking_send(Ok(rows));
            }
            Ok(())
        })();
        if let Err(e) = result {
            let _ = tx.blocking_send(Err(e));
        }
    });
    rx
}

/// The SHA-256 and length of a file, read on a blocking thread.
pub async fn checksum(path: PathBuf) -> anyhow::Result<(u64, String)> {
    tokio::task::spawn_blocking(move || -> anyhow::Result<(u64, String)> {
        let mut file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let mut hasher = Hasher::default();
        let mut buf = vec![0; CHUNK];
        let mut bytes = 0u64;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                return Ok((bytes, hasher.hex()));
            }
            hasher.update(&buf[..n]);
            bytes += n as u64;
        }
    })
    .await
    .context("the checksum thread panicked")?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn rows_written_are_read_back_with_their_checksum() {
        let dir = std::env::temp_dir().join(format!("marquee-spool-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("a step of the test");
        let path = dir.join("t.jsonl.gz");
        let mut writer = TableWriter::create(&path).expect("a step of the test");
        for i in 0..5000i64 {
            let mut row = Map::new();
            row.insert("id".into(), Value::from(i));
            row.insert("note".into(), Value::from(format!("row {i} ünïcode \n newline")));
            writer.row(&row).await.expect("a step of the test");
        }
        let written = writer.finish().await.expect("a step of the test");
        assert_eq!(written.rows, 5000);
        assert_eq!(
            checksum(path.clone()).await.expect("a step of the test"),
            (written.bytes, written.sha256)
        );
        let mut rx = read_rows(path.clone(), 700);
        let mut back = Vec::new();
        while let Some(batch) = rx.recv().await {
            back.extend(batch.expect("a step of the test"));
        }
        assert_eq!(back.len(), 5000);
        assert_eq!(back[4999]["note"], Value::from("row 4999 ünïcode \n newline"));
        // A damaged file is an error, not fewer rows.
        let mut bytes = std::fs::read(&path).expect("a step of the test");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        std::fs::write(&path, bytes).expect("a step of the test");
        let mut rx = read_rows(path, 700);
        let mut failed = false;
        while let Some(batch) = rx.recv().await {
            failed |= batch.is_err();
        }
        assert!(failed, "a flipped byte is noticed");
        std::fs::remove_dir_all(&dir).ok();
    }
}
