//! Small filesystem helpers.

use std::io::Write;
use std::path::Path;

/// Writes a file readable only by its owner (0600), durably: the contents are fsynced before
/// returning, because these files hold keys the server cannot regenerate.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}
