//! Colleagues' 48×48 profile photos, cached on disk so that the colleagues panel does not ask
//! Microsoft Graph for the same pictures at every start.
//!
//! One file per user under the cache directory (`~/.cache/switchboard/photos` on Linux, the
//! OS cache location elsewhere), named by the user's object id: `<id>.jpg` (or `.png`) for a
//! photo, `<id>.none` when Graph said the user has none, so that is not asked again either.
//! An entry is fresh for [`PhotoCache::max_age`] (a day by default); a stale photo is still
//! shown when Graph cannot be reached. Files are written to a temporary name and renamed, so
//! a crash never leaves half a picture. Object ids come from the network: anything that is
//! not a GUID is refused before it becomes a path.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use graph_client::Token;
use graph_client::graph::{Graph, GraphError};

/// The largest photo kept; a 48×48 JPEG is 1–3 KB.
pub const MAX_PHOTO_BYTES: usize = 256 * 1024;

/// The image types Graph serves profile photos in, with the file extension each is kept as.
const EXTENSIONS: [(&str, &str); 2] = [("image/jpeg", "jpg"), ("image/png", "png")];
const NO_PHOTO: &str = "none";

/// What the cache holds for one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cached {
    /// A photo file; `fresh` is false once it is older than the cache's maximum age.
    Photo { path: PathBuf, fresh: bool },
    /// Graph said this user has no photo (and said so recently: stale markers read as
    /// [`Cached::Unknown`]).
    NoPhoto,
    /// Nothing, or only a stale "no photo".
    Unknown,
}

/// Why a photo could not be looked up or kept.
#[derive(Debug, thiserror::Error)]
pub enum PhotoError {
    #[error("'{0}' is not a Microsoft Entra object id")]
    BadId(String),
    #[error("the photo is {0} bytes; at most {MAX_PHOTO_BYTES} are kept")]
    TooLarge(usize),
    #[error("the photo's type '{0}' is not an image Switchboard shows")]
    NotAnImage(String),
    #[error("the photo cache at {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Graph(#[from] GraphError),
}

/// The on-disk photo cache.
#[derive(Debug, Clone)]
pub struct PhotoCache {
    dir: PathBuf,
    max_age: Duration,
}

impl PhotoCache {
    /// A cache in `dir` (created when the first photo is stored).
    pub fn new(dir: impl Into<PathBuf>, max_age: Duration) -> Self {
        Self { dir: dir.into(), max_age }
    }

    /// The OS cache location, `…/switchboard/photos`, with entries fresh for a day.
    pub fn system() -> Option<Self> {
        let dirs = crate::project_dirs()?;
        Some(Self::new(dirs.cache_dir().join("photos"), Duration::from_secs(24 * 3600)))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// What is cached for `user_id`, judged at `now`.
    ///
    /// # Errors
    /// [`PhotoError::BadId`] for anything but a GUID.
    pub fn lookup(&self, user_id: &str, now: SystemTime) -> Result<Cached, PhotoError> {
        let id = checked_id(user_id)?;
        for (_, extension) in EXTENSIONS {
            let path = self.dir.join(format!("{id}.{extension}"));
            if let Some(age) = age(&path, now) {
                return Ok(Cached::Photo { path, fresh: age <= self.max_age });
            }
        }
        let marker = self.dir.join(format!("{id}.{NO_PHOTO}"));
        Ok(match age(&marker, now) {
            Some(age) if age <= self.max_age => Cached::NoPhoto,
            _ => Cached::Unknown,
        })
    }

    /// Keeps what Graph answered for `user_id`: a photo and its content type, or `None` for
    /// "no photo". Replaces whatever was cached; returns the photo's path.
    ///
    /// # Errors
    /// A bad id, a photo too large or not an image, or the file system.
    pub fn store(
        &self,
        user_id: &str,
        photo: Option<(&[u8], &str)>,
    ) -> Result<Option<PathBuf>, PhotoError> {
        let id = checked_id(user_id)?;
        let (extension, bytes) = match photo {
            Some((bytes, content_type)) => {
                if bytes.len() > MAX_PHOTO_BYTES {
                    return Err(PhotoError::TooLarge(bytes.len()));
                }
                let mime = content_type.split(';').next().unwrap_or_default().trim();
                let extension = EXTENSIONS
                    .iter()
                    .find(|(known, _)| known.eq_ignore_ascii_case(mime))
                    .map(|(_, extension)| *extension)
                    .ok_or_else(|| PhotoError::NotAnImage(content_type.to_owned()))?;
                (extension, bytes)
            }
            None => (NO_PHOTO, &[][..]),
        };
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| PhotoError::Io { path, source }
        };
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let path = self.dir.join(format!("{id}.{extension}"));
        // Unique per process and write, so concurrent lookups of one user never share it.
        static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let temporary = self.dir.join(format!(".{id}.{}.{n}.tmp", std::process::id()));
        std::fs::write(&temporary, bytes).map_err(io(&temporary))?;
        std::fs::rename(&temporary, &path).map_err(io(&path))?;
        // The other forms of this entry are out of date now.
        for other in EXTENSIONS.iter().map(|(_, e)| *e).chain([NO_PHOTO]) {
            if other != extension {
                let _ = std::fs::remove_file(self.dir.join(format!("{id}.{other}")));
            }
        }
        Ok(photo.map(|_| path))
    }

