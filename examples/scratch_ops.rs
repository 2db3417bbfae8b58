// SCRATCH: not committed. Times the stem and a transition with burn flex.
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2dConfig;
use burn::nn::pool::{AvgPool2dConfig, MaxPool2dConfig};
use burn::prelude::*;
use std::time::Instant;

fn time<F: FnMut() -> Tensor<4>>(name: &str, runs: usize, mut f: F) -> f64 {
    let _ = f().into_data();
    let mut v = vec![];
    for _ in 0..runs {
        let t = Instant::now();
        let y = f();
        let _ = y.into_data();
        v.push(t.elapsed().as_secs_f64());
    }
    v.sort_by(f64::total_cmp);
    println!("{name:40} {:8.2} ms", v[v.len() / 2] * 1e3);
    v[v.len() / 2]
}

fn main() {
    let device = Device::flex();
    let b: usize = std::env::args().nth(1).map(|s| s.parse().unwrap()).unwrap_or(16);
    let s: usize = std::env::args().nth(2).map(|s| s.parse().unwrap()).unwrap_or(224);
    let x = Tensor::<4>::random([b, 3, s, s], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
    let c0 = Conv2dConfig::new([3, 64], [7, 7]).with_stride([2, 2]).with_padding(PaddingConfig2d::Explicit(3, 3, 3, 3)).with_bias(false).init(&device);
    let y = time("conv0 7x7/2 3->64", 7, || c0.forward(x.clone()));
    let pool = MaxPool2dConfig::new([3, 3]).with_strides([2, 2]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init();
    let _ = y;
    let y0 = c0.forward(x.clone());
    time("maxpool 3x3/2", 7, || pool.forward(y0.clone()));
    let t = Tensor::<4>::random([b, 256, s / 4, s / 4], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
    let avg = AvgPool2dConfig::new([2, 2]).with_strides([2, 2]).init();
    let ct = Conv2dConfig::new([256, 128], [1, 1]).with_bias(false).init(&device);
    time("transition1 conv 256->128", 7, || ct.forward(t.clone()));
    let t2 = ct.forward(t.clone());
    time("transition1 avgpool", 7, || avg.forward(t2.clone()));
}
