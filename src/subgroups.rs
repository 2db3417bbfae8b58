//! Subgroups of the Kermany data by file-name family: the test set's shift sits in one family
//! of normals (`NORMAL2-IM-…`), so validation and test report the normals' specificity per
//! family.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A Kermany file's family: `NORMAL2-IM-…`, `IM-…`, `person…`, else `other`.
pub fn family(path: &Path) -> &'static str {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    if name.starts_with("NORMAL2-") {
        "NORMAL2-IM"
    } else if name.starts_with("IM-") {
        "IM"
    } else if name.starts_with("person") {
        "person"
    } else {
        "other"
    }
}

/// The specificity of one family of negatives.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FamilySpecificity {
    pub specificity: f64,
    pub images: usize,
}

/// Per family of the negatives (`truth` false): the share scored below `threshold`.
pub fn normals_by_family(
    paths: &[PathBuf],
    scores: &[f32],
    truth: &[bool],
    threshold: f32,
) -> BTreeMap<String, FamilySpecificity> {
    let mut counts: BTreeMap<&'static str, (usize, usize)> = BTreeMap::new();
    for ((path, score), positive) in paths.iter().zip(scores).zip(truth) {
        if !positive {
            let entry = counts.entry(family(path)).or_default();
            entry.0 += usize::from(*score < threshold);
            entry.1 += 1;
        }
    }
    counts
        .into_iter()
        .map(|(name, (right, total))| {
            let specificity = right as f64 / total.max(1) as f64;
            (
                name.to_string(),
                FamilySpecificity {
                    specificity,
                    images: total,
                },
            )
        })
        .collect()
}

/// `IM 0.8478 (92 images), NORMAL2-IM 0.8727 (110 images)`: for logs and the CLI.
pub fn describe(by_family: &BTreeMap<String, FamilySpecificity>) -> String {
    by_family
        .iter()
        .map(|(name, f)| format!("{name} {:.4} ({} images)", f.specificity, f.images))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_by_name_and_specificity_per_family() {
        let paths: Vec<PathBuf> = [
            "t/NORMAL/NORMAL2-IM-0001-0001.jpeg",
            "t/NORMAL/NORMAL2-IM-0002-0001.jpeg",
            "t/NORMAL/IM-0001-0001.jpeg",
            "t/PNEUMONIA/person1_virus_6.jpeg",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(family(&paths[3]), "person");
        assert_eq!(family(Path::new("x.png")), "other");
        let by_family = normals_by_family(
            &paths,
            &[0.7, 0.2, 0.1, 0.9],
            &[false, false, false, true],
            0.5,
        );
        assert_eq!(by_family.len(), 2);
        assert_eq!(by_family["NORMAL2-IM"].specificity, 0.5);
        assert_eq!(by_family["NORMAL2-IM"].images, 2);
        assert_eq!(by_family["IM"].specificity, 1.0);
        assert_eq!(
            describe(&by_family),
            "IM 1.0000 (1 images), NORMAL2-IM 0.5000 (2 images)"
        );
    }
}