    /// The photo of `user_id`: from the cache when fresh, else from Graph (then cached). When
    /// Graph fails, a stale photo is better than none; without one, the error is returned.
    ///
    /// # Errors
    /// A bad id, or Graph's failure when nothing at all is cached.
    pub async fn photo(
        &self,
        graph: &Graph,
        token: &Token,
        user_id: &str,
    ) -> Result<Option<PathBuf>, PhotoError> {
        let stale = match self.lookup(user_id, SystemTime::now())? {
            Cached::Photo { path, fresh: true } => return Ok(Some(path)),
            Cached::NoPhoto => return Ok(None),
            Cached::Photo { path, fresh: false } => Some(path),
            Cached::Unknown => None,
        };
        match graph.photo(token, user_id).await {
            Ok(photo) => {
                let photo = photo.as_ref().map(|(bytes, kind)| (bytes.as_slice(), kind.as_str()));
                self.store(user_id, photo)
            }
            Err(error) => match stale {
                Some(path) => {
                    tracing::debug!(%error, "showing a stale photo");
                    Ok(Some(path))
                }
                None => Err(error.into()),
            },
        }
    }

    /// Deletes entries not refreshed for `older_than` (colleagues who left, searches long
    /// past) and stray temporary files; returns how many went.
    ///
    /// # Errors
    /// The directory could not be read (a missing one is empty).
    pub fn prune(&self, older_than: Duration, now: SystemTime) -> Result<usize, PhotoError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(source) => return Err(PhotoError::Io { path: self.dir.clone(), source }),
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            if age(&path, now).is_some_and(|age| age > older_than)
                && std::fs::remove_file(&path).is_ok()
            {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// The id when it is a GUID (the form Entra object ids take), lowercased.
fn checked_id(id: &str) -> Result<String, PhotoError> {
    let groups: Vec<&str> = id.split('-').collect();
    let lengths_ok = groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12]);
    if lengths_ok && groups.iter().all(|g| g.chars().all(|c| c.is_ascii_hexdigit())) {
        Ok(id.to_ascii_lowercase())
    } else {
        Err(PhotoError::BadId(id.chars().take(64).collect()))
    }
}

/// How old the file is (by modification time), or `None` when it is not there.
fn age(path: &Path, now: SystemTime) -> Option<Duration> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(now.duration_since(modified).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "6E7B768E-07E2-4810-8459-485F84F8F204";
    const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, 0xFF, 0xD9];

    fn cache(test: &str) -> PhotoCache {
        let dir =
            std::env::temp_dir().join(format!("switchboard-photos-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        PhotoCache::new(dir, Duration::from_secs(3600))
    }

    #[test]
    fn photos_and_no_photo_are_kept_and_age() {
        let cache = cache("age");
        let now = SystemTime::now();
        assert_eq!(cache.lookup(ID, now).expect("lookup"), Cached::Unknown);
        let path = cache.store(ID, Some((JPEG, "image/jpeg"))).expect("stored").expect("a path");
        assert_eq!(
            path.file_name().and_then(|n| n.to_str()),
            Some("6e7b768e-07e2-4810-8459-485f84f8f204.jpg")
        );
        assert_eq!(std::fs::read(&path).expect("read"), JPEG);
        assert_eq!(
            cache.lookup(ID, now).expect("lookup"),
            Cached::Photo { path: path.clone(), fresh: true }
        );
        let later = now + Duration::from_secs(7200);
        assert_eq!(
            cache.lookup(ID, later).expect("lookup"),
            Cached::Photo { path: path.clone(), fresh: false }
        );

        // The user removed their photo: the marker replaces the picture, and goes stale too.
        assert_eq!(cache.store(ID, None).expect("stored"), None);
        assert!(!path.exists());
        assert_eq!(cache.lookup(ID, now).expect("lookup"), Cached::NoPhoto);
        assert_eq!(cache.lookup(ID, later).expect("lookup"), Cached::Unknown);

        // A PNG replaces the marker; nothing temporary is left behind.
        let png = cache.store(ID, Some((b"\x89PNG", "image/png; charset=binary"))).expect("stored");
        assert!(png.is_some_and(|p| p.extension().is_some_and(|e| e == "png")));
        let names: Vec<String> = std::fs::read_dir(cache.dir())
            .expect("dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert_eq!(cache.prune(Duration::from_secs(60), later).expect("prune"), 1);
        assert_eq!(cache.lookup(ID, now).expect("lookup"), Cached::Unknown);
        let _ = std::fs::remove_dir_all(cache.dir());
    }

    #[test]
    fn ids_from_the_network_never_become_other_paths() {
        let cache = cache("ids");
        for bad in [
            "../../etc/passwd",
            "",
            "6e7b768e-07e2-4810-8459-485f84f8f20/",
            "a/b",
            "6e7b768e07e248108459485f84f8f204",
            "6e7b768e-07e2-4810-8459-485f84f8f2zz",
        ] {
            assert!(matches!(cache.store(bad, None), Err(PhotoError::BadId(_))), "{bad}");
            assert!(
                matches!(cache.lookup(bad, SystemTime::now()), Err(PhotoError::BadId(_))),
                "{bad}"
            );
        }
        assert!(!cache.dir().exists());
    }

    #[test]
    fn only_small_images_are_kept() {
        let cache = cache("kinds");
        assert!(matches!(
            cache.store(ID, Some((b"<html>", "text/html"))),
            Err(PhotoError::NotAnImage(_))
        ));
        let huge = vec![0u8; MAX_PHOTO_BYTES + 1];
        assert!(matches!(
            cache.store(ID, Some((&huge, "image/jpeg"))),
            Err(PhotoError::TooLarge(_))
        ));
        assert_eq!(cache.lookup(ID, SystemTime::now()).expect("lookup"), Cached::Unknown);
    }
}
