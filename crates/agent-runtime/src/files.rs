//! The user's own files (call history, favourites): readable by them alone, and replaced whole
//! without ever leaving half a file behind.

use std::io::Write as _;
use std::path::Path;

/// Opens files for the user alone (0600 on Unix).
pub(crate) fn private(options: &mut std::fs::OpenOptions) -> &mut std::fs::OpenOptions {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(options, 0o600);
    options
}

/// Makes `dir` (and its parents) for the user alone (0700 on Unix) when it is new.
pub(crate) fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Replaces `path` with `bytes`: written to `<path>.partial`, synced, then renamed over it, so
/// a crash leaves the old file or the new one.
pub(crate) fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        private_dir(dir)?;
    }
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = std::path::PathBuf::from(partial);
    let mut options = std::fs::OpenOptions::new();
    options.create(true).write(true).truncate(true);
    let mut file = private(&mut options).open(&partial)?;
    file.write_all(bytes).and_then(|()| file.sync_all())?;
    std::fs::rename(&partial, path)
}
