//! Writing a received blob to a path ([`Blob::to_file`]): a regular file is
//! replaced whole or not at all (a temporary file beside it, renamed over it
//! once the blob is verified), anything else is written straight through, and
//! nothing the call did not create is ever removed.

use std::fs::Permissions;
use std::io;
use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;
use tonic::{Code, Status};

use super::Blob;

impl Blob {
    /// Writes the whole blob to `path` and returns its length, the way curl and
    /// rsync users expect.
    ///
    /// - A regular file, or a path where nothing is yet, is written to a new
    ///   temporary file beside it (`.<name>.<random>.part`, in the same
    ///   directory so that the rename is atomic), flushed to disk (`fsync`) and
    ///   renamed over `path` only once the whole blob came and was verified.
    ///   Until then an existing file keeps its old content; on any error (or
    ///   when this future is dropped) the temporary file is removed and `path`
    ///   is as it was. A replaced file keeps its permissions (and its owner
    ///   and group, where this process may set them); a new one gets those
    ///   `File::create` gives. A symbolic link is followed: the file it names
    ///   is replaced and the link stays (another hard link to the old file
    ///   keeps the old content). An existing file this process may not write,
    ///   or one in a directory it may not write (no temporary file can go
    ///   there), is refused before any byte is read, and left as it is.
    /// - Anything else, decided after following symbolic links (a device such
    ///   as `/dev/null`, a FIFO, a socket), is opened and written straight
    ///   through: no temporary file, no rename, no `fsync`. A FIFO is opened
    ///   as a shell's `>` opens it: this waits for a reader.
    ///
    /// Nothing is ever removed that this call did not create. Every error
    /// names `path`: the blob's own status when the transfer failed
    /// (`DATA_LOSS`, `DEADLINE_EXCEEDED`, the peer's status...), otherwise the
    /// file's error as `PERMISSION_DENIED`, `NOT_FOUND` (no such directory),
    /// `RESOURCE_EXHAUSTED` (disk full), `FAILED_PRECONDITION` (a directory, a
    /// read-only file system), `INVALID_ARGUMENT` (a path that names no file)
    /// or `INTERNAL`.
    pub async fn to_file(mut self, path: impl AsRef<Path>) -> Result<u64, Status> {
        let path = path.as_ref();
        let written = match target(path).await {
            Ok(Target::Replace(file)) => self.replace(file).await,
            Ok(Target::Through) => self.write_through(path).await,
            Err(error) => Err(error),
        };
        written.map_err(|error| file_status(path, &error))
    }

    /// Writes the blob to a temporary file beside `file` and renames it over
    /// `file` once the blob is whole.
    async fn replace(&mut self, file: Replaced) -> io::Result<u64> {
        let Replaced {
            path,
            permissions,
            #[cfg(unix)]
            owner,
        } = file;
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        let name = path
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "it names no file"))?;
        // Short enough that the temporary name fits where the name does.
        let prefix: String = format!(".{}", name.to_string_lossy())
            .chars()
            .take(64)
            .chain(['.'])
            .collect();
        let (temp_file, temp) = tokio::task::spawn_blocking(move || {
            let mut builder = tempfile::Builder::new();
            builder.prefix(&prefix).suffix(".part");
            #[cfg(unix)]
            if permissions.is_none() {
                // What `File::create` gives (less the umask), not tempfile's 0600.
                use std::os::unix::fs::PermissionsExt as _;
                builder.permissions(Permissions::from_mode(0o666));
            }
            let temp = builder.tempfile_in(&dir).map_err(|error| {
                // Without tempfile's "at path" (of a name never created).
                let text = error.to_string();
                let cause = text
                    .split_once(" at path ")
                    .map_or(&*text, |(cause, _)| cause);
                io::Error::new(
                    error.kind(),
                    format!(
                        "cannot create a temporary file in {}: {cause}",
                        dir.display()
                    ),
                )
            })?;
            #[cfg(unix)]
            if let Some((uid, gid)) = owner {
                // Where this process may (root, or its own file and group);
                // otherwise the new file is its own, as a new file would be.
                let _ = std::os::unix::fs::fchown(temp.as_file(), Some(uid), Some(gid));
            }
            // After the owner: changing it clears set-user-ID bits.
            if let Some(permissions) = permissions {
                temp.as_file().set_permissions(permissions)?;
            }
            Ok::<_, io::Error>(temp.into_parts())
        })
        .await
        .map_err(io::Error::other)??;
        let mut temp_file = tokio::fs::File::from_std(temp_file);
        let written = async {
            // Straight from the decompressed blocks: no copy into a buffer between.
            let written = tokio::io::copy_buf(self, &mut temp_file).await?;
            temp_file.flush().await?;
            temp_file.sync_all().await?;
            Ok(written)
        }
        .await;
        drop(temp_file);
        // Renamed, or removed (off the runtime's threads either way).
        tokio::task::spawn_blocking(move || match written {
            Ok(written) => temp
                .persist(&path)
                .map(|()| written)
                .map_err(|error| error.error),
            Err(error) => {
                drop(temp.close());
                Err(error)
            }
        })
        .await
        .map_err(io::Error::other)?
    }

    /// Writes the blob to what is at `path` (a device, a FIFO) as it is.
    async fn write_through(&mut self, path: &Path) -> io::Result<u64> {
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .await
            .map_err(|error| io::Error::new(error.kind(), format!("cannot open it: {error}")))?;
        if file.metadata().await?.is_file() {
            // It was replaced by a regular file since it was looked at:
            // writing into that in place could leave it half written.
            return Err(io::Error::other(
                "it became a regular file while it was opened",
            ));
        }
        let written = tokio::io::copy_buf(self, &mut file).await?;
        file.flush().await?;
        Ok(written)
    }
}

