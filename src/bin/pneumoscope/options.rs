//! Flags more than one subcommand takes.

use pneumoscope::train::backend::TrainBackend;
use pneumoscope::train::fit_ood::FitSettings;

/// The compute device named on the command line.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum DeviceChoice {
    /// Pure-Rust CPU backend (flex), multi-threaded.
    Cpu,
    /// GPU through wgpu (Vulkan / Metal / DX12), if one is present.
    Wgpu,
}

impl DeviceChoice {
    /// The device, or an error when `wgpu` finds no GPU adapter.
    pub fn device(self) -> anyhow::Result<burn::prelude::Device> {
        match self {
            DeviceChoice::Cpu => Ok(burn::prelude::Device::flex()),
            DeviceChoice::Wgpu => TrainBackend::Wgpu.device(),
        }
    }
}

/// The fit's flags (also `export`'s); defaults from [`FitSettings::default`].
#[derive(clap::Args, Clone, Debug)]
pub struct OodArgs {
    /// Principal directions kept by the probabilistic PCA of the pooled features.
    #[arg(id = "ood_components", value_name = "K", long = "ood-components", default_value_t = FitSettings::default().components)]
    pub components: usize,
    /// Principal directions kept for the first transition's channel statistics.
    #[arg(id = "ood_appearance_components", value_name = "K", long = "ood-appearance-components", default_value_t = FitSettings::default().appearance_components)]
    pub appearance_components: usize,
    /// Largest share of validation X-rays the threshold may refuse.
    #[arg(id = "ood_max_refused", value_name = "SHARE", long = "ood-max-refused", default_value_t = FitSettings::default().max_refused)]
    pub max_refused: f64,
    /// Validation split (share of train, seed); by default the run's config.json next to the
    /// card, else 0.15 and 42 (the shipped model's).
    #[arg(
        id = "ood_val_fraction",
        value_name = "SHARE",
        long = "ood-val-fraction"
    )]
    pub val_fraction: Option<f64>,
    #[arg(id = "ood_seed", value_name = "SEED", long = "ood-seed")]
    pub seed: Option<u64>,
    #[arg(id = "ood_batch_size", value_name = "N", long = "ood-batch-size", default_value_t = FitSettings::default().batch_size)]
    pub batch_size: usize,
}

impl From<&OodArgs> for FitSettings {
    fn from(s: &OodArgs) -> Self {
        FitSettings {
            components: s.components,
            appearance_components: s.appearance_components,
            max_refused: s.max_refused,
            val_fraction: s.val_fraction,
            seed: s.seed,
            batch_size: s.batch_size,
        }
    }
}
