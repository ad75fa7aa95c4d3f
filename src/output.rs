//! The only module that writes result files. A run's files are written into a
//! temporary folder beside the output folder and moved into place only when all of
//! them are complete, so a failed run never leaves a half-written report.

use crate::error::{Error, Result};
use std::fs;
use std::path::{Path, PathBuf};

/// A named file's complete contents.
pub struct OutputFile {
    pub name: String,
    pub bytes: Vec<u8>,
}

impl OutputFile {
    pub fn new(name: impl Into<String>, bytes: Vec<u8>) -> OutputFile {
        OutputFile { name: name.into(), bytes }
    }
}

fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Write { path: path.to_path_buf(), source }
}

/// Writes every file to `out` atomically: all of them, or (on error) none. Other
/// files already in `out` are left alone.
pub fn write_all(out: &Path, files: &[OutputFile]) -> Result<()> {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).map_err(write_err(&parent))?;
    let dir_name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
    let staging = parent.join(format!(".{dir_name}.partial-{}", std::process::id()));
    let result = (|| {
        fs::create_dir_all(&staging).map_err(write_err(&staging))?;
        for f in files {
            let p = staging.join(&f.name);
            if let Some(dir) = p.parent() {
                fs::create_dir_all(dir).map_err(write_err(dir))?;
            }
            fs::write(&p, &f.bytes).map_err(write_err(&p))?;
        }
        fs::create_dir_all(out).map_err(write_err(out))?;
        for f in files {
            let target = out.join(&f.name);
            if let Some(dir) = target.parent() {
                fs::create_dir_all(dir).map_err(write_err(dir))?;
            }
            fs::rename(staging.join(&f.name), &target).map_err(write_err(&target))?;
        }
        Ok(())
    })();
    let _ = fs::remove_dir_all(&staging);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_land_together_and_no_staging_folder_remains() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("reports");
        fs::create_dir_all(&out).unwrap();
        fs::write(out.join("keep.png"), b"x").unwrap();
        write_all(&out, &[OutputFile::new("a.csv", b"1".to_vec()), OutputFile::new("b.json", b"{}".to_vec())]).unwrap();
        assert_eq!(fs::read(out.join("a.csv")).unwrap(), b"1");
        assert!(out.join("keep.png").exists(), "unrelated files are left alone");
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().filter_map(|e| e.ok()).collect();
        assert_eq!(leftovers.len(), 1, "only the output folder remains");
    }
}
