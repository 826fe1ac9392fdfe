//! Ends reconnect graces on time. Nothing else would: presence settles an expired grace only
//! when someone looks, and the engine must hear that the user is away — to fail open on what
//! the dropped session seemed to be looking at (SPEC §5.1) and to post left notices.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::live::hub::Hub;

/// Longest nap while a grace runs: the hub's clock need not be the wall clock (it jumps, and
/// tests move it by hand), so the task looks again at least this often.
const NAP: Duration = Duration::from_millis(100);

pub fn spawn(hub: Arc<Hub>) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match hub.next_grace_end() {
                None => hub.grace_started().await,
                Some(end) => {
                    let left = Duration::try_from(end - hub.now()).unwrap_or(Duration::ZERO);
                    tokio::time::sleep(left.min(NAP)).await;
                }
            }
            hub.end_graces();
        }
    })
}
