//! Ends playback sessions that sent no heartbeat for the idle timeout (60 s), freeing their
//! stream slots and announcing `playback.stopped`, and deletes replaced media versions that no
//! session plays any more. Viewers never wait for it: a start already frees the user's own idle
//! sessions, and an idle session's URL stops working at once.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::{AppState, ops};

/// One pass; public so tests can run it.
pub async fn expire_idle(state: &AppState) -> anyhow::Result<usize> {
    let ended = ops::playback::expire_idle(state).await?;
    Ok(ended + ops::media::remove_retired(state).await?)
}

pub async fn run(state: AppState, every: Duration, shutdown: CancellationToken) {
    platform::periodic::every("expire idle playback", every, shutdown, || expire_idle(&state)).await;
}
