//! [`FlexTraining`] on flex with autodiff: the forward is flex's (ours, in the parent module);
//! each call records one node in the graph whose backward step runs our gradient kernels.

use super::{
    FlexTraining, batch_norm_forward, batch_ops, conv_geometry, dims4, planes, tensor, values,
};
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Flex};

#[derive(Debug)]
struct ConvBackward;

#[derive(Clone, Debug)]
struct ConvState {
    x: FlexTensor,
    weight: FlexTensor,
    stride: usize,
    padding: usize,
}

impl Backward<Flex, 2> for ConvBackward {
    type State = ConvState;

    fn backward(self, ops: Ops<ConvState, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_weight] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let ConvState {
            x,
            weight,
            stride,
            padding,
        } = ops.state;
        let (batch, g, c_out) = conv_geometry(&x, &weight, stride, padding);
        let dy = values(&dy);
        if let Some(node) = node_x {
            let dx = batch_ops::conv_input_grad(&dy, batch, &g, &values(&weight), c_out);
            grads.register::<Flex>(node.id, tensor(dx, &dims4(&x)));
        }
        if let Some(node) = node_weight {
            let dw = batch_ops::conv_weight_grad(&values(&x), &dy, batch, &g, c_out);
            grads.register::<Flex>(node.id, tensor(dw, &dims4(&weight)));
        }
    }
}

#[derive(Debug)]
struct BatchNormBackward;

#[derive(Clone, Debug)]
struct BatchNormState {
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    relu: bool,
}

impl Backward<Flex, 3> for BatchNormBackward {
    type State = BatchNormState;

    fn backward(self, ops: Ops<BatchNormState, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let s = ops.state;
        let p = planes(&s.x);
        let (dx, gamma_grad, beta_grad) = batch_ops::batch_norm_backward(
            &values(&s.x),
            &values(&dy),
            p,
            &values(&s.gamma),
            &values(&s.beta),
            (&s.mean, &s.inv_std),
            s.relu,
        );
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, tensor(dx, &dims4(&s.x)));
        }
        if let Some(node) = node_gamma {
            grads.register::<Flex>(node.id, tensor(gamma_grad, &[p.channels]));
        }
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, tensor(beta_grad, &[p.channels]));
        }
    }
}

impl<C: CheckpointStrategy> FlexTraining for Autodiff<Flex, C> {
    fn conv2d_square(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride: usize,
        padding: usize,
    ) -> FloatTensor<Self> {
        let (x_inner, weight_inner) = (x.primitive().clone(), weight.primitive().clone());
        let output = Flex::conv2d_square(x_inner.clone(), weight_inner.clone(), stride, padding);
        match ConvBackward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let state = ConvState {
                    x: x_inner,
                    weight: weight_inner,
                    stride,
                    padding,
                };
                prep.finish(state, output)
            }
            OpsKind::UnTracked(prep) => prep.finish(output),
        }
    }

    fn batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let inner = (
            x.primitive().clone(),
            gamma.primitive().clone(),
            beta.primitive().clone(),
        );
        let (output, stats) = batch_norm_forward(&inner.0, &inner.1, &inner.2, epsilon, relu);
        let channels = stats.mean.len();
        let mean = Self::from_inner(tensor(stats.mean.clone(), &[channels]));
        let variance = Self::from_inner(tensor(stats.variance, &[channels]));
        let output = match BatchNormBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let state = BatchNormState {
                    x: inner.0,
                    gamma: inner.1,
                    beta: inner.2,
                    mean: stats.mean,
                    inv_std: stats.inv_std,
                    relu,
                };
                prep.finish(state, output)
            }
            OpsKind::UnTracked(prep) => prep.finish(output),
        };
        (output, mean, variance)
    }
}
