//! Replays, on stable, every input the fuzz targets (`fuzz/`, docs/fuzzing.md) found to crash,
//! hang or over-allocate once it was fixed (`tests/fuzz/<target>/`), and the committed
//! fixtures as seeds, through the same entry points (`pneumoscope::fuzzing`): each must
//! return without panicking and without asking for a huge allocation (what the fuzzer's RSS
//! limit caught; here an allocator that refuses and records any request over
//! [`LARGEST_ALLOWED`], so a regression fails at once instead of taking seconds and gigabytes).

use pneumoscope::fuzzing;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;

type Target = fn(&[u8]);

/// Well above what any input here legitimately needs, well below the gigabytes the bugs asked for.
const LARGEST_ALLOWED: usize = 512 << 20;

thread_local! {
    /// The largest allocation request refused on this thread since the last [`replay`].
    static REFUSED: Cell<usize> = const { Cell::new(0) };
}

struct Bounded;

unsafe impl GlobalAlloc for Bounded {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > LARGEST_ALLOWED {
            REFUSED.with(|r| r.set(r.get().max(layout.size())));
            return std::ptr::null_mut();
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > LARGEST_ALLOWED {
            REFUSED.with(|r| r.set(r.get().max(new_size)));
            return std::ptr::null_mut();
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Bounded = Bounded;

/// Runs `target` on `bytes` and fails if it asked for more than [`LARGEST_ALLOWED`] at once.
fn replay(target: Target, bytes: &[u8], what: &str) {
    REFUSED.with(|r| r.set(0));
    target(bytes);
    let refused = REFUSED.with(Cell::get);
    assert!(
        refused == 0,
        "{what}: asked for {refused} bytes at once (limit {LARGEST_ALLOWED})"
    );
}

const TARGETS: [(&str, Target); 7] = [
    ("decode", fuzzing::decode_bytes),
    ("dicom", fuzzing::dicom_patched),
    ("raster_dimensions", fuzzing::raster_dimensions),
    ("model_card", fuzzing::model_card),
    ("weights", fuzzing::weights),
    ("ood_statistics", fuzzing::ood_statistics),
    ("keras_model", fuzzing::keras_model),
];

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn every_regression_input_returns() {
    let mut replayed = 0;
    for (name, target) in TARGETS {
        for file in files(&Path::new("tests/fuzz").join(name)) {
            replay(
                target,
                &std::fs::read(&file).unwrap(),
                &file.display().to_string(),
            );
            replayed += 1;
        }
    }
    eprintln!("replayed {replayed} regression inputs");
}

#[test]
fn the_fixtures_pass_through_every_target() {
    let mut inputs = Vec::new();
    for dir in [
        "tests/data",
        "tests/data/bad",
        "tests/fixtures/dicom",
        "tests/fixtures/keras",
    ] {
        inputs.extend(files(Path::new(dir)));
    }
    inputs.push("weights/model-card.json".into());
    assert!(inputs.len() > 30, "{} inputs", inputs.len());
    for file in &inputs {
        let bytes = std::fs::read(file).unwrap();
        for (name, target) in TARGETS {
            // The whole file, and its first half (a cut-off download).
            let what = format!("{} through {name}", file.display());
            replay(target, &bytes, &what);
            replay(
                target,
                &bytes[..bytes.len() / 2],
                &format!("{what}, first half"),
            );
        }
    }
}
