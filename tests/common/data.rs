//! Where the chest X-ray data set is: `$PNEUMOSCOPE_DATA`, by default `../shared/data/chest_xray`
//! (relative to the crate root, where cargo runs the tests). The scripts and benches read the
//! same variable with the same default.

use std::path::{Path, PathBuf};

/// The default data folder, relative to the crate root.
pub const DEFAULT_DATA: &str = "../shared/data/chest_xray";

/// The data set root (`train/`, `test/`, maybe `val/`, each with `NORMAL/` and `PNEUMONIA/`).
pub fn data_dir() -> PathBuf {
    std::env::var_os("PNEUMOSCOPE_DATA")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA))
}

/// The official test split, `data_dir()/test`.
pub fn test_data_dir() -> PathBuf {
    data_dir().join("test")
}

/// The files of `dir`, sorted; panics naming the folder and `PNEUMOSCOPE_DATA` if it cannot be
/// read.
pub fn sorted_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| {
            panic!(
                "reading {}: {e} (the chest X-ray data set: set PNEUMOSCOPE_DATA, default {DEFAULT_DATA})",
                dir.display()
            )
        })
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}
