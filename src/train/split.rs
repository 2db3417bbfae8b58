//! Validation split carved out of train: stratified by class, grouped by patient, seeded.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use std::collections::BTreeMap;

/// Returns the indices (into `labels`) that go to validation. Whole patients move together;
/// each class contributes about `fraction` of its images. A patient counts for the class of
/// their first image.
pub fn grouped_stratified(
    labels: &[usize],
    patients: &[String],
    fraction: f64,
    seed: u64,
) -> Vec<usize> {
    let mut by_patient: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, p) in patients.iter().enumerate() {
        by_patient.entry(p.as_str()).or_default().push(i);
    }
    let classes = labels.iter().copied().max().map_or(0, |m| m + 1);
    let mut per_class: Vec<Vec<Vec<usize>>> = vec![Vec::new(); classes];
    for images in by_patient.into_values() {
        per_class[labels[images[0]]].push(images);
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut validation = Vec::new();
    for (class, mut groups) in per_class.into_iter().enumerate() {
        let total = labels.iter().filter(|&&l| l == class).count();
        let target = (total as f64 * fraction).round() as usize;
        groups.shuffle(&mut rng);
        let mut taken = 0;
        for group in groups {
            if taken >= target {
                break;
            }
            taken += group.len();
            validation.extend(group);
        }
    }
    validation.sort_unstable();
    validation
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn data() -> (Vec<usize>, Vec<String>) {
        let mut labels = Vec::new();
        let mut patients = Vec::new();
        for p in 0..300 {
            let class = usize::from(p % 4 != 0); // 1:3 imbalance, like Kermany
            for _ in 0..(1 + p % 3) {
                labels.push(class);
                patients.push(format!("person{p}"));
            }
        }
        (labels, patients)
    }

    #[test]
    fn no_patient_in_both_splits_and_classes_stratified() {
        let (labels, patients) = data();
        let val = grouped_stratified(&labels, &patients, 0.2, 42);
        let val_set: HashSet<usize> = val.iter().copied().collect();
        let val_patients: HashSet<&String> = val.iter().map(|&i| &patients[i]).collect();
        for (i, p) in patients.iter().enumerate() {
            if !val_set.contains(&i) {
                assert!(!val_patients.contains(p), "patient {p} is in both splits");
            }
        }
        for class in 0..2 {
            let total = labels.iter().filter(|&&l| l == class).count() as f64;
            let in_val = val.iter().filter(|&&i| labels[i] == class).count() as f64;
            let share = in_val / total;
            assert!((share - 0.2).abs() < 0.03, "class {class}: {share}");
        }
    }

    #[test]
    fn split_is_deterministic_by_seed() {
        let (labels, patients) = data();
        assert_eq!(
            grouped_stratified(&labels, &patients, 0.2, 1),
            grouped_stratified(&labels, &patients, 0.2, 1)
        );
        assert_ne!(
            grouped_stratified(&labels, &patients, 0.2, 1),
            grouped_stratified(&labels, &patients, 0.2, 2)
        );
    }
}
