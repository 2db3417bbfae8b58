//! An exponential moving average of the model's weights (and batch-norm running statistics),
//! updated after every optimizer step: `ema ← decay · ema + (1 − decay) · live`. Averaging damps
//! the epoch-to-epoch swings of the operating point that a single set of weights shows on the
//! stressed validation; with `train --ema DECAY` the average is what is validated and saved.

use crate::model::DenseNet;
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::prelude::*;

pub struct Ema {
    pub decay: f64,
    /// Without autodiff, on the validation device.
    pub model: DenseNet,
}

impl Ema {
    /// Starts the average at `live`'s current weights.
    pub fn new(live: &DenseNet, decay: f64) -> Self {
        Self {
            decay,
            model: live.valid(),
        }
    }

    /// One update after an optimizer step.
    pub fn update(&mut self, live: &DenseNet) {
        let mut collect = Collect::default();
        live.valid().visit(&mut collect);
        let mut blend = Blend {
            live: collect.tensors.into_iter(),
            decay: self.decay,
        };
        self.model = self.model.clone().map(&mut blend);
    }
}

/// Every float tensor of a module, flattened, in visiting order (the same order `map` uses).
#[derive(Default)]
struct Collect {
    tensors: Vec<(ParamId, Tensor<1>)>,
}

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.tensors
            .push((param.id, param.val().flatten::<1>(0, D - 1)));
    }
}

struct Blend {
    live: std::vec::IntoIter<(ParamId, Tensor<1>)>,
    decay: f64,
}

impl ModuleMapper for Blend {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, average, _) = param.consume();
        let (live_id, live) = self
            .live
            .next()
            .expect("the average has the live model's parameters");
        // Both come from one initial model (`valid()` keeps the ids): a mismatch is a bug.
        assert_eq!(
            id, live_id,
            "the average's parameters follow the live model's"
        );
        let live = live.reshape(average.shape());
        let blended = average.mul_scalar(self.decay) + live.mul_scalar(1.0 - self.decay);
        Param::initialized(id, blended.detach())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DenseNetConfig;
    use burn::module::ModuleVisitor;

    fn first_weight(model: &DenseNet) -> Vec<f32> {
        struct First(Option<Vec<f32>>);
        impl ModuleVisitor for First {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                if self.0.is_none() {
                    self.0 = Some(param.val().into_data().try_to_vec::<f32>().unwrap());
                }
            }
        }
        let mut first = First(None);
        model.visit(&mut first);
        first.0.unwrap()
    }

    #[test]
    fn the_average_moves_a_decay_step_towards_the_live_weights() {
        let device = Device::default();
        let start = DenseNetConfig::tiny(1).init(&device);
        let mut ema = Ema::new(&start, 0.9);
        // Another model with the same parameter ids: the start's weights, all doubled.
        let live = start.clone().map(&mut Double);
        ema.update(&live);
        let (a, l, s) = (
            first_weight(&ema.model),
            first_weight(&live),
            first_weight(&start),
        );
        for ((a, l), s) in a.iter().zip(&l).zip(&s) {
            assert!((a - (0.9 * s + 0.1 * l)).abs() <= 1e-6 * (1.0 + l.abs()));
        }
    }

    struct Double;
    impl ModuleMapper for Double {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let (id, tensor, _) = param.consume();
            Param::initialized(id, tensor.mul_scalar(2.0))
        }
    }
}
