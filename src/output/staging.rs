//! The only module that writes result files. A run's files are written into a
//! temporary folder beside the output folder and moved into place only when all of
//! them are complete, so a failed run never leaves a half-written report.
//!
//! Large tables are not held in memory: they are rendered straight into their staged
//! file, several at a time (one per core).

use crate::error::{Error, Result};
use rayon::prelude::*;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Writes a file's contents into the given writer.
pub type Render<'a> = Box<dyn FnOnce(&mut dyn Write) -> io::Result<()> + Send + 'a>;

/// What goes into a file: bytes already made, or a renderer run while writing.
pub enum Contents<'a> {
    Bytes(Vec<u8>),
    Render(Render<'a>),
}

/// A named output file.
pub struct OutputFile<'a> {
    pub name: String,
    pub contents: Contents<'a>,
}

impl<'a> OutputFile<'a> {
    pub fn new(name: impl Into<String>, bytes: Vec<u8>) -> OutputFile<'a> {
        OutputFile { name: name.into(), contents: Contents::Bytes(bytes) }
    }

    /// A file rendered when it is written (for the tables with a row per episode).
    pub fn render(
        name: impl Into<String>,
        render: impl FnOnce(&mut dyn Write) -> io::Result<()> + Send + 'a,
    ) -> OutputFile<'a> {
        OutputFile { name: name.into(), contents: Contents::Render(Box::new(render)) }
    }
}

/// Runs a renderer into memory (for callers that need the bytes themselves).
pub fn to_bytes(render: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Vec<u8> {
    let mut bytes = Vec::new();
    render(&mut bytes).expect("writing to memory cannot fail");
    bytes
}

fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Write { path: path.to_path_buf(), source }
}

/// The tables' writer (`tables::CsvOut`) hands over chunks of at least this size, which a
/// buffer no larger passes straight to the file instead of copying them once more.
const FILE_BUFFER: usize = crate::output::tables::CSV_CHUNK;

/// The staging folder's subfolder for the files of an earlier run that this one replaces.
const REPLACED: &str = ".replaced";

fn write_one(path: &Path, contents: Contents) -> Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(write_err(dir))?;
    }
    match contents {
        Contents::Bytes(bytes) => fs::write(path, bytes).map_err(write_err(path)),
        Contents::Render(render) => {
            let file = fs::File::create(path).map_err(write_err(path))?;
            let mut w = BufWriter::with_capacity(FILE_BUFFER, file);
            render(&mut w).and_then(|()| w.flush()).map_err(write_err(path))
        }
    }
}

/// A run's files on their way to `out`: written into a temporary folder beside it (by
/// several threads, as results become ready), then moved into place together by
/// [`Staging::commit`]. Dropped without a commit, it removes what it wrote.
pub struct Staging {
    out: PathBuf,
    dir: PathBuf,
    names: std::sync::Mutex<Vec<String>>,
    /// Which files are written at all ([`Staging::only`]); every file when `None`.
    keep: Option<fn(&str) -> bool>,
}

