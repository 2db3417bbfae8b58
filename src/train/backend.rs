//! Which backend a training run computes on: burn's pure-Rust `flex` CPU backend (always built),
//! LibTorch, PyTorch's C++ library, on the CPU (cargo feature `libtorch`), or a GPU through wgpu
//! (Vulkan / Metal / DX12). The one place that turns the choice into a device.
//!
//! Not part of a run's `config.json`: all compute the same model up to float rounding, and the
//! checkpoints (burnpack) are backend-agnostic, so a run resumed with `--resume` may switch.

use burn::prelude::*;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum TrainBackend {
    /// burn's pure-Rust CPU backend (multi-threaded, SIMD).
    #[default]
    Flex,
    /// LibTorch on the CPU (PyTorch 2.9.0's libtorch); needs a build with `--features libtorch`.
    Libtorch,
    /// The GPU through wgpu (Vulkan / Metal / DX12), e.g. a workstation's graphics card.
    Wgpu,
}

impl TrainBackend {
    /// The inference device (no autodiff): validation and evaluation. Training uses
    /// `device()?.autodiff()`.
    pub fn device(self) -> anyhow::Result<Device> {
        match self {
            TrainBackend::Flex => Ok(Device::flex()),
            #[cfg(feature = "libtorch")]
            // burn 0.22 deprecates its tch backend in favour of its CubeCL ones, none of which has
            // a CPU path we can build offline; it is still the fastest CPU trainer available.
            #[allow(deprecated)]
            TrainBackend::Libtorch => Ok(Device::libtorch()),
            #[cfg(not(feature = "libtorch"))]
            TrainBackend::Libtorch => anyhow::bail!(
                "this build has no LibTorch backend: rebuild with the `libtorch` cargo feature \
                 (LIBTORCH_USE_PYTORCH=1 with PyTorch 2.9.0 installed for python3: \
                 `cargo build --release --features libtorch`, see the README), or use --backend flex"
            ),
            TrainBackend::Wgpu => {
                let device = Device::wgpu(Default::default());
                probe(&device)?;
                Ok(device)
            }
        }
    }

    /// The CPU backends this build has (what a benchmark compares by default).
    pub fn cpu_backends() -> Vec<TrainBackend> {
        [TrainBackend::Flex, TrainBackend::Libtorch]
            .into_iter()
            .filter(|b| b.device().is_ok())
            .collect()
    }
}

/// Runs one tiny operation on `device`, turning the panic that burn raises when wgpu finds no
/// adapter (no GPU, no Vulkan driver) into an error the CLI can print.
pub fn probe(device: &Device) -> anyhow::Result<()> {
    let device = device.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {})); // the error below says it better than the panic text
    let result = std::panic::catch_unwind(move || Tensor::<1>::ones([1], &device).into_data());
    std::panic::set_hook(previous);
    match result {
        Ok(_) => Ok(()),
        Err(panic) => {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
            anyhow::bail!(
                "no usable GPU: wgpu found no adapter ({}); use the CPU instead",
                why.unwrap_or_else(|| "no details".into())
            )
        }
    }
}
