//! The shipped weights container: safetensors with int8 convolution kernels (symmetric,
//! one f32 scale per output channel, stored as `<name>.scale`) and every other tensor
//! (batch-norm statistics, classifier) in f32. Tensor names are the burn module paths.
//! Dequantized once at load: the model then runs in f32 on any backend.

use super::{WeightsError, describe_mismatch};
use crate::model::{DenseNet, DenseNetConfig};
use crate::tensor_bytes::{
    ContainerTensor, container_metadata, f32s, format_of, serialise_container,
};
use burn::prelude::*;
use burn::store::ModuleSnapshot;
use burn::store::burn_pack::Tensor as PackTensor;
use burn::tensor::{Bytes, DType};
use safetensors::{Dtype, SafeTensors};
use std::collections::HashMap;

pub const FORMAT_INT8: &str = "pneumoscope-int8-v1";
pub const FORMAT_F32: &str = "pneumoscope-f32-v1";
const SCALE_SUFFIX: &str = ".scale";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// Convolution kernels in int8 with per-output-channel scales (the shipped format).
    Int8,
    /// Everything in f32 (training checkpoints, exact round trip).
    F32,
}

impl Precision {
    fn format(self) -> &'static str {
        match self {
            Precision::Int8 => FORMAT_INT8,
            Precision::F32 => FORMAT_F32,
        }
    }
}

/// Symmetric int8 quantisation of `values` viewed as `rows` rows: one scale per row.
pub fn quantize_rows(values: &[f32], rows: usize) -> (Vec<i8>, Vec<f32>) {
    let cols = values.len() / rows.max(1);
    let mut q = Vec::with_capacity(values.len());
    let mut scales = Vec::with_capacity(rows);
    for row in values.chunks(cols.max(1)) {
        let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
        q.extend(
            row.iter()
                .map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8),
        );
        scales.push(scale);
    }
    (q, scales)
}

pub fn dequantize_rows(q: &[i8], scales: &[f32]) -> Vec<f32> {
    let cols = q.len() / scales.len().max(1);
    q.chunks(cols.max(1))
        .zip(scales)
        .flat_map(|(row, s)| row.iter().map(move |v| *v as f32 * s))
        .collect()
}

/// Serialises the model (in validation mode, any device) to the container.
pub fn encode(model: &DenseNet, precision: Precision) -> Vec<u8> {
    let mut entries = Vec::new();
    for tensor in model.valid().collect(None, None, false) {
        let (name, dtype, shape, _, bytes) = tensor.into_parts().expect("resident tensor");
        let shape: Vec<usize> = shape.to_vec();
        let values: Vec<f32> = match dtype {
            DType::F32 => f32s(&bytes),
            other => panic!("unexpected parameter dtype {other:?} for {name}"),
        };
        if precision == Precision::Int8 && shape.len() == 4 {
            let (q, scales) = quantize_rows(&values, shape[0]);
            let data = q.iter().map(|v| *v as u8).collect();
            entries.push(ContainerTensor::f32(
                format!("{name}{SCALE_SUFFIX}"),
                vec![shape[0]],
                &scales,
            ));
            entries.push(ContainerTensor {
                name,
                dtype: Dtype::I8,
                shape,
                data,
            });
        } else {
            entries.push(ContainerTensor::f32(name, shape, &values));
        }
    }
    let metadata = HashMap::from([("format".to_string(), precision.format().to_string())]);
    serialise_container(&entries, metadata)
}

/// True when `bytes` are one of our containers (int8 or f32), as opposed to e.g. a PyTorch checkpoint.
pub fn is_container(bytes: &[u8]) -> bool {
    container_metadata(bytes)
        .is_ok_and(|metadata| [FORMAT_INT8, FORMAT_F32].contains(&format_of(&metadata)))
}

/// Reads a container (int8 or f32) into a freshly built model of `config` on `device`.
pub fn decode(
    bytes: &[u8],
    config: &DenseNetConfig,
    device: &Device,
) -> Result<DenseNet, WeightsError> {
    model_from_tensors(dequantized_tensors(bytes)?, config, device).map_err(WeightsError::Mismatch)
}

/// A model of `config` holding exactly `tensors` (named by module path): every parameter
/// filled, no tensor left over; else the mismatch, naming the keys.
pub(crate) fn model_from_tensors(
    tensors: Vec<PackTensor>,
    config: &DenseNetConfig,
    device: &Device,
) -> Result<DenseNet, String> {
    let mut model = config.init(device);
    let result = model.apply(tensors, None, None, false);
    match describe_mismatch(&result, |_| false) {
        Some(details) => Err(details),
        None => Ok(model),
    }
}

/// An f32 tensor for [`model_from_tensors`].
pub(crate) fn f32_tensor(name: String, shape: Vec<usize>, values: Vec<f32>) -> PackTensor {
    PackTensor::new(name, DType::F32, shape, None, Bytes::from_elems(values))
}

