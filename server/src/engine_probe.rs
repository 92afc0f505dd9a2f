//! Asks dockerd which engine it is, in the background, so that networks
//! are answered as that engine's built-in drivers answer from the first
//! one on (`spec::engine`). The plugin usually starts before dockerd: the
//! probe keeps asking, quickly until the first answer, then now and then
//! (an upgraded dockerd restarts while the plugin runs).

use crate::docker_api;
use std::path::PathBuf;
use std::time::Duration;
use switchyard_core::spec::{Engine, EngineMemory};
use tracing::{debug, info, warn};

const UNTIL_ANSWERED: Duration = Duration::from_secs(1);
const AFTERWARDS: Duration = Duration::from_secs(30);

pub fn spawn(socket: PathBuf, memory: EngineMemory) {
    let spawned = std::thread::Builder::new()
        .name("engine-probe".into())
        .spawn(move || {
            let mut answered = false;
            loop {
                match docker_api::version(&socket) {
                    Ok(v) => {
                        answered = true;
                        match Engine::from_version(&v) {
                            Some(e) if memory.tell(e) => info!(
                                docker_socket = %socket.display(),
                                version = %v,
                                "dockerd is Engine {v}: networks are answered as Engine {e}'s built-in drivers answer"
                            ),
                            Some(_) => {}
                            None => {
                                if memory.tell(Engine::Unknown) {
                                    info!(version = %v, "dockerd's version was never measured; the engine is read from its requests")
                                }
                            }
                        }
                    }
                    Err(e) => debug!(docker_socket = %socket.display(), "dockerd's API does not answer yet: {e}"),
                }
                std::thread::sleep(if answered { AFTERWARDS } else { UNTIL_ANSWERED });
            }
        });
    if let Err(e) = spawned {
        warn!("cannot start the engine probe ({e}); the engine is read from dockerd's requests");
    }
}
