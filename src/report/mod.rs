//! Everything the harness reports: the console summary per hub, the verbose
//! trace of HTTP exchanges, the JSON run record, the JUnit file and the
//! HTML report (written atomically on every way a run can end), and the
//! JSON event stream. Reports are rendered from the run's structured
//! records (`model::RunReport`), never from console text. The only library
//! code that prints to the terminal lives here.

pub mod console;
pub mod escape;
pub mod html;
pub mod json;
pub mod junit;
pub mod model;
pub mod progress;
pub mod safety;
pub mod sink;
pub mod soak;
pub mod soak_record;
pub mod stream;
pub mod term;
pub mod text;
pub mod verbose;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use libtest_mimic::ColorSetting;

/// Decide colour once for the run: `--color always|never` wins; otherwise
/// colour only on a terminal, only without `NO_COLOR`, and not on a
/// `TERM=dumb` one (a terminal that shows escape sequences as text; the
/// progress lines stay off there too).
pub fn set_color(choice: Option<ColorSetting>) {
    let on = match choice.unwrap_or(ColorSetting::Auto) {
        ColorSetting::Always => true,
        ColorSetting::Never => false,
        ColorSetting::Auto => {
            std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
        }
    };
    colored::control::set_override(on);
}

/// A report file could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write report {file}: {source}")]
pub struct ReportError {
    pub file: String,
    #[source]
    pub source: std::io::Error,
}

/// Write `bytes` to `path` so a reader sees either the old file or the whole
/// new one, never a half-written file: write a temporary file beside it,
/// flush it to disk, then rename it over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let err = |source| ReportError {
        file: path.display().to_string(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".vegehub-harness-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(err)?;
    tmp.write_all(bytes).map_err(err)?;
    // Reports are for reading by CI and colleagues: 0644, not the temp
    // file's 0600 (backups, which hold secrets, stay private elsewhere).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(err)?;
    }
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

/// Check before a run that a report can be written to `path`, so a typo
/// fails before any hub is contacted instead of after the run: a file name
/// (`-` is refused: stdout carries the scenario lines; `--format json` is
/// the machine stream), in a directory that exists and that we can create
/// files in, and nothing there yet but a regular file (never a device, a
/// symlink such as `/dev/stdout`, or a directory: the report replaces the
/// file by renaming a new one over it).
pub fn check_report_path(flag: &str, path: &Path) -> Result<(), String> {
    let shown = path.display();
    if path.as_os_str() == "-" {
        return Err(format!(
            "{flag} -: give a file name (stdout carries the scenario lines; \
             --format json makes them a JSON stream)"
        ));
    }
    let dir = dir_of(path);
    if !dir.is_dir() {
        return Err(format!(
            "{flag} {shown}: directory {} does not exist",
            dir.display()
        ));
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => return Err(format!("{flag} {shown}: is a directory")),
        Ok(m) if m.file_type().is_symlink() => {
            return Err(format!(
                "{flag} {shown}: is a symbolic link; give the path of a regular file"
            ))
        }
        Ok(m) if !m.is_file() => {
            return Err(format!(
                "{flag} {shown}: is not a regular file (a device or pipe); give a file name"
            ))
        }
        _ => {}
    }
    // Really try: permissions, read-only mounts and /proc say no only then.
    tempfile::Builder::new()
        .prefix(".vegehub-harness-check-")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|e| {
            format!(
                "{flag} {shown}: cannot create files in {}: {e}",
                dir.display()
            )
        })
}

/// Where a report path really points, for telling two flags that name one
/// file apart (`r.json`, `./r.json`, `dir/../r.json`): its directory
/// resolved, then its own name. The file itself need not exist yet (a
/// symbolic link is refused by [`check_report_path`]). `None` when the
/// directory cannot be resolved.
fn resolved(path: &Path) -> Option<PathBuf> {
    Some(
        std::fs::canonicalize(dir_of(path))
            .ok()?
            .join(path.file_name()?),
    )
}

/// The directory a report file goes into (`.` for a bare name).
fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "second");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["r.json"]);
    }

    #[test]
    fn unwritable_paths_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope").join("r.json");
        let e = write_atomic(&missing, b"x").unwrap_err().to_string();
        assert!(
            e.starts_with("cannot write report ") && e.contains("nope"),
            "{e}"
        );
        let e = check_report_path("--junit", &missing).unwrap_err();
        assert!(
            e.starts_with("--junit ") && e.contains("does not exist"),
            "{e}"
        );
        let e = check_report_path("--junit", dir.path()).unwrap_err();
        assert!(e.ends_with("is a directory"), "{e}");
        check_report_path("--junit", &dir.path().join("ok.xml")).unwrap();
    }
}