/// Every tensor of the container as f32, ready for `ModuleSnapshot::apply`.
fn dequantized_tensors(bytes: &[u8]) -> Result<Vec<PackTensor>, WeightsError> {
    let metadata = container_metadata(bytes).map_err(|e| WeightsError::Container(e.to_string()))?;
    let format = format_of(&metadata);
    if format != FORMAT_INT8 && format != FORMAT_F32 {
        return Err(WeightsError::Format {
            found: format.into(),
            expected: FORMAT_INT8.into(),
        });
    }
    let st = SafeTensors::deserialize(bytes).map_err(|e| WeightsError::Container(e.to_string()))?;
    let bad = |name: &str, why: &str| WeightsError::Tensor {
        name: name.into(),
        why: why.into(),
    };
    // safetensors lists tensors in hash order, which changes from run to run: sorted, a file
    // with several bad tensors always names the same one.
    let mut tensors = st.tensors();
    tensors.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::new();
    for (name, view) in tensors {
        if name.ends_with(SCALE_SUFFIX) {
            continue;
        }
        let values = match view.dtype() {
            Dtype::F32 => f32s(view.data()),
            Dtype::I8 => {
                let scales = st
                    .tensor(&format!("{name}{SCALE_SUFFIX}"))
                    .map_err(|_| bad(&name, "int8 tensor without its scales"))?;
                let rows = view.shape().first().copied().unwrap_or(0);
                if scales.dtype() != Dtype::F32 || scales.shape() != [rows] {
                    return Err(bad(
                        &name,
                        "scales do not match the tensor's output channels",
                    ));
                }
                let q: Vec<i8> = view.data().iter().map(|b| *b as i8).collect();
                dequantize_rows(&q, &f32s(scales.data()))
            }
            other => return Err(bad(&name, &format!("unsupported dtype {other:?}"))),
        };
        out.push(f32_tensor(name, view.shape().to_vec(), values));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> (DenseNetConfig, DenseNet, Device) {
        let device = Device::flex();
        let config = DenseNetConfig::tiny(1);
        let model = config.init(&device);
        (config, model, device)
    }

    #[test]
    fn quantisation_error_is_within_half_a_step() {
        let values = [0.5, -1.0, 0.25, 0.0, 0.01, -0.02, 0.03, 0.0];
        let (q, scales) = quantize_rows(&values, 2);
        let back = dequantize_rows(&q, &scales);
        for (i, (a, b)) in values.iter().zip(&back).enumerate() {
            assert!((a - b).abs() <= scales[i / 4] / 2.0 + 1e-7);
        }
    }

    #[test]
    fn f32_round_trip_is_exact() {
        let (config, model, device) = tiny();
        let bytes = encode(&model, Precision::F32);
        let back = decode(&bytes, &config, &device).unwrap();
        let seed_input = Tensor::<4>::ones([1, 3, 32, 32], &device);
        let a: Vec<f32> = model
            .forward(seed_input.clone())
            .into_data()
            .try_to_vec()
            .unwrap();
        let b: Vec<f32> = back.forward(seed_input).into_data().try_to_vec().unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn int8_round_trip_is_close_and_smaller() {
        let (config, model, device) = tiny();
        let int8 = encode(&model, Precision::Int8);
        assert!(int8.len() < encode(&model, Precision::F32).len());
        let back = decode(&int8, &config, &device).unwrap();
        let input = Tensor::<4>::ones([1, 3, 32, 32], &device);
        let a: Vec<f32> = model
            .forward(input.clone())
            .into_data()
            .try_to_vec()
            .unwrap();
        let b: Vec<f32> = back.forward(input).into_data().try_to_vec().unwrap();
        assert!((a[0] - b[0]).abs() < 0.05, "{a:?} {b:?}");
    }

    #[test]
    fn damaged_or_mismatched_weights_give_clear_errors() {
        let (config, model, device) = tiny();
        let bytes = encode(&model, Precision::Int8);
        let truncated = decode(&bytes[..bytes.len() - 100], &config, &device).unwrap_err();
        assert!(
            matches!(truncated, WeightsError::Container(_)),
            "{truncated}"
        );
        assert!(matches!(
            decode(b"not weights", &config, &device),
            Err(WeightsError::Container(_))
        ));
        let other = DenseNetConfig::tiny(3);
        let err = decode(&bytes, &other, &device).unwrap_err().to_string();
        assert!(err.contains("classifier"), "{err}");
    }

    #[test]
    fn the_same_bad_file_always_gets_the_same_error() {
        let (config, _, device) = tiny();
        // Eight int8 tensors, none with its scales: each one alone is an error.
        let tensors: Vec<_> = "abcdefgh"
            .chars()
            .map(|c| ContainerTensor {
                name: format!("{c}.weight"),
                dtype: Dtype::I8,
                shape: vec![2],
                data: vec![1, 2],
            })
            .collect();
        let metadata = HashMap::from([("format".to_string(), FORMAT_INT8.to_string())]);
        let bytes = serialise_container(&tensors, metadata);
        for _ in 0..8 {
            let err = decode(&bytes, &config, &device).unwrap_err();
            assert!(
                matches!(&err, WeightsError::Tensor { name, .. } if name == "a.weight"),
                "{err}"
            );
        }
    }
}
