//! `iggy-warden watch`: the sidecar (stub, being written).

use crate::config::DirArgs;

#[derive(clap::Args, Debug)]
pub struct WatchArgs {
    #[command(flatten)]
    pub dirs: DirArgs,
}

pub fn run(_args: &WatchArgs) -> anyhow::Result<u8> {
    anyhow::bail!("watch is not implemented yet")
}
