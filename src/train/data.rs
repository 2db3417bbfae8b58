//! Labelled image folders (`DIR/{CLASS}/*.jpeg`, Kaggle / ImageFolder layout), patient ids,
//! and decoding every image once into memory as a grayscale plane.

use crate::decode::{FileError, read_file};
use crate::preprocess::resized_rgb;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Sample {
    pub path: PathBuf,
    pub label: usize,
    pub patient: String,
}

#[derive(Debug, Clone)]
pub struct Folder {
    /// Class names, sorted (the folder names): NORMAL, PNEUMONIA.
    pub classes: Vec<String>,
    pub samples: Vec<Sample>,
}

const IMAGE_EXTENSIONS: [&str; 3] = ["jpeg", "jpg", "png"];

/// Lists `dir/{CLASS}/*` image files; classes come from the sub-folder names.
pub fn scan(dir: &Path) -> anyhow::Result<Folder> {
    anyhow::ensure!(dir.is_dir(), "{} is not a folder", dir.display());
    let mut classes: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    classes.sort();
    anyhow::ensure!(
        classes.len() >= 2,
        "{} needs at least two class folders (found {:?})",
        dir.display(),
        classes
    );
    let mut samples = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join(class))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| {
                p.extension()
                    .and_then(|x| x.to_str())
                    .is_some_and(|x| IMAGE_EXTENSIONS.contains(&x.to_ascii_lowercase().as_str()))
            })
            .collect();
        anyhow::ensure!(
            !files.is_empty(),
            "class folder {} holds no PNG or JPEG images",
            dir.join(class).display()
        );
        files.sort();
        samples.extend(files.into_iter().map(|path| {
            let patient = patient_id(&path.file_stem().unwrap_or_default().to_string_lossy());
            Sample {
                path,
                label,
                patient,
            }
        }));
    }
    Ok(Folder { classes, samples })
}

/// The patient a Kermany file name belongs to: `person1946_bacteria_4874` → `person1946`;
/// `IM-0115-0001` and `NORMAL2-IM-0115-0001` → `IM-0115` (treated as one patient, the
/// conservative reading: it can only make the validation split stricter).
pub fn patient_id(stem: &str) -> String {
    if let Some(rest) = stem.strip_prefix("person") {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        return format!("person{digits}");
    }
    let stem = stem.strip_prefix("NORMAL2-").unwrap_or(stem);
    match stem.rsplit_once('-') {
        Some((patient, image)) if image.chars().all(|c| c.is_ascii_digit()) => patient.to_string(),
        _ => stem.to_string(),
    }
}

/// Every usable image as an `size`×`size` grayscale plane (u8, row-major), in sample order.
pub struct PlaneSet {
    pub size: usize,
    pub planes: Vec<Vec<u8>>,
    pub labels: Vec<usize>,
    pub paths: Vec<PathBuf>,
    pub patients: Vec<String>,
    /// Files that could not be read, with the reason; they are left out.
    pub skipped: Vec<(PathBuf, FileError)>,
}

impl PlaneSet {
    pub fn empty(size: usize) -> Self {
        Self {
            size,
            planes: vec![],
            labels: vec![],
            paths: vec![],
            patients: vec![],
            skipped: vec![],
        }
    }

    /// Adds one usable image.
    pub fn push(&mut self, plane: Vec<u8>, label: usize, path: PathBuf, patient: String) {
        self.planes.push(plane);
        self.labels.push(label);
        self.paths.push(path);
        self.patients.push(patient);
    }
}

/// Grayscale plane of one decoded image, through the same resize as inference.
pub fn gray_plane(image: &image::DynamicImage, size: u32) -> Vec<u8> {
    resized_rgb(image, size)
        .pixels()
        .map(|p| (((p[0] + p[1] + p[2]) / 3.0).clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect()
}

/// Decodes all samples in parallel; `progress` is called once per file.
pub fn decode_all(samples: &[Sample], size: usize, progress: impl Fn() + Sync) -> PlaneSet {
    let results: Vec<Result<Vec<u8>, FileError>> = samples
        .par_iter()
        .map(|s| {
            let out = read_file(&s.path).map(|decoded| gray_plane(&decoded.image, size as u32));
            progress();
            out
        })
        .collect();
    let mut decoded = PlaneSet::empty(size);
    for (sample, result) in samples.iter().zip(results) {
        match result {
            Ok(plane) => decoded.push(
                plane,
                sample.label,
                sample.path.clone(),
                sample.patient.clone(),
            ),
            Err(why) => decoded.skipped.push((sample.path.clone(), why)),
        }
    }
    decoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patient_ids_from_kermany_names() {
        assert_eq!(patient_id("person1946_bacteria_4874"), "person1946");
        assert_eq!(patient_id("person1946_bacteria_4875"), "person1946");
        assert_eq!(patient_id("person12_virus_44"), "person12");
        assert_eq!(patient_id("IM-0115-0001"), "IM-0115");
        assert_eq!(patient_id("NORMAL2-IM-0115-0001"), "IM-0115");
        assert_eq!(patient_id("scan"), "scan");
    }
}
