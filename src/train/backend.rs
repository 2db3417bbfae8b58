//! Which CPU backend a training run computes on: burn's pure-Rust `flex` (always built) or
//! LibTorch, PyTorch's C++ library (cargo feature `libtorch`, native only). The one place that
//! turns the choice into a device.
//!
//! Not part of a run's `config.json`: both compute the same model up to float rounding, and the
//! checkpoints (burnpack) are backend-agnostic, so a run resumed with `--resume` may switch.

use burn::prelude::Device;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// burn's pure-Rust CPU backend (multi-threaded, SIMD).
    #[default]
    Flex,
    /// LibTorch on the CPU (PyTorch 2.9.0's libtorch); needs a build with `--features libtorch`.
    Libtorch,
}

impl Backend {
    /// The inference device (no autodiff): validation and evaluation. Training uses
    /// `device()?.autodiff()`.
    pub fn device(self) -> anyhow::Result<Device> {
        match self {
            Backend::Flex => Ok(Device::flex()),
            #[cfg(feature = "libtorch")]
            // burn 0.22 deprecates its tch backend in favour of its CubeCL ones, none of which has
            // a CPU path we can build offline; it is still the fastest CPU trainer available.
            #[allow(deprecated)]
            Backend::Libtorch => Ok(Device::libtorch()),
            #[cfg(not(feature = "libtorch"))]
            Backend::Libtorch => anyhow::bail!(
                "this build has no LibTorch backend: rebuild with the `libtorch` cargo feature \
                 (LIBTORCH_USE_PYTORCH=1 with PyTorch 2.9.0 installed for python3: \
                 `cargo build --release --features libtorch`, see the README), or use --backend flex"
            ),
        }
    }

    /// Whether this build can run the backend.
    pub fn available(self) -> bool {
        self.device().is_ok()
    }
}