/// Where [`Blob::to_file`] writes.
enum Target {
    /// A regular file or nothing yet: replaced by a temporary file.
    Replace(Replaced),
    /// Anything else (a device, a FIFO, a socket): written as it is.
    Through,
}

/// The file a blob replaces (or creates).
struct Replaced {
    /// Symbolic links resolved: the rename replaces the file, not a link.
    path: PathBuf,
    /// An existing file's, for the new one.
    permissions: Option<Permissions>,
    /// An existing file's owner and group, for the new one.
    #[cfg(unix)]
    owner: Option<(u32, u32)>,
}

/// What is at `path` decides how a blob is written there.
async fn target(path: &Path) -> io::Result<Target> {
    match tokio::fs::metadata(path).await {
        Ok(meta) if meta.is_file() => {
            let resolved = tokio::fs::canonicalize(path).await?;
            // Refuse what this process may not write, as curl would, before
            // anything is read. (Opened without truncation: nothing changes.)
            match tokio::fs::OpenOptions::new()
                .write(true)
                .open(&resolved)
                .await
            {
                // A program running from it: the rename leaves it its file.
                Err(error) if error.kind() == io::ErrorKind::ExecutableFileBusy => {}
                Err(error) => {
                    return Err(io::Error::new(
                        error.kind(),
                        format!("cannot open it for writing: {error}; it was left as it was"),
                    ));
                }
                Ok(_) => {}
            }
            Ok(Target::Replace(Replaced {
                path: resolved,
                permissions: Some(meta.permissions()),
                #[cfg(unix)]
                owner: Some({
                    use std::os::unix::fs::MetadataExt as _;
                    (meta.uid(), meta.gid())
                }),
            }))
        }
        Ok(meta) if meta.is_dir() => Err(io::Error::new(
            io::ErrorKind::IsADirectory,
            "it is a directory",
        )),
        Ok(_) => Ok(Target::Through),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            if tokio::fs::symlink_metadata(path).await.is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    "it is a symbolic link to nothing",
                ));
            }
            Ok(Target::Replace(Replaced {
                path: path.to_owned(),
                permissions: None,
                #[cfg(unix)]
                owner: None,
            }))
        }
        Err(error) => Err(error),
    }
}

/// The status of a failed [`Blob::to_file`], naming `path`: the blob's own
/// when the transfer failed, one for the file's error otherwise.
fn file_status(path: &Path, error: &io::Error) -> Status {
    let (code, message) = match error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<Status>())
    {
        Some(status) => (status.code(), status.message().to_owned()),
        None => (file_code(error.kind()), error.to_string()),
    };
    Status::new(
        code,
        format!("writing the blob to {}: {message}", path.display()),
    )
}

/// The code of a file's error.
fn file_code(kind: io::ErrorKind) -> Code {
    use io::ErrorKind as Kind;
    match kind {
        Kind::PermissionDenied => Code::PermissionDenied,
        Kind::InvalidInput => Code::InvalidArgument,
        Kind::NotFound => Code::NotFound,
        Kind::StorageFull | Kind::QuotaExceeded | Kind::FileTooLarge => Code::ResourceExhausted,
        Kind::IsADirectory | Kind::NotADirectory | Kind::ReadOnlyFilesystem => {
            Code::FailedPrecondition
        }
        _ => Code::Internal,
    }
}
