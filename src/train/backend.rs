//! Which backend a training run computes on: burn's pure-Rust `flex` CPU backend with our
//! training kernels (`model::flex_training`, the default), flex with burn's generic ops only (for
//! comparisons), or a GPU through wgpu (Vulkan / Metal / DX12). The one place that turns the
//! choice into a device.
//!
//! Not part of a run's `config.json`: all compute the same model up to float rounding, and the
//! checkpoints (burnpack) are backend-agnostic, so a run resumed with `--resume` may switch.

use crate::model::flex_training;
use burn::prelude::*;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum TrainBackend {
    /// burn's pure-Rust CPU backend (multi-threaded, SIMD) with our convolution and batch-norm
    /// kernels in the training graph.
    #[default]
    Flex,
    /// flex with burn's generic ops only (about 2.4× slower): the before of a comparison.
    FlexGeneric,
    /// The GPU through wgpu (Vulkan / Metal / DX12), e.g. a workstation's graphics card.
    Wgpu,
}

impl TrainBackend {
    /// The inference device (no autodiff): validation and evaluation. Training uses
    /// `device()?.autodiff()`. Choosing flex or flex-generic switches our training kernels on or
    /// off for the whole process.
    pub fn device(self) -> anyhow::Result<Device> {
        match self {
            TrainBackend::Flex | TrainBackend::FlexGeneric => {
                flex_training::set_enabled(self == TrainBackend::Flex);
                Ok(Device::flex())
            }
            TrainBackend::Wgpu => {
                let device = Device::wgpu(Default::default());
                probe(&device)?;
                Ok(device)
            }
        }
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
