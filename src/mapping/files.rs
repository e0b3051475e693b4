//! Which files a mapping path names, and YAML error text.

use super::MappingError;
use std::path::{Path, PathBuf};

/// The files `load` reads for `path`.
pub(crate) fn mapping_files(path: &Path) -> Result<Vec<PathBuf>, MappingError> {
    let whole = |message: String| MappingError {
        file: path.to_path_buf(),
        line: 0,
        message,
    };
    let meta = std::fs::metadata(path).map_err(|e| whole(format!("cannot read: {e}")))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(|e| whole(format!("cannot list: {e}")))? {
        let p = entry
            .map_err(|e| whole(format!("cannot list: {e}")))?
            .path();
        let yaml = matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"));
        if yaml && p.is_file() {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

/// serde-saphyr's message without its " at line L, column C" suffix: the line is ours to print.
pub(crate) fn yaml_message(e: &serde_saphyr::Error) -> String {
    let text = e.without_snippet().to_string();
    match text.rfind(" at line ") {
        Some(i) if text[i..].contains(", column ") => text[..i].to_string(),
        _ => text,
    }
}