impl Staging {
    pub fn new(out: &Path) -> Result<Staging> {
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&parent).map_err(write_err(&parent))?;
        let dir_name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
        let dir = parent.join(format!(".{dir_name}.partial-{}", std::process::id()));
        fs::create_dir_all(&dir).map_err(write_err(&dir))?;
        Ok(Staging { out: out.to_path_buf(), dir, names: Default::default(), keep: None })
    }

    /// Writes only the files whose names `keep` accepts; the others are not rendered at
    /// all (published results leave out the tables of single clients).
    pub fn only(mut self, keep: fn(&str) -> bool) -> Staging {
        self.keep = Some(keep);
        self
    }

    fn kept(&self, name: &str) -> bool {
        self.keep.is_none_or(|keep| keep(name))
    }

    /// Writes files into the staging folder, several at once.
    pub fn write(&self, files: Vec<OutputFile>) -> Result<()> {
        let files: Vec<OutputFile> = files.into_iter().filter(|f| self.kept(&f.name)).collect();
        self.names.lock().expect("names lock").extend(files.iter().map(|f| f.name.clone()));
        files.into_par_iter().try_for_each(|f| write_one(&self.dir.join(&f.name), f.contents))
    }

    /// Writes several files into the staging folder at once, from one renderer that
    /// writes to all of them (`names` and the writers in the same order).
    pub fn write_together(
        &self,
        names: &[&str],
        render: impl FnOnce(&mut [&mut dyn Write]) -> io::Result<()>,
    ) -> Result<()> {
        let kept: Vec<&str> = names.iter().copied().filter(|n| self.kept(n)).collect();
        self.names.lock().expect("names lock").extend(kept.iter().map(|n| n.to_string()));
        let paths: Vec<PathBuf> = names.iter().map(|n| self.dir.join(n)).collect();
        // A file that is not kept is rendered into nothing.
        let mut files: Vec<Option<BufWriter<fs::File>>> = Vec::new();
        for (name, path) in names.iter().zip(&paths) {
            if !self.kept(name) {
                files.push(None);
                continue;
            }
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir).map_err(write_err(dir))?;
            }
            let file = fs::File::create(path).map_err(write_err(path))?;
            files.push(Some(BufWriter::with_capacity(FILE_BUFFER, file)));
        }
        let mut sinks: Vec<io::Sink> = names.iter().map(|_| io::sink()).collect();
        let mut writers: Vec<&mut dyn Write> = files
            .iter_mut()
            .zip(sinks.iter_mut())
            .map(|(f, sink)| match f {
                Some(f) => f as &mut dyn Write,
                None => sink as &mut dyn Write,
            })
            .collect();
        // An error is reported against the first file: the renderer does not say which failed.
        render(&mut writers).map_err(write_err(&paths[0]))?;
        for (file, path) in files.iter_mut().zip(&paths) {
            if let Some(file) = file {
                file.flush().map_err(write_err(path))?;
            }
        }
        Ok(())
    }

    /// Moves every staged file into `out`. Other files already in `out` are left alone.
    ///
    /// A file of an earlier run is first moved aside into the staging folder, and deleted
    /// with it: renaming over it made ext4 (`auto_da_alloc`) write out the new file's
    /// blocks inside the rename, about 0.5 s of a 10 M-row run spent waiting on the disk.
    ///
    /// If a file cannot be moved into place, the files already moved go back into the
    /// staging folder and the earlier run's files back where they were, so that `out`
    /// holds one run's results, never a mixture.
    pub fn commit(self) -> Result<()> {
        fs::create_dir_all(&self.out).map_err(write_err(&self.out))?;
        let names = self.names.lock().expect("names lock");
        // The files moved into place so far, each with where its predecessor was put.
        let mut done: Vec<(&String, Option<PathBuf>)> = Vec::new();
        let mut result = Ok(());
        for (i, name) in names.iter().enumerate() {
            match self.place(i, name) {
                Ok(aside) => done.push((name, aside)),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if result.is_err() {
            for (name, aside) in done.iter().rev() {
                let target = self.out.join(name);
                // Back into the staging folder (deleted with it); the earlier file back in place.
                let _ = fs::rename(&target, self.dir.join(name));
                if let Some(aside) = aside {
                    let _ = fs::rename(aside, &target);
                }
            }
        }
        result
    }

    /// Moves the `i`-th staged file `name` into place, and says where the earlier run's
    /// file of that name was put aside. On failure the earlier file is already back.
    fn place(&self, i: usize, name: &str) -> Result<Option<PathBuf>> {
        let target = self.out.join(name);
        if let Some(dir) = target.parent() {
            fs::create_dir_all(dir).map_err(write_err(dir))?;
        }
        // Numbered, since names may sit in subfolders.
        let replaced = self.dir.join(REPLACED);
        let aside = replaced.join(i.to_string());
        let moved_aside = target.is_file() && {
            fs::create_dir_all(&replaced).map_err(write_err(&replaced))?;
            fs::rename(&target, &aside).is_ok()
        };
        if let Err(e) = fs::rename(self.dir.join(name), &target) {
            if moved_aside {
                // Put the earlier file back rather than lose it with the staging folder.
                let _ = fs::rename(&aside, &target);
            }
            return Err(write_err(&target)(e));
        }
        Ok(moved_aside.then_some(aside))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Writes every file to `out` atomically: all of them, or (on error) none. Other
/// files already in `out` are left alone.
pub fn write_all(out: &Path, files: Vec<OutputFile>) -> Result<()> {
    let staging = Staging::new(out)?;
    staging.write(files)?;
    staging.commit()
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
        let rendered = OutputFile::render("c/d.csv", |w| w.write_all(b"2"));
        write_all(&out, vec![OutputFile::new("a.csv", b"1".to_vec()), rendered]).unwrap();
        assert_eq!(fs::read(out.join("a.csv")).unwrap(), b"1");
        assert_eq!(fs::read(out.join("c/d.csv")).unwrap(), b"2");
        assert!(out.join("keep.png").exists(), "unrelated files are left alone");
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().filter_map(|e| e.ok()).collect();
        assert_eq!(leftovers.len(), 1, "only the output folder remains");
    }

    #[test]
    fn an_earlier_run_s_files_are_replaced_or_kept_whole() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("reports");
        write_all(&out, vec![OutputFile::new("a.csv", b"old".to_vec()), OutputFile::new("c/d.csv", b"old".to_vec())])
            .unwrap();
        write_all(&out, vec![OutputFile::new("a.csv", b"new".to_vec()), OutputFile::new("c/d.csv", b"new".to_vec())])
            .unwrap();
        assert_eq!(fs::read(out.join("a.csv")).unwrap(), b"new");
        assert_eq!(fs::read(out.join("c/d.csv")).unwrap(), b"new");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "the replaced files went with the staging folder");
        // A staged file that cannot be moved into place: the earlier one stays.
        let staging = Staging::new(&out).unwrap();
        staging.write(vec![OutputFile::new("a.csv", b"newer".to_vec())]).unwrap();
        fs::remove_file(staging.dir.join("a.csv")).unwrap();
        assert!(staging.commit().is_err());
        assert_eq!(fs::read(out.join("a.csv")).unwrap(), b"new");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_file_that_cannot_be_placed_puts_back_those_placed_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("reports");
        write_all(&out, vec![OutputFile::new("a.csv", b"old".to_vec()), OutputFile::new("b.csv", b"old".to_vec())])
            .unwrap();
        // `c/d.csv` cannot go in: `c` is a file. `a.csv` and `b.csv` went in before it.
        fs::write(out.join("c"), b"mine").unwrap();
        let files = ["a.csv", "b.csv", "new.csv", "c/d.csv"].map(|n| OutputFile::new(n, b"new".to_vec()));
        let err = write_all(&out, files.into()).unwrap_err();
        assert!(err.to_string().contains("c"), "{err}");
        assert_eq!(fs::read(out.join("a.csv")).unwrap(), b"old");
        assert_eq!(fs::read(out.join("b.csv")).unwrap(), b"old");
        assert_eq!(fs::read(out.join("c")).unwrap(), b"mine");
        assert!(!out.join("new.csv").exists(), "a file new to the folder is taken back out");
        assert_eq!(fs::read_dir(&out).unwrap().count(), 3);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1, "no staging folder left");
    }

    #[test]
    fn a_failing_renderer_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("reports");
        let failing = OutputFile::render("b.csv", |_| Err(io::Error::other("disk full")));
        let err = write_all(&out, vec![OutputFile::new("a.csv", b"1".to_vec()), failing]).unwrap_err();
        assert!(err.to_string().contains("b.csv"), "{err}");
        assert!(!out.exists(), "no output folder after a failed run");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "no staging folder either");
    }
}
